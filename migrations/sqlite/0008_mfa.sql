-- Credentials beyond the password (issue 25): second factors, recovery codes, how a
-- sign-in was made (`amr`, RFC 8176, space-separated) and a client's MFA requirement.
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
ALTER TABLE browser_sessions ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE authorization_codes ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';
ALTER TABLE refresh_families ADD COLUMN amr TEXT NOT NULL DEFAULT 'pwd';

-- A user's second factors. kind: `totp`. secret: the TOTP seed sealed under the KEK
-- (AAD: the factor id); last_step: the last time step a code was accepted at, so a code
-- is never accepted twice. confirmed_at: NULL while an enrollment awaits its first code.
CREATE TABLE factors (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    kind            TEXT NOT NULL,
    name            TEXT NOT NULL,
    secret          BLOB NOT NULL,
    last_step       INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    confirmed_at    INTEGER,
    last_used_at    INTEGER
) WITHOUT ROWID;
CREATE INDEX factors_user ON factors(user_id);

-- Single-use recovery codes; only their SHA-256 is stored.
CREATE TABLE recovery_codes (
    hash            BLOB PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    created_at      INTEGER NOT NULL,
    used_at         INTEGER
) WITHOUT ROWID;
CREATE INDEX recovery_codes_user ON recovery_codes(user_id);
