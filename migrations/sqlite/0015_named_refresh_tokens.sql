-- Refresh tokens that name their session (issue 26). A token is 16 random bytes that
-- stay the same for the whole family (its handle) and 32 that change at every rotation.
-- The family row alone holds what a rotation needs: a rotation rewrites that one row
-- instead of inserting a token row and updating another (two random B-tree leaves and an
-- index entry each), and a session no longer grows with its rotations.
-- Only hashes are stored: SHA-256 of the handle, and SHA-256 of the whole token for the
-- live one (head) and the one it replaced (prev, for the retry within the grace window).
-- Families started before this migration keep NULLs here and their rows in
-- refresh_tokens until they end.
ALTER TABLE refresh_families ADD COLUMN handle_hash BLOB;
ALTER TABLE refresh_families ADD COLUMN head_hash BLOB;
ALTER TABLE refresh_families ADD COLUMN prev_hash BLOB;
-- When the head was issued, which is when prev was used.
ALTER TABLE refresh_families ADD COLUMN rotated_at INTEGER;
CREATE UNIQUE INDEX refresh_families_handle ON refresh_families(handle_hash);
