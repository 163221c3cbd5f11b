-- The denylist of revoked access tokens (RFC 7009). A row lives until its
-- token's `exp` has passed (the token is dead by then anyway) and is pruned
-- after that; every instance keeps the unexpired jtis in memory, learning
-- new ones from the change log (kind 'revoked', subject = jti).
CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    exp        BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);
CREATE INDEX revoked_tokens_by_exp ON revoked_tokens (exp);
