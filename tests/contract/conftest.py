"""The internal-route contract tests run the real Workers on the same in-process mesh as the
e2e tier: its fixtures, not a copy of them."""

from tests.e2e.conftest import ai, client, data_dir, mesh

__all__ = ["ai", "client", "data_dir", "mesh"]
