-- Provider dialects: the audiences a client may ask for by name (Pay-me's
-- `audience`; space-separated, `*` for any), and the claims key that seals
-- values a token carries for the operator only (Peinau's `identifier`),
-- kept here sealed under the key-encryption key when there is one.
ALTER TABLE clients ADD COLUMN allowed_audiences TEXT;

CREATE TABLE claims_keys (
    kid        TEXT PRIMARY KEY NOT NULL,
    sealed_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
