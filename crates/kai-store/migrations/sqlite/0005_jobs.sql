-- The durable job queue (kai-jobs): background work that survives restarts. A job is leased
-- to one worker at a time until `lease_until`; a lease that runs out (its worker died) makes
-- the job available again, and every lease counts as an attempt. Times are Unix milliseconds.
CREATE TABLE jobs (
    id            TEXT    PRIMARY KEY,
    kind          TEXT    NOT NULL,
    payload       TEXT    NOT NULL,
    priority      INTEGER NOT NULL DEFAULT 0,
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'done', 'dead')),
    attempts      INTEGER NOT NULL DEFAULT 0,
    max_attempts  INTEGER NOT NULL CHECK (max_attempts >= 1),
    run_at        INTEGER NOT NULL,
    lease_until   INTEGER,
    worker        TEXT,
    last_error    TEXT,
    dedupe_key    TEXT    UNIQUE,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    finished_at   INTEGER
);

-- What a worker looks for: the next job of a kind, highest priority first, oldest first.
CREATE INDEX jobs_next ON jobs (kind, state, priority DESC, run_at);
