-- The audit trail, normalised. A token's row held its client, subject,
-- scope, dialect and kid as text: about 140 bytes and nine binds a row,
-- though at thousands of tokens a second those five repeat from one token
-- to the next. They now live once, in `audit_grants`; a token's row, in
-- `audit_issued`, holds only what is its own (jti, iat, exp, address) and
-- the grant's id. `audit_tokens` becomes a view with the columns it had
-- (SPEC §10), and the rows already written are carried over.
CREATE TABLE audit_grants (
    id        BIGSERIAL PRIMARY KEY,
    client_id TEXT NOT NULL,
    subject   TEXT NOT NULL,
    scope     TEXT NOT NULL,
    dialect   TEXT NOT NULL,
    kid       TEXT NOT NULL,
    -- Also the index `audit list --client` starts from.
    UNIQUE (client_id, subject, scope, dialect, kid)
);

INSERT INTO audit_grants (client_id, subject, scope, dialect, kid)
    SELECT DISTINCT client_id, subject, scope, dialect, kid FROM audit_tokens;

-- No foreign key on grant_id: on PostgreSQL its check, a trigger per row,
-- cost more than the rest of the insert (BENCHMARKS.md). Pruning keeps a
-- grant that a batch being written needs by locking `audit_grants` against
-- writers while it deletes (src/store/audit.rs).
CREATE TABLE audit_issued (
    jti      TEXT PRIMARY KEY NOT NULL,
    grant_id BIGINT NOT NULL,
    iat      BIGINT NOT NULL,
    exp      BIGINT NOT NULL,
    address  TEXT
);

INSERT INTO audit_issued (jti, grant_id, iat, exp, address)
    SELECT t.jti, g.id, t.iat, t.exp, t.address
    FROM audit_tokens t
    JOIN audit_grants g
      ON g.client_id = t.client_id AND g.subject = t.subject AND g.scope = t.scope
     AND g.dialect = t.dialect AND g.kid = t.kid;

DROP TABLE audit_tokens;
CREATE INDEX audit_issued_by_iat ON audit_issued (iat);
CREATE INDEX audit_issued_by_grant ON audit_issued (grant_id, iat);

CREATE VIEW audit_tokens AS
    SELECT t.jti, g.client_id, g.subject, g.scope, g.dialect, g.kid, t.iat, t.exp, t.address
    FROM audit_issued t JOIN audit_grants g ON g.id = t.grant_id;
