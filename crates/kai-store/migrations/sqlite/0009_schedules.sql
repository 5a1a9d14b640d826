-- Schedules (kai-jobs' scheduler): a job enqueued again and again, on a cron expression in a
-- time zone or at a fixed interval. The store does not read `spec`; kai-jobs computes each
-- `next_fire_at` and claims a fire by moving it on only from the value it read, so that one
-- process fires each time once. `next_fire_at` is NULL when the schedule is disabled or will
-- not fire again. Times are Unix milliseconds.
CREATE TABLE schedules (
    id                TEXT    PRIMARY KEY,
    owner_id          TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name              TEXT    NOT NULL,
    spec              TEXT    NOT NULL,
    time_zone         TEXT    NOT NULL,
    missed            TEXT    NOT NULL CHECK (missed IN ('skip', 'run_once')),
    job_kind          TEXT    NOT NULL,
    job_payload       TEXT    NOT NULL,
    job_priority      INTEGER NOT NULL DEFAULT 0,
    job_max_attempts  INTEGER NOT NULL CHECK (job_max_attempts >= 1),
    enabled           INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    next_fire_at      INTEGER,
    last_fire_at      INTEGER,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);

-- What the scheduler looks for: the schedules that fire soonest (a disabled one has no
-- next fire).
CREATE INDEX schedules_due ON schedules (next_fire_at);
