-- Clients, their secrets (argon2id PHC strings only), the signing key ring
-- and the change log that keeps every instance's caches coherent.
CREATE TABLE clients (
    client_id      TEXT PRIMARY KEY NOT NULL,
    name           TEXT,
    scopes         TEXT NOT NULL,
    default_scopes TEXT,
    ttl_seconds    BIGINT,
    audience       TEXT,
    grants         TEXT NOT NULL,
    auth_methods   TEXT NOT NULL,
    token_alg      TEXT NOT NULL DEFAULT 'ES256',
    can_introspect BOOLEAN NOT NULL DEFAULT FALSE,
    enabled        BOOLEAN NOT NULL DEFAULT TRUE,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE client_secrets (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id    TEXT NOT NULL REFERENCES clients (client_id) ON DELETE CASCADE,
    phc          TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX client_secrets_by_client ON client_secrets (client_id);

CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL,
    state              TEXT NOT NULL,
    public_jwk         TEXT NOT NULL,
    sealed_private_key BLOB,
    created_at         BIGINT NOT NULL,
    activated_at       BIGINT,
    retiring_at        BIGINT
);

CREATE TABLE changes (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    kind    TEXT NOT NULL,
    subject TEXT,
    at      BIGINT NOT NULL
);
