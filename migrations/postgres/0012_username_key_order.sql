-- The user list pages in username-key order compared byte for byte (`COLLATE "C"`, the
-- order SQLite uses, so a cursor means the same on both). The unique index on
-- username_key has the database's collation, which PostgreSQL cannot use for that
-- order: without this index every page of a large user table sorted all of it.
CREATE INDEX users_username_key_c ON users (username_key COLLATE "C");
