-- The audit trail: every administrative change, who made it and when, written in
-- the change's own transaction. Ids only, never a secret or a username, so that
-- deleting a user leaves nothing personal here.
CREATE TABLE audit_log (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    actor    TEXT NOT NULL,          -- an admin's sub, `cli:<os user>`, or `tessera` (scheduled)
    via      TEXT NOT NULL,          -- api | console | cli | schedule
    action   TEXT NOT NULL,          -- e.g. set_roles, create_client, rotate_keys
    target   TEXT,                   -- the id acted on
    details  TEXT                    -- JSON: what changed, nothing secret
);
CREATE INDEX audit_log_target ON audit_log(target, id);
CREATE INDEX audit_log_actor ON audit_log(actor, id);
