-- Usernames are unique regardless of ASCII letter case: `username_key` holds the
-- ASCII-lowercased username (SQLite's lower() folds ASCII only, as the server
-- does), used for lookup, uniqueness and throttling. `username` keeps the form
-- the account was created with.
--
-- Existing usernames that differ only in case would be merged into one key:
-- rather than guess which account wins, the migration refuses to run.
CREATE TEMP TABLE migration_0002_collisions (n INTEGER NOT NULL);
CREATE TEMP TRIGGER migration_0002_refuse BEFORE INSERT ON migration_0002_collisions
WHEN NEW.n > 0
BEGIN
    SELECT RAISE(ABORT, 'usernames that differ only in letter case exist; rename all but one of each group before upgrading (list them: SELECT group_concat(username, '', '') FROM users GROUP BY lower(username) HAVING COUNT(*) > 1)');
END;
INSERT INTO migration_0002_collisions
    SELECT COUNT(*) FROM (SELECT 1 FROM users GROUP BY lower(username) HAVING COUNT(*) > 1);
DROP TABLE migration_0002_collisions;

ALTER TABLE users ADD COLUMN username_key TEXT NOT NULL DEFAULT '';
UPDATE users SET username_key = lower(username);
CREATE UNIQUE INDEX users_username_key_unique ON users (username_key);
