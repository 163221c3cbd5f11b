-- The audit trail of issued access tokens (SPEC §10; PCI DSS 10.2): who got
-- which token when, and from where. Written in batches by each instance's
-- audit writer, pruned after `audit_retention_days`. The token itself is
-- never stored: only its claims' identifiers.
CREATE TABLE audit_tokens (
    jti       TEXT PRIMARY KEY NOT NULL,
    client_id TEXT NOT NULL,
    subject   TEXT NOT NULL,
    scope     TEXT NOT NULL,
    dialect   TEXT NOT NULL,
    kid       TEXT NOT NULL,
    iat       BIGINT NOT NULL,
    exp       BIGINT NOT NULL,
    address   TEXT
);
CREATE INDEX audit_tokens_by_iat ON audit_tokens (iat);
CREATE INDEX audit_tokens_by_client ON audit_tokens (client_id, iat);
