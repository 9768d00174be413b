-- Managing clients after registration (issue 24): a rotated secret keeps the one it
-- replaced working until `previous_secret_expires_at` (the `client_secret_overlap`),
-- and every change to a client bumps `client_changes.version`, which every instance
-- polls (and, on PostgreSQL, hears through NOTIFY) to drop its client cache.
ALTER TABLE clients ADD COLUMN previous_secret_hash BYTEA;
ALTER TABLE clients ADD COLUMN previous_secret_expires_at BIGINT;

CREATE TABLE client_changes (
    one             INTEGER PRIMARY KEY CHECK (one = 1),
    version         BIGINT NOT NULL
);
INSERT INTO client_changes (one, version) VALUES (1, 0);

-- A client's sessions, for revoking them when the client narrows or goes.
CREATE INDEX refresh_families_client ON refresh_families(client_id) WHERE revoked_at IS NULL;
CREATE INDEX authorization_codes_client ON authorization_codes(client_id);
CREATE INDEX consents_client ON consents(client_id);
