-- A chunk's vectors move out of `chunks` into a table of their own, one row per chunk and
-- embedding model: when the configured model changes, the new model's vectors are made beside
-- the old ones, which keep search answering until every chunk has its new vector.
CREATE TABLE chunk_vectors (
    chunk_id   INTEGER NOT NULL REFERENCES chunks (id) ON DELETE CASCADE,
    model      TEXT    NOT NULL,
    -- little-endian f32
    embedding  BLOB    NOT NULL,
    PRIMARY KEY (model, chunk_id)
);
CREATE INDEX chunk_vectors_by_chunk ON chunk_vectors (chunk_id);

INSERT INTO chunk_vectors (chunk_id, model, embedding)
    SELECT id, model, embedding FROM chunks WHERE model IS NOT NULL AND embedding IS NOT NULL;

ALTER TABLE chunks DROP COLUMN embedding;
ALTER TABLE chunks DROP COLUMN model;
