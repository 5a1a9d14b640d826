-- The real-time channel's durable events (docs/realtime.md): what a client that reconnects is
-- sent again after the last id it saw. Ids are global and never reused (an identity column);
-- appends take a transaction-level advisory lock so that ids commit in order and a reader
-- that saw id N has seen every id below it. Kept for `realtime.retention`.
CREATE TABLE events (
    id          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL
);

-- A user's replay after an id.
CREATE INDEX events_user ON events (user_id, id);
-- Pruning by age.
CREATE INDEX events_created ON events (created_at);

-- Chat messages sent over the WebSocket, by the id their client gave them: a message sent
-- again after a reconnect (to this process or another) is recognised and not stored twice.
-- Kept as long as events.
CREATE TABLE chat_requests (
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id       TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    created_at      BIGINT  NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE INDEX chat_requests_created ON chat_requests (created_at);
