-- Sandbox fault injection (SPEC §6): at most one fault per client, read only
-- by sandbox servers (production never loads this table). `remaining` is
-- the --times count as set (each instance counts down in memory), `ratio`
-- the fraction of requests it hits, `seed` seeds that draw, and
-- `generation` is random per write, so that setting the same fault again
-- restarts its countdown. Every write appends a 'faults' change.
CREATE TABLE sandbox_faults (
    client_id  TEXT PRIMARY KEY NOT NULL,
    kind       TEXT NOT NULL,
    remaining  BIGINT,
    ratio      DOUBLE PRECISION,
    seed       BIGINT,
    generation BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
