-- Token budgets reserve before a model call and settle after it (gateway/budget.py): `reserved`
-- is what requests in flight have set aside today, so parallel requests see each other.
ALTER TABLE token_usage ADD COLUMN reserved INTEGER NOT NULL DEFAULT 0;
