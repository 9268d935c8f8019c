-- +goose Up
-- Metric history (series.go names): one row per series and time bucket at
-- each resolution: res 0 keeps every sample, 60 one-minute and 3600
-- one-hour aggregates. ts is the bucket's start in Unix microseconds.
CREATE TABLE monitor_samples (
    res INTEGER NOT NULL,
    series TEXT NOT NULL,
    ts BIGINT NOT NULL,
    total DOUBLE PRECISION NOT NULL,
    n INTEGER NOT NULL,
    lo DOUBLE PRECISION NOT NULL,
    hi DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (res, series, ts)
);
CREATE INDEX monitor_samples_ts ON monitor_samples(res, ts);
-- Check history by hour: runs, failed runs and the time they took; the
-- uptime bars of the status page are read from it.
CREATE TABLE monitor_check_hours (
    name TEXT NOT NULL,
    ts BIGINT NOT NULL,
    runs INTEGER NOT NULL,
    failures INTEGER NOT NULL,
    seconds DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (name, ts)
);
-- The last result of each check, for the status page and restarts.
CREATE TABLE monitor_check_last (
    name TEXT PRIMARY KEY,
    ts BIGINT NOT NULL,
    ok INTEGER NOT NULL,
    since BIGINT NOT NULL,
    result TEXT NOT NULL
);
-- When the monitor ran: a row per process lifetime, last moved forward
-- every minute. Time outside these rows is a gap, shown, not counted.
CREATE TABLE monitor_alive (
    started BIGINT PRIMARY KEY,
    last BIGINT NOT NULL
);
-- Alert state and silences (JSON of internal/monitor/alert's types).
CREATE TABLE monitor_alerts (
    alert_key TEXT PRIMARY KEY,
    alert TEXT NOT NULL
);
CREATE TABLE monitor_silences (
    id TEXT PRIMARY KEY,
    ends BIGINT NOT NULL,
    silence TEXT NOT NULL
);
-- Incident notes of the status pages, posted through the API.
CREATE TABLE monitor_incidents (
    id {{id}},
    page TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    author TEXT NOT NULL,
    created BIGINT NOT NULL,
    updated BIGINT NOT NULL
);
CREATE INDEX monitor_incidents_page ON monitor_incidents(page, created);
-- +goose Down
DROP TABLE monitor_incidents;
DROP TABLE monitor_silences;
DROP TABLE monitor_alerts;
DROP TABLE monitor_alive;
DROP TABLE monitor_check_last;
DROP TABLE monitor_check_hours;
DROP TABLE monitor_samples;
