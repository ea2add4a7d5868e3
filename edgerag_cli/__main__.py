"""`python -m edgerag_cli …`: see `edgerag_cli.main`."""

from edgerag_cli import main

raise SystemExit(main())
