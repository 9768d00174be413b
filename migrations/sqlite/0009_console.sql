-- The web console (/console): its signed-in operators, and the feed's reach.

-- A console sign-in: the cookie holds a random token, this table its SHA-256. Bound to the
-- admin's user and to the tessera session (refresh family) the sign-in started.
CREATE TABLE console_sessions (
    hash            BLOB PRIMARY KEY,
    user_id         TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    sid             TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX console_sessions_expiry ON console_sessions(expires_at);

-- Each instance's open /events streams, one row per instance rewritten about once a second
-- (never per event); a row not refreshed for a few seconds belongs to a stopped instance.
CREATE TABLE feed_reach (
    instance        TEXT PRIMARY KEY,
    refreshed_at    INTEGER NOT NULL,
    subscribers     TEXT NOT NULL
) WITHOUT ROWID;
