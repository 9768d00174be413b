-- tessera schema. Times are Unix seconds (INTEGER); lists are JSON arrays (TEXT).

CREATE TABLE users (
    id              TEXT PRIMARY KEY,           -- the `sub`, a UUID
    username        TEXT NOT NULL,
    password_hash   TEXT NOT NULL,              -- argon2id PHC string
    roles           TEXT NOT NULL DEFAULT '[]',
    authz_version   INTEGER NOT NULL DEFAULT 1, -- the `ver` claim
    disabled        INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE clients (
    id              TEXT PRIMARY KEY,
    secret_hash     BLOB,                       -- SHA-256 of a 256-bit generated secret; NULL = public
    grant_types     TEXT NOT NULL DEFAULT '[]',
    scopes          TEXT NOT NULL DEFAULT '[]',
    audiences       TEXT NOT NULL DEFAULT '[]',
    roles           TEXT NOT NULL DEFAULT '[]',
    capabilities    TEXT NOT NULL DEFAULT '[]',
    created_at      INTEGER NOT NULL
);

-- One login session. Its id is the `sid` claim.
CREATE TABLE refresh_families (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    client_id       TEXT NOT NULL REFERENCES clients(id),
    scope           TEXT NOT NULL,
    audience        TEXT NOT NULL,              -- JSON array
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,           -- absolute lifetime
    revoked_at      INTEGER,
    revoke_reason   TEXT
);
CREATE INDEX refresh_families_user ON refresh_families(user_id) WHERE revoked_at IS NULL;

-- Single-use refresh tokens; only their SHA-256 is stored.
CREATE TABLE refresh_tokens (
    hash            BLOB PRIMARY KEY,
    family_id       TEXT NOT NULL REFERENCES refresh_families(id),
    scope           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    consumed_at     INTEGER,
    successor_hash  BLOB,
    -- The successor token sealed under a key derived from this token, kept only for the
    -- grace window so that a retry gets the same successor (idempotent rotation).
    successor_sealed BLOB
) WITHOUT ROWID;
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired', 'revoked')),
    public_jwk      TEXT NOT NULL,
    private_sealed  BLOB NOT NULL,              -- PKCS#8, AES-256-GCM under the KEK
    created_at      INTEGER NOT NULL,
    activated_at    INTEGER,
    retired_at      INTEGER,
    revoked_at      INTEGER
);

-- Append-only security event log; ids only grow.
CREATE TABLE security_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    type            TEXT NOT NULL,
    sub             TEXT,
    sid             TEXT,
    ver             INTEGER,
    roles           TEXT,
    reason          TEXT,
    kid             TEXT,
    at              INTEGER NOT NULL
);
CREATE INDEX security_events_sub ON security_events(sub, id);
CREATE INDEX security_events_at ON security_events(at);

-- Process-wide facts, e.g. the KEK check value.
CREATE TABLE meta (
    key             TEXT PRIMARY KEY,
    value           BLOB NOT NULL
);

-- Rotation in one statement: consuming a refresh token (setting consumed_at and
-- successor_hash, see store::sessions::consume) inserts the successor into the same
-- family and records the family's use, atomically with the consuming update.
CREATE TRIGGER refresh_token_rotated AFTER UPDATE OF consumed_at ON refresh_tokens
WHEN OLD.consumed_at IS NULL AND NEW.consumed_at IS NOT NULL AND NEW.successor_hash IS NOT NULL
BEGIN
    INSERT INTO refresh_tokens (hash, family_id, scope, created_at)
    VALUES (NEW.successor_hash, NEW.family_id, NEW.scope, NEW.consumed_at);
    UPDATE refresh_families SET last_used_at = NEW.consumed_at WHERE id = NEW.family_id;
END;
