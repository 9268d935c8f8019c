-- +goose Up
-- Entries of the guard's allow and deny lists added at runtime (the
-- config's static lists are not stored). list is "allow" or "deny"; net a
-- canonical CIDR; created and expires are Unix microseconds, expires 0
-- meaning until removed. A removed entry is deleted: its history is in the
-- events and the audit log.
CREATE TABLE guard_lists (
    id {{id}},
    list TEXT NOT NULL,
    net TEXT NOT NULL,
    reason TEXT NOT NULL,
    origin TEXT NOT NULL,
    created BIGINT NOT NULL,
    expires BIGINT NOT NULL
);
CREATE UNIQUE INDEX guard_lists_net ON guard_lists(list, net);
-- Bandwidth rules (shaping) set at runtime: one row per named rule. sites,
-- nets and accounts are JSON arrays of strings; bandwidth is bytes per
-- second; updated is Unix microseconds.
CREATE TABLE guard_shapes (
    name TEXT PRIMARY KEY,
    sites TEXT NOT NULL,
    nets TEXT NOT NULL,
    accounts TEXT NOT NULL,
    bandwidth BIGINT NOT NULL,
    reason TEXT NOT NULL,
    origin TEXT NOT NULL,
    updated BIGINT NOT NULL
);
-- +goose Down
DROP TABLE guard_shapes;
DROP TABLE guard_lists;
