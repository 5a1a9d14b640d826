-- The vault and the audit log.
--
-- Vault: one keyring row (the current master key's id and the node's identity), how the master
-- key is unlocked (one row per unlocker, each holding the master key wrapped under its own key),
-- one data key per owner wrapped under the master key, and secrets sealed under their owner's
-- data key. Nothing here is readable without an unlocker's passphrase or key file.
CREATE TABLE vault_keyring (
    id                  INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    master_key_id       TEXT    NOT NULL,
    identity_public     BLOB    NOT NULL,
    identity_sealed     BLOB    NOT NULL,
    failed_unlocks      INTEGER NOT NULL,
    last_failed_unlock  INTEGER,
    created_at          INTEGER NOT NULL,
    rotated_at          INTEGER NOT NULL
) STRICT;

CREATE TABLE vault_unlockers (
    kind            TEXT    PRIMARY KEY NOT NULL CHECK (kind IN ('passphrase', 'key_file')),
    kdf             TEXT    NOT NULL,
    wrapped_master  BLOB    NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- owner is `node` or a user's id; a user's key, and with it their secrets, go with the user.
CREATE TABLE vault_data_keys (
    owner        TEXT    PRIMARY KEY NOT NULL,
    user_id      TEXT    REFERENCES users (id) ON DELETE CASCADE,
    wrapped_key  BLOB    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE TABLE vault_secrets (
    id           TEXT    PRIMARY KEY NOT NULL,
    owner        TEXT    NOT NULL REFERENCES vault_data_keys (owner) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    description  TEXT,
    sealed       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    UNIQUE (owner, name)
) STRICT;

-- Audit log: entries in order (seq is the Merkle leaf index), each its canonical JSON, its
-- RFC 6962 leaf hash and the node's signature (NULL while the vault was locked, filled in at
-- unlock). created_at, actor and action repeat fields of the entry for queries; verification
-- holds them to it.
CREATE TABLE audit_entries (
    seq        INTEGER PRIMARY KEY NOT NULL,
    created_at        INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    entry      TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    signature  BLOB
) STRICT;
CREATE INDEX audit_entries_created_at ON audit_entries (created_at);
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);
CREATE INDEX audit_entries_action ON audit_entries (action, seq);

-- The log's head, updated with every append: where the next entry goes, the hash it chains to,
-- the Merkle tree's frontier (its perfect subtrees' roots, 32 bytes each) and the first entry
-- still waiting for a signature. Appending begins by updating this row, so appenders in every
-- process take turns.
CREATE TABLE audit_head (
    id             INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    size       INTEGER NOT NULL,
    last_hash      BLOB,
    frontier       BLOB    NOT NULL,
    unsigned_from  INTEGER,
    updated_at     INTEGER NOT NULL
) STRICT;
INSERT INTO audit_head (id, size, last_hash, frontier, unsigned_from, updated_at)
VALUES (1, 0, NULL, X'', NULL, 0);

-- Signed tree heads: the Merkle root over the first `size` entries, signed by the node.
CREATE TABLE audit_checkpoints (
    size       INTEGER PRIMARY KEY NOT NULL,
    root       BLOB    NOT NULL,
    created_at        INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    signature  BLOB    NOT NULL
) STRICT;
