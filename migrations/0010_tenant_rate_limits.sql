-- Per-tenant rate limits (issue 13): JSON {route_class: {"user": n, "tenant": n}} set by the
-- tenant's admin within the operator's ceilings (or by the operator). NULL = the deployment's.
ALTER TABLE tenant_quotas ADD COLUMN rate_limits TEXT;
