-- +goose Up
-- owner names the process that runs the job (host/boot id/pid/start time),
-- so that a scheduler starting up marks failed only the runs whose process
-- is gone, not a run a concurrent `bulwark policy run` has in progress.
ALTER TABLE continuity_runs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
-- +goose Down
ALTER TABLE continuity_runs DROP COLUMN owner;
