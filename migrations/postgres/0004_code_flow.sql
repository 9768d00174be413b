-- The authorization code flow (RFC 6749 §4.1 with PKCE): what a browser app registers,
-- the codes, the browser sessions at tessera and remembered consent.
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '[]';
-- Origins allowed to call /token, /revoke, /userinfo and /events through CORS.
ALTER TABLE clients ADD COLUMN origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN third_party BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';

-- Single-use codes; only their SHA-256 is stored. family_id: the refresh family the
-- exchange started, revoked when the code is presented again; replayed_at closes the
-- window between the exchange and recording the family.
CREATE TABLE authorization_codes (
    hash            BYTEA PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES clients(id),
    user_id         TEXT NOT NULL REFERENCES users(id),
    authz_version   BIGINT NOT NULL,
    redirect_uri    TEXT NOT NULL,
    code_challenge  TEXT NOT NULL,
    scope           TEXT NOT NULL,
    nonce           TEXT,
    auth_time       BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    consumed_at     BIGINT,
    replayed_at     BIGINT,
    family_id       TEXT
);
CREATE INDEX authorization_codes_expiry ON authorization_codes(expires_at);

-- A signed-in browser; the cookie holds a random token, this table its SHA-256.
CREATE TABLE browser_sessions (
    hash            BYTEA PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    auth_time       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);
CREATE INDEX browser_sessions_user ON browser_sessions(user_id) WHERE revoked_at IS NULL;

-- Consent a user gave a third-party client, for one scope set (space-joined, sorted).
CREATE TABLE consents (
    user_id         TEXT NOT NULL REFERENCES users(id),
    client_id       TEXT NOT NULL REFERENCES clients(id),
    scope           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    PRIMARY KEY (user_id, client_id, scope)
);
