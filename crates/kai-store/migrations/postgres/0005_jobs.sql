-- The durable job queue (kai-jobs): background work that survives restarts. A job is leased
-- to one worker at a time until `lease_until`; a lease that runs out (its worker died) makes
-- the job available again, and every lease counts as an attempt. Times are Unix milliseconds.
CREATE TABLE jobs (
    id            TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    priority      BIGINT NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts      BIGINT NOT NULL DEFAULT 0,
    max_attempts  BIGINT NOT NULL CHECK (max_attempts >= 1),
    run_at        BIGINT NOT NULL,
    lease_until   BIGINT,
    worker        TEXT,
    last_error    TEXT,
    dedupe_key    TEXT    UNIQUE,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    finished_at   BIGINT
);

-- What a worker looks for: the next job of a kind, highest priority first, oldest first.
CREATE INDEX jobs_next ON jobs (kind, state, priority DESC, run_at);
