-- A tenant may narrow the operator's model-provider chain (issue 11): JSON arrays of the
-- provider names and model names it allows; NULL = everything the deployment has set up.
ALTER TABLE tenant_settings ADD COLUMN llm_providers TEXT;
ALTER TABLE tenant_settings ADD COLUMN llm_models TEXT;
