-- tessera schema, PostgreSQL dialect of migrations/sqlite/0001_init.sql (same tables,
-- columns and meaning). Times are Unix seconds (BIGINT); lists are JSON arrays (TEXT),
-- so the domain code reads both backends alike.

CREATE TABLE users (
    id              TEXT PRIMARY KEY,           -- the `sub`, a UUID
    username        TEXT NOT NULL,
    password_hash   TEXT NOT NULL,              -- argon2id PHC string
    roles           TEXT NOT NULL DEFAULT '[]',
    authz_version   BIGINT NOT NULL DEFAULT 1,  -- the `ver` claim
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    CONSTRAINT users_username_key UNIQUE (username)
);

CREATE TABLE clients (
    id              TEXT PRIMARY KEY,
    secret_hash     BYTEA,                      -- SHA-256 of a 256-bit generated secret; NULL = public
    grant_types     TEXT NOT NULL DEFAULT '[]',
    scopes          TEXT NOT NULL DEFAULT '[]',
    audiences       TEXT NOT NULL DEFAULT '[]',
    roles           TEXT NOT NULL DEFAULT '[]',
    capabilities    TEXT NOT NULL DEFAULT '[]',
    created_at      BIGINT NOT NULL
);

-- One login session. Its id is the `sid` claim.
CREATE TABLE refresh_families (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    client_id       TEXT NOT NULL REFERENCES clients(id),
    scope           TEXT NOT NULL,
    audience        TEXT NOT NULL,              -- JSON array
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,            -- absolute lifetime
    revoked_at      BIGINT,
    revoke_reason   TEXT
);
CREATE INDEX refresh_families_user ON refresh_families(user_id) WHERE revoked_at IS NULL;

-- Single-use refresh tokens; only their SHA-256 is stored.
CREATE TABLE refresh_tokens (
    hash            BYTEA PRIMARY KEY,
    family_id       TEXT NOT NULL REFERENCES refresh_families(id),
    scope           TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    consumed_at     BIGINT,
    successor_hash  BYTEA,
    -- The successor token sealed under a key derived from this token, kept only for the
    -- grace window so that a retry gets the same successor (idempotent rotation).
    successor_sealed BYTEA
);
CREATE INDEX refresh_tokens_family ON refresh_tokens(family_id);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('next', 'active', 'retired', 'revoked')),
    public_jwk      TEXT NOT NULL,
    private_sealed  BYTEA NOT NULL,             -- PKCS#8, AES-256-GCM under the KEK
    created_at      BIGINT NOT NULL,
    activated_at    BIGINT,
    retired_at      BIGINT,
    revoked_at      BIGINT
);

-- Append-only security event log; ids only grow. Appends happen under the write
-- lock (store::Db::begin), so ids also commit in order.
CREATE TABLE security_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type            TEXT NOT NULL,
    sub             TEXT,
    sid             TEXT,
    ver             BIGINT,
    roles           TEXT,
    reason          TEXT,
    kid             TEXT,
    at              BIGINT NOT NULL
);
CREATE INDEX security_events_sub ON security_events(sub, id);
CREATE INDEX security_events_at ON security_events(at);

-- Process-wide facts, e.g. the KEK check value.
CREATE TABLE meta (
    key             TEXT PRIMARY KEY,
    value           BYTEA NOT NULL
);

-- Rotation in one statement: consuming a refresh token (setting consumed_at and
-- successor_hash, see store::sessions::consume) inserts the successor into the same
-- family and records the family's use, atomically with the consuming update.
CREATE FUNCTION refresh_token_rotated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO refresh_tokens (hash, family_id, scope, created_at)
    VALUES (NEW.successor_hash, NEW.family_id, NEW.scope, NEW.consumed_at);
    UPDATE refresh_families SET last_used_at = NEW.consumed_at WHERE id = NEW.family_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER refresh_token_rotated AFTER UPDATE OF consumed_at ON refresh_tokens
FOR EACH ROW
WHEN (OLD.consumed_at IS NULL AND NEW.consumed_at IS NOT NULL AND NEW.successor_hash IS NOT NULL)
EXECUTE FUNCTION refresh_token_rotated();
