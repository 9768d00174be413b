-- Passkeys (WebAuthn, issue 25's second part). A user's registered credentials:
-- credential_id as the authenticator returns it; user_handle, the WebAuthn user id
-- (the same for every passkey of a user); static_state, the public key and its fixed
-- extensions; dynamic_state, what changes at each use (the sign counter, also kept in
-- sign_count so a use is one compare-and-swap), as webauthn_rp encodes them.
CREATE TABLE passkeys (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id),
    credential_id   BYTEA NOT NULL UNIQUE,
    user_handle     BYTEA NOT NULL,
    name            TEXT NOT NULL,
    static_state    BYTEA NOT NULL,
    dynamic_state   BYTEA NOT NULL,
    sign_count      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_user ON passkeys(user_id);

-- Ceremonies begun and not yet finished: the challenge (16 bytes) sent to the browser,
-- the ceremony's encoded server state, and when it expires. A ceremony is finished by
-- deleting its row (one conditional DELETE ... RETURNING: one winner).
CREATE TABLE webauthn_ceremonies (
    challenge       BYTEA PRIMARY KEY,
    kind            TEXT NOT NULL,
    user_id         TEXT,
    state           BYTEA NOT NULL,
    expires_at      BIGINT NOT NULL
);
CREATE INDEX webauthn_ceremonies_expiry ON webauthn_ceremonies(expires_at);
