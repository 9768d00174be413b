-- A per-client refresh-token reuse grace window in seconds; NULL: the server's
-- refresh_reuse_grace. A public client's replayed token within the window gets the
-- live successor, so such clients may want it shorter or 0 (strict).
ALTER TABLE clients ADD COLUMN refresh_reuse_grace BIGINT;
