-- +goose Up
CREATE TABLE things (
    id {{id}},
    name TEXT NOT NULL UNIQUE,
    payload {{blob}},
    created_at BIGINT NOT NULL
);
CREATE TABLE parts (
    id {{id}},
    thing_id BIGINT NOT NULL REFERENCES things(id) ON DELETE CASCADE,
    label TEXT NOT NULL
);
-- +goose Down
DROP TABLE parts;
DROP TABLE things;
