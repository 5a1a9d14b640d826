-- The model gateway: the provider and model catalog that admins edit through the API, one usage
-- row per model request, spending limits on API keys, and users' stored conversations.

-- Catalog documents are JSON the gateway reads; the store keeps them as text.
CREATE TABLE catalog_entries (
    kind        TEXT    NOT NULL CHECK (kind IN ('provider', 'model')),
    name        TEXT    NOT NULL,
    document    TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    PRIMARY KEY (kind, name)
);

-- One row, bumped in the same transaction as every change to catalog_entries, so that other
-- processes sharing the database can tell cheaply when to reload the catalog.
CREATE TABLE catalog_revision (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    revision  BIGINT  NOT NULL
);
INSERT INTO catalog_revision (id, revision) VALUES (1, 0);

-- Records outlive the revocation of their key (api_key_id stays), but not the user.
CREATE TABLE usage_records (
    id              TEXT    PRIMARY KEY,
    created_at      BIGINT  NOT NULL,
    request_id      TEXT    NOT NULL,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    api_key_id      TEXT    REFERENCES api_keys (id) ON DELETE SET NULL,
    endpoint        TEXT    NOT NULL,
    model           TEXT    NOT NULL,
    provider        TEXT,
    upstream_model  TEXT,
    input_tokens    BIGINT  NOT NULL,
    output_tokens   BIGINT  NOT NULL,
    latency_ms      BIGINT  NOT NULL,
    ttft_ms         BIGINT,
    status          TEXT    NOT NULL,
    cost_micros     BIGINT  NOT NULL,
    stream          BOOLEAN NOT NULL
);
CREATE INDEX usage_by_key ON usage_records (api_key_id, created_at);
CREATE INDEX usage_by_user ON usage_records (user_id, created_at);
CREATE INDEX usage_by_time ON usage_records (created_at);

CREATE TABLE key_budgets (
    api_key_id  TEXT    NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    period      TEXT    NOT NULL CHECK (period IN ('day', 'month')),
    kind        TEXT    NOT NULL CHECK (kind IN ('tokens', 'usd_micros')),
    amount      BIGINT  NOT NULL,
    PRIMARY KEY (api_key_id, period, kind)
);

-- message_count is kept by the append that adds messages: bumping it is the write that
-- serialises concurrent appends and hands out their sequence numbers.
CREATE TABLE conversations (
    id             TEXT    PRIMARY KEY,
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title          TEXT    NOT NULL,
    model          TEXT,
    created_at     BIGINT  NOT NULL,
    updated_at     BIGINT  NOT NULL,
    message_count  BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX conversations_by_user ON conversations (user_id, updated_at, id);

CREATE TABLE conversation_messages (
    conversation_id  TEXT    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq              BIGINT  NOT NULL,
    role             TEXT    NOT NULL,
    body             TEXT    NOT NULL,
    model            TEXT,
    created_at       BIGINT  NOT NULL,
    PRIMARY KEY (conversation_id, seq)
);
