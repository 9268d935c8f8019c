-- +goose Up
-- audit_entries is the hash chain itself. seq is assigned by Append from the
-- head row, never by the database; {{id}} is used only because on SQLite it
-- makes seq the rowid, so a verify pass reads the table in key order without
-- a separate index.
CREATE TABLE audit_entries (
    seq {{id}},
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    result TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash {{blob}} NOT NULL,
    hash {{blob}} NOT NULL
);
CREATE INDEX audit_entries_at ON audit_entries (at);
CREATE INDEX audit_entries_actor ON audit_entries (actor, seq);

-- audit_head is a single row: the newest seq and hash, and the seq at which
-- the next signed checkpoint is due. Appends lock it (SELECT ... FOR UPDATE
-- on PostgreSQL, BEGIN IMMEDIATE on SQLite), which serialises replicas.
CREATE TABLE audit_head (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash {{blob}},
    next_checkpoint BIGINT NOT NULL
);
INSERT INTO audit_head (id, seq, hash, next_checkpoint) VALUES (1, 0, NULL, 1);

-- audit_checkpoints are signed statements "the chain at seq has hash H, and
-- the next checkpoint is due at next_seq".
CREATE TABLE audit_checkpoints (
    seq BIGINT PRIMARY KEY,
    hash {{blob}} NOT NULL,
    next_seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature {{blob}} NOT NULL
);

-- audit_prunes records each retention run, signed, so that verify can tell
-- retention from someone deleting the oldest entries.
CREATE TABLE audit_prunes (
    through_seq BIGINT PRIMARY KEY,
    hash {{blob}} NOT NULL,
    at BIGINT NOT NULL,
    removed BIGINT NOT NULL,
    key_id TEXT NOT NULL,
    signature {{blob}} NOT NULL
);

-- +goose Down
DROP TABLE audit_prunes;
DROP TABLE audit_checkpoints;
DROP TABLE audit_head;
DROP TABLE audit_entries;
