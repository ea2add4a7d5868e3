"""Shared, Pyodide-safe kernel of the edgerag Workers: ports, HTTP, errors, tenancy, telemetry."""
