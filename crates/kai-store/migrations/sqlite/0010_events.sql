-- The real-time channel's durable events (docs/realtime.md): what a client that reconnects is
-- sent again after the last id it saw. Ids are global and never reused (AUTOINCREMENT); SQLite
-- has one writer at a time, so ids are committed in order. Kept for `realtime.retention`.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room        TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    data        TEXT    NOT NULL,
    created_at  INTEGER NOT NULL
);

-- A user's replay after an id.
CREATE INDEX events_user ON events (user_id, id);
-- Pruning by age.
CREATE INDEX events_created ON events (created_at);

-- Chat messages sent over the WebSocket, by the id their client gave them: a message sent
-- again after a reconnect is recognised and not stored twice. Kept as long as events.
CREATE TABLE chat_requests (
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id       TEXT    NOT NULL,
    conversation_id TEXT    NOT NULL,
    created_at      INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE INDEX chat_requests_created ON chat_requests (created_at);
