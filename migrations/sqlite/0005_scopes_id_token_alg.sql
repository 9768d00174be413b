-- The alg a client registered for its ID tokens (OpenID Connect Registration
-- `id_token_signed_response_alg`); NULL: the deployment's signing alg.
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT;

-- Which chain of keys a signing key belongs to: `main` signs access tokens and ID
-- tokens; `id_rs256` signs the ID tokens of clients registered for RS256 when the
-- main chain does not sign RS256. Each chain has at most one active key.
ALTER TABLE signing_keys ADD COLUMN purpose TEXT NOT NULL DEFAULT 'main';
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys(purpose) WHERE state = 'active';
