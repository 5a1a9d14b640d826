-- A chunk's vectors move out of `chunks` into a table of their own, one row per chunk and
-- embedding model: when the configured model changes, the new model's vectors are made beside
-- the old ones, which keep search answering until every chunk has its new vector.
CREATE TABLE chunk_vectors (
    chunk_id   BIGINT NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    model      TEXT   NOT NULL,
    -- little-endian f32
    embedding  BYTEA  NOT NULL,
    PRIMARY KEY (model, chunk_id)
);
CREATE INDEX chunk_vectors_by_chunk ON chunk_vectors (chunk_id);

INSERT INTO chunk_vectors (chunk_id, model, embedding)
    SELECT id, model, embedding FROM chunks WHERE model IS NOT NULL AND embedding IS NOT NULL;

ALTER TABLE chunks DROP COLUMN embedding;
ALTER TABLE chunks DROP COLUMN model;

-- Search inside the database, so that several kai processes share one index: PostgreSQL's
-- full-text search over each chunk's headings and text...
ALTER TABLE chunks ADD COLUMN search_text tsvector
    GENERATED ALWAYS AS (to_tsvector('english', coalesce(heading, '') || ' ' || text)) STORED;
CREATE INDEX chunks_search_text ON chunks USING gin (search_text);

-- ...and pgvector for vectors. pgvector is an extension that may not be installed, so its
-- tables are made at run time, one per embedding model (a vector column has one dimension):
-- `vector_index_<id>` holds the vectors of `model`, copied from chunk_vectors, with an HNSW
-- index for cosine distance.
CREATE TABLE vector_indexes (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model       TEXT   NOT NULL UNIQUE,
    dimensions  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
