-- +goose Up
-- heartbeat is refreshed every minute by the process running the job, so
-- that a run left "running" by a host that is gone (retired, renamed,
-- a container rescheduled) is judged over after a few minutes from any
-- host. The unique index makes "one running job per policy and kind"
-- atomic across processes: of two that start at once, one insert fails.
ALTER TABLE continuity_runs ADD COLUMN heartbeat BIGINT NOT NULL DEFAULT 0;
UPDATE continuity_runs SET status = 'failed', finished = started,
    error = 'interrupted: superseded by a later run of the same job'
 WHERE status = 'running' AND id NOT IN (
    SELECT max(id) FROM continuity_runs WHERE status = 'running' GROUP BY policy, kind);
CREATE UNIQUE INDEX continuity_runs_one_running ON continuity_runs(policy, kind) WHERE status = 'running';
-- +goose Down
DROP INDEX continuity_runs_one_running;
ALTER TABLE continuity_runs DROP COLUMN heartbeat;
