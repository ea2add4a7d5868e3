-- Sessions end at once (issue 9): access tokens name their refresh family (`sid`), and every
-- request checks that family is live for that user (gateway/users.select_user_in_session);
-- disabling a user revokes all of the user's families in one UPDATE by (tenant_id, user_id).
-- One index serves both: the user prefix for the UPDATE, user + family for the check.
CREATE INDEX refresh_tokens_by_user ON refresh_tokens(tenant_id, user_id, family_id);
