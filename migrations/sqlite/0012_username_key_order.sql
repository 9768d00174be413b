-- PostgreSQL's 0012 adds an index for the user list's byte order; SQLite's unique index
-- on username_key already has it (BINARY collation). Nothing to do here.
SELECT 1;
