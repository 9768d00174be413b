-- Shared Signals (SSF 1.0) streams. A stream reads the security event log from
-- `cursor` on and turns what it reads into SETs waiting in `ssf_pending` until the
-- receiver has them (push: 202; poll: acknowledged).
CREATE TABLE ssf_streams (
    id               TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    config           TEXT NOT NULL,           -- JSON: the receiver-supplied configuration
    status           TEXT NOT NULL,           -- enabled | paused | disabled
    reason           TEXT,
    cursor           INTEGER NOT NULL,        -- the last event id read from the log
    created_at       INTEGER NOT NULL,
    verified_at      INTEGER,                 -- the last verification requested
    last_error       TEXT,                    -- JSON {err, description, at}: the last failed delivery
    delivered        INTEGER NOT NULL DEFAULT 0,
    failed           INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT,                    -- the instance delivering it (push)
    lease_until      INTEGER
);
CREATE INDEX ssf_streams_client ON ssf_streams(client_id);

-- The exceptions to a stream's default subjects: with `ALL`, the users removed;
-- with `NONE`, the users added.
CREATE TABLE ssf_subjects (
    stream_id        TEXT NOT NULL REFERENCES ssf_streams(id) ON DELETE CASCADE,
    sub              TEXT NOT NULL,
    PRIMARY KEY (stream_id, sub)
);

-- SETs minted for a stream and not yet delivered, oldest first. The claims are
-- signed when sent, so a SET held across a key rotation is signed by a live key;
-- `jti` is derived from (stream, event), so a redelivery carries the same one.
CREATE TABLE ssf_pending (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    stream_id        TEXT NOT NULL REFERENCES ssf_streams(id) ON DELETE CASCADE,
    jti              TEXT NOT NULL,
    claims           TEXT NOT NULL,
    CONSTRAINT ssf_pending_jti UNIQUE (stream_id, jti)
);
CREATE INDEX ssf_pending_stream ON ssf_pending(stream_id, seq);
