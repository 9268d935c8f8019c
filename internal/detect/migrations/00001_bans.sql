-- +goose Up
-- One row per ban decision: a network (an address is a /32 or /128) kept
-- out until expires (Unix microseconds). origin says who decided: a
-- scenario ("scenario:ssh-bruteforce") or a person ("user:alice").
-- A ban lifted early keeps its row with removed set (Unix microseconds)
-- and removed_by, so the history of decisions (and repeat offences) stays.
CREATE TABLE detect_bans (
    id {{id}},
    net TEXT NOT NULL,
    reason TEXT NOT NULL,
    origin TEXT NOT NULL,
    scenario TEXT NOT NULL,
    started BIGINT NOT NULL,
    expires BIGINT NOT NULL,
    removed BIGINT NOT NULL,
    removed_by TEXT NOT NULL
);
CREATE INDEX detect_bans_active ON detect_bans(removed, expires);
CREATE INDEX detect_bans_net ON detect_bans(net, started);
-- +goose Down
DROP TABLE detect_bans;
