-- Agents (kai-agent): prompt templates, agent definitions, their runs with each run's saved
-- state and timeline, the tool calls that change things, and the owner's answers to what a run
-- asked. Documents kai-agent defines (a definition, a run's state, an event) are JSON text that
-- the store keeps without reading. Times are Unix milliseconds.

-- A prompt template; its text lives in versions, which are never changed once written.
CREATE TABLE prompts (
    id              TEXT    PRIMARY KEY,
    owner_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    latest_version  BIGINT  NOT NULL CHECK (latest_version >= 1),
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE prompt_versions (
    prompt_id   TEXT    NOT NULL REFERENCES prompts (id) ON DELETE CASCADE,
    version     BIGINT  NOT NULL CHECK (version >= 1),
    template    TEXT    NOT NULL,
    -- The variables it declares, a JSON array.
    variables   TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (prompt_id, version)
);

CREATE TABLE agents (
    id          TEXT    PRIMARY KEY,
    owner_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        TEXT    NOT NULL,
    definition  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    UNIQUE (owner_id, name)
);

-- A run keeps the definition it started with, so editing an agent never changes a run
-- half-way. `revision` counts saves: a save names the revision it read, so two workers that
-- both think they hold the run cannot both write. Appending to the timeline bumps `last_seq`
-- first, which also serialises appends to one run.
CREATE TABLE agent_runs (
    id           TEXT    PRIMARY KEY,
    agent_id     TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    owner_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    goal         TEXT    NOT NULL,
    definition   TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN
                     ('queued', 'running', 'waiting', 'paused', 'succeeded', 'failed', 'cancelled')),
    -- What the owner asked of a run while it was running: 'pause' or 'cancel'.
    requested    TEXT    CHECK (requested IN ('pause', 'cancel')),
    state        TEXT    NOT NULL,
    revision     BIGINT  NOT NULL,
    -- The number of its timeline's last event.
    last_seq     BIGINT  NOT NULL DEFAULT 0,
    error        TEXT,
    created_at   BIGINT  NOT NULL,
    updated_at   BIGINT  NOT NULL,
    finished_at  BIGINT
);

CREATE INDEX agent_runs_by_owner ON agent_runs (owner_id, created_at);
CREATE INDEX agent_runs_by_agent ON agent_runs (agent_id, created_at);

-- A run's timeline, in order.
CREATE TABLE run_events (
    run_id  TEXT    NOT NULL REFERENCES agent_runs (id) ON DELETE CASCADE,
    seq     BIGINT  NOT NULL,
    at      BIGINT  NOT NULL,
    kind    TEXT    NOT NULL,
    data    TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- A tool call with side effects is written 'started' before it runs and settled after, under
-- its idempotency key: a run resumed after a crash finds what it already did, and a call left
-- 'started' is one whose outcome nobody knows.
CREATE TABLE tool_calls (
    run_id       TEXT    NOT NULL REFERENCES agent_runs (id) ON DELETE CASCADE,
    call_key     TEXT    NOT NULL,
    tool         TEXT    NOT NULL,
    arguments    TEXT    NOT NULL,
    state        TEXT    NOT NULL CHECK (state IN ('started', 'done')),
    result       TEXT,
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT,
    PRIMARY KEY (run_id, call_key)
);

-- What a run asked its owner: consent for a call, a question, or what to do about a call
-- whose outcome is unknown. One per call key; the run waits until it is answered or expires.
CREATE TABLE run_requests (
    id          TEXT    PRIMARY KEY,
    run_id      TEXT    NOT NULL REFERENCES agent_runs (id) ON DELETE CASCADE,
    owner_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    agent_id    TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    call_key    TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('consent', 'question', 'outcome')),
    tool        TEXT    NOT NULL,
    details     TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    answer      TEXT,
    remember    BOOLEAN NOT NULL DEFAULT FALSE,
    expires_at  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    decided_at  BIGINT,
    UNIQUE (run_id, call_key)
);

CREATE INDEX run_requests_pending ON run_requests (status, expires_at);
CREATE INDEX run_requests_by_owner ON run_requests (owner_id, status);

-- "Always for this agent and tool": the owner's standing answer, which overrides the
-- agent's policy for that tool.
CREATE TABLE consent_grants (
    agent_id    TEXT    NOT NULL REFERENCES agents (id) ON DELETE CASCADE,
    tool        TEXT    NOT NULL,
    decision    TEXT    NOT NULL CHECK (decision IN ('allow', 'deny')),
    created_at  BIGINT  NOT NULL,
    PRIMARY KEY (agent_id, tool)
);
