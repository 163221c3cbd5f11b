-- The audit trail's token rows, indexed only in the order they are
-- written. With as many grants busy as clients (10,000), each second's
-- rows landed in as many places of the (grant_id, iat) index: every batch
-- rewrote thousands of its pages, and SQLite's writer spent 5.9 µs a token
-- where it spent 1.6 with ten clients (BENCHMARKS.md). Tokens are now
-- indexed by (iat, grant_id) alone, which a batch appends to; `audit list
-- --client` reads that index, checking the grant in the index itself.
--
-- That index once told a prune which grants still had tokens. A grant now
-- carries `last_iat`, an upper bound of its tokens' iat that a batch raises
-- ahead of time (src/store/audit.rs), and a prune deletes the grants whose
-- bound is past the retention.
ALTER TABLE audit_grants ADD COLUMN last_iat BIGINT NOT NULL DEFAULT 0;

UPDATE audit_grants SET last_iat = COALESCE(
    (SELECT MAX(t.iat) FROM audit_issued t WHERE t.grant_id = audit_grants.id), 0);

DROP INDEX audit_issued_by_grant;
DROP INDEX audit_issued_by_iat;
CREATE INDEX audit_issued_by_iat ON audit_issued (iat, grant_id);
