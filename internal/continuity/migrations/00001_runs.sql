-- +goose Up
-- One row per run of a policy's job: a backup run (backups of every
-- source, retention, offsite copies), a restore test, a scrub. Times are
-- Unix microseconds; finished is 0 while the run is in progress (or was cut
-- off by a crash, which the next start marks failed). evidence is the
-- run's JSON report (snapshot ids, bytes, durations, data age).
CREATE TABLE continuity_runs (
    id {{id}},
    policy TEXT NOT NULL,
    kind TEXT NOT NULL,
    started BIGINT NOT NULL,
    finished BIGINT NOT NULL,
    status TEXT NOT NULL,
    error TEXT NOT NULL,
    evidence TEXT NOT NULL
);
CREATE INDEX continuity_runs_policy ON continuity_runs(policy, kind, started);
-- +goose Down
DROP TABLE continuity_runs;
