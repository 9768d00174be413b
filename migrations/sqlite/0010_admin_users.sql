-- The admin API's session and event listings: live sessions by user and by client in
-- id order, and the event log by type, newest first.
-- (user_id, id) serves every lookup the (user_id) index served, and replaces it.
CREATE INDEX refresh_families_user_live ON refresh_families(user_id, id) WHERE revoked_at IS NULL;
DROP INDEX refresh_families_user;
CREATE INDEX refresh_families_client_live ON refresh_families(client_id, id) WHERE revoked_at IS NULL;
CREATE INDEX security_events_type ON security_events(type, id);
