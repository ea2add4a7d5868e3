"""`GET /internal/health`, which every Worker answers and the gateway's `/health` aggregates.

The models are defined in `kernel.bindings.health`, next to the route that builds the report
(a lower layer cannot import this one); this module is where callers find the contract.
"""

from kernel.bindings.health import HealthReport, ModelInfo, ProviderHealth

__all__ = ["HealthReport", "ModelInfo", "ProviderHealth"]
