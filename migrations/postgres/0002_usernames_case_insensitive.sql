-- Usernames are unique regardless of ASCII letter case: `username_key` holds the
-- ASCII-lowercased username (translate(), not the locale-dependent lower(), so it
-- folds exactly what the server folds), used for lookup, uniqueness and
-- throttling. `username` keeps the form the account was created with.
--
-- Existing usernames that differ only in case would be merged into one key:
-- rather than guess which account wins, the migration refuses to run.
DO $$
DECLARE
    clashes text;
BEGIN
    SELECT string_agg(names, '; ') INTO clashes FROM (
        SELECT string_agg(username, ', ' ORDER BY username) AS names
        FROM users
        GROUP BY translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
        HAVING COUNT(*) > 1
    ) groups;
    IF clashes IS NOT NULL THEN
        RAISE EXCEPTION 'usernames that differ only in letter case exist (%); rename all but one of each group before upgrading', clashes;
    END IF;
END
$$;

ALTER TABLE users ADD COLUMN username_key TEXT NOT NULL DEFAULT '';
UPDATE users SET username_key = translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
ALTER TABLE users ALTER COLUMN username_key DROP DEFAULT;
ALTER TABLE users ADD CONSTRAINT users_username_key_unique UNIQUE (username_key);
