-- A count of the prunes that deleted audit grants. An instance keeps the
-- ids of the grants it has written or read, so that a batch of tokens need
-- not write or look up its grants again; a prune that deletes grants bumps
-- this count, and an instance that reads a new count forgets its ids
-- (src/store/audit.rs).
CREATE TABLE audit_grant_generation (
    generation BIGINT NOT NULL
);

INSERT INTO audit_grant_generation (generation) VALUES (0);
