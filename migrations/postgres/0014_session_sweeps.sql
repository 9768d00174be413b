-- Housekeeping at any size (issue 26): the minute's sweeps (src/background.rs) find their
-- rows through these instead of reading every session and every refresh token (with
-- 10,000,000 sessions each sweep read the whole table, on SQLite holding the writer).
-- Sealed successors are few (a grace window's worth), so that index is small.
CREATE INDEX refresh_tokens_sealed ON refresh_tokens(consumed_at) WHERE successor_sealed IS NOT NULL;
CREATE INDEX refresh_families_revoked ON refresh_families(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE INDEX refresh_families_expiry ON refresh_families(expires_at);
-- (client_id, id) WHERE revoked_at IS NULL (0010) serves every lookup this one served.
DROP INDEX refresh_families_client;
