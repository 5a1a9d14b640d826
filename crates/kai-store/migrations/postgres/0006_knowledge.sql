-- Knowledge (kai-knowledge): collections, artifacts with their versions, the content-addressed
-- blobs versions point to, and the chunks of text that search indexes. Everything belongs to one
-- owner. Times are Unix milliseconds.

CREATE TABLE collections (
    id           TEXT    PRIMARY KEY,
    owner_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    description  TEXT    NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL,
    UNIQUE (owner_id, name)
);

-- A blob's bytes live under the data directory, named by their BLAKE3 hash. `orphaned_at` is
-- when a collection pass first found no version pointing at it: it is deleted only once it
-- has stayed unreferenced for a grace period, so a reader who resolved it just before can
-- still open it.
CREATE TABLE blobs (
    hash         TEXT    PRIMARY KEY,
    size         BIGINT NOT NULL,
    created_at   BIGINT NOT NULL,
    orphaned_at  BIGINT
);

CREATE TABLE artifacts (
    id               TEXT    PRIMARY KEY,
    owner_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    collection_id    TEXT    REFERENCES collections (id) ON DELETE SET NULL,
    title            TEXT    NOT NULL,
    source           TEXT,
    created_by       TEXT    NOT NULL,
    metadata         TEXT    NOT NULL DEFAULT '{}',
    current_version  BIGINT NOT NULL,
    -- The version search answers with: the newest one indexed. It moves, in the transaction
    -- that drops the older version's chunks, only once the newer one is searchable.
    searchable_version BIGINT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX artifacts_by_owner ON artifacts (owner_id, updated_at);
CREATE INDEX artifacts_by_collection ON artifacts (collection_id);

-- Every version stays readable. `index_state` says how far indexing it has come: `pending`,
-- `keyword_only` (searchable by its words; its vectors wait for the embedding model, and
-- `index_error` says why), `indexed`, `failed` (with `index_error`), `skipped` (a binary blob:
-- kept, not searched) or `superseded` (a newer version is the one searched).
CREATE TABLE artifact_versions (
    artifact_id  TEXT    NOT NULL REFERENCES artifacts (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    blob_hash    TEXT    NOT NULL REFERENCES blobs (hash),
    size         BIGINT NOT NULL,
    mime         TEXT    NOT NULL,
    file_name    TEXT,
    created_by   TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    index_state  TEXT    NOT NULL DEFAULT 'pending'
        CHECK (index_state IN ('pending', 'keyword_only', 'indexed', 'failed', 'skipped',
                               'superseded')),
    index_error  TEXT,
    chunk_count  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (artifact_id, version)
);
CREATE INDEX artifact_versions_by_blob ON artifact_versions (blob_hash);

-- Notes: Markdown written in kai. A title is unique per owner without regard to case, so that
-- `[[Title]]` names one note.
CREATE TABLE notes (
    id                 TEXT    PRIMARY KEY,
    owner_id           TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    collection_id      TEXT    REFERENCES collections (id) ON DELETE SET NULL,
    title              TEXT    NOT NULL,
    current_version    BIGINT NOT NULL,
    searchable_version BIGINT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE UNIQUE INDEX notes_by_title ON notes (owner_id, lower(title));
CREATE INDEX notes_by_owner ON notes (owner_id, updated_at);

CREATE TABLE note_versions (
    note_id      TEXT    NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    version      BIGINT NOT NULL,
    title        TEXT    NOT NULL,
    body         TEXT    NOT NULL,
    created_by   TEXT    NOT NULL,
    created_at   BIGINT NOT NULL,
    index_state  TEXT    NOT NULL DEFAULT 'pending'
        CHECK (index_state IN ('pending', 'keyword_only', 'indexed', 'failed', 'skipped',
                               'superseded')),
    index_error  TEXT,
    chunk_count  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (note_id, version)
);

-- The `[[links]]` in each note's current body. `target_key` is the target as written (a title
-- in lower case, or an artifact id); `target_id` is what it resolves to, NULL until a note of
-- that title exists (links are resolved by id, so renaming a note keeps its backlinks).
CREATE TABLE note_links (
    note_id       TEXT NOT NULL REFERENCES notes (id) ON DELETE CASCADE,
    owner_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_kind   TEXT NOT NULL CHECK (target_kind IN ('note', 'artifact')),
    target_key    TEXT NOT NULL,
    target_id     TEXT,
    target_title  TEXT,
    PRIMARY KEY (note_id, target_kind, target_key)
);
CREATE INDEX note_links_by_target ON note_links (target_id);
CREATE INDEX note_links_by_key ON note_links (owner_id, target_kind, target_key);

CREATE TABLE item_tags (
    item_id   TEXT NOT NULL,
    owner_id  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tag       TEXT NOT NULL,
    PRIMARY KEY (item_id, tag)
);
CREATE INDEX item_tags_by_tag ON item_tags (owner_id, tag);

-- The searchable text. Ids are never reused (an identity column), so an index entry left behind by a
-- crash can never point at someone else's chunk. `embedding` is the vector (little-endian f32)
-- that `model` made; NULL until embedded. One row per (item, version, seq), which makes
-- indexing a version twice (a job retried after a crash) write nothing twice.
CREATE TABLE chunks (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    item_id     TEXT    NOT NULL,
    item_kind   TEXT    NOT NULL CHECK (item_kind IN ('artifact', 'note')),
    version     BIGINT NOT NULL,
    seq         BIGINT NOT NULL,
    heading     TEXT,
    text        TEXT    NOT NULL,
    start_byte  BIGINT NOT NULL,
    end_byte    BIGINT NOT NULL,
    model       TEXT,
    embedding   BYTEA,
    created_at  BIGINT NOT NULL,
    UNIQUE (item_id, version, seq)
);
CREATE INDEX chunks_by_owner ON chunks (owner_id);

-- Memory: facts about the user that chats and agents keep. The text is sealed under the owner's
-- vault data key, bound to the entry's id; the rest is in the clear. A corrected fact is a new
-- entry that `supersedes` the old one, which stays, marked `superseded_by`.
CREATE TABLE memories (
    id             TEXT    PRIMARY KEY,
    owner_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sealed         BYTEA   NOT NULL,
    source_kind    TEXT    NOT NULL CHECK (source_kind IN ('user', 'conversation', 'run')),
    source_id      TEXT,
    supersedes     TEXT,
    superseded_by  TEXT,
    created_at     BIGINT NOT NULL
);
CREATE INDEX memories_by_owner ON memories (owner_id, created_at);

CREATE TABLE memory_relations (
    memory_id   TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    related_id  TEXT NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    PRIMARY KEY (memory_id, related_id)
);
