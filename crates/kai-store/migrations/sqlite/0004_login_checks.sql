-- Password checks in flight, counted apart from failures: a burst of simultaneous attempts is
-- held to the lockout limit by waiting, and only confirmed wrong passwords lock an account.
-- `login_checks_at` (Unix milliseconds) is when the latest check began; counts older than a
-- minute are from a process that died mid-check and are forgotten.
ALTER TABLE users ADD COLUMN login_checks INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN login_checks_at INTEGER;
