-- The model gateway: the provider and model catalog that admins edit through the API, one usage
-- row per model request, spending limits on API keys, and users' stored conversations.

-- Catalog documents are JSON the gateway reads; the store keeps them as text.
CREATE TABLE catalog_entries (
    kind        TEXT    NOT NULL CHECK (kind IN ('provider', 'model')),
    name        TEXT    NOT NULL,
    document    TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (kind, name)
) STRICT;

-- One row, bumped in the same transaction as every change to catalog_entries, so that other
-- processes sharing the database can tell cheaply when to reload the catalog.
CREATE TABLE catalog_revision (
    id        INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    revision  INTEGER NOT NULL
) STRICT;
INSERT INTO catalog_revision (id, revision) VALUES (1, 0);

-- Records outlive the revocation of their key (api_key_id stays), but not the user.
CREATE TABLE usage_records (
    id              TEXT    PRIMARY KEY NOT NULL,
    created_at      INTEGER NOT NULL,
    request_id      TEXT    NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    api_key_id      TEXT    REFERENCES api_keys (id) ON DELETE SET NULL,
    endpoint        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    provider        TEXT,
    upstream_model  TEXT,
    input_tokens    INTEGER NOT NULL,
    output_tokens   INTEGER NOT NULL,
    latency_ms      INTEGER NOT NULL,
    ttft_ms         INTEGER,
    status          TEXT    NOT NULL,
    cost_micros     INTEGER NOT NULL,
    stream          INTEGER NOT NULL CHECK (stream IN (0, 1))
) STRICT;
CREATE INDEX usage_by_key ON usage_records (api_key_id, created_at);
CREATE INDEX usage_by_user ON usage_records (user_id, created_at);
CREATE INDEX usage_by_time ON usage_records (created_at);

CREATE TABLE key_budgets (
    api_key_id  TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    period      TEXT    NOT NULL CHECK (period IN ('day', 'month')),
    kind        TEXT    NOT NULL CHECK (kind IN ('tokens', 'usd_micros')),
    amount      INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, period, kind)
) STRICT;

-- message_count is kept by the append that adds messages: bumping it is the write that
-- serialises concurrent appends and hands out their sequence numbers.
CREATE TABLE conversations (
    id             TEXT    PRIMARY KEY NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title          TEXT    NOT NULL,
    model          TEXT,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    message_count  INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX conversations_by_user ON conversations (user_id, updated_at, id);

CREATE TABLE conversation_messages (
    conversation_id  TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              INTEGER NOT NULL,
    role             TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    model            TEXT,
    created_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, seq)
) STRICT;
