-- Resource owners for the password grant (Fegora dialect), and refresh
-- tokens: stored only as SHA-256 hashes, single-use, grouped in families so
-- that the reuse of a spent token revokes the whole family (RFC 9700 §4.14).
CREATE TABLE users (
    username   TEXT PRIMARY KEY NOT NULL,
    phc        TEXT NOT NULL,
    scopes     TEXT,
    enabled    BOOLEAN NOT NULL DEFAULT TRUE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    family_id  TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    username   TEXT NOT NULL,
    scope      TEXT NOT NULL,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT,
    revoked    BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_user ON refresh_tokens (username);
