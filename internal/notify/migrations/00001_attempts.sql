-- +goose Up
-- One row per attempt to deliver a notification to a channel, successful
-- or not: the evidence that alerts reach people (the posture report reads
-- the last successful attempt per channel). delivery groups the attempts
-- of one message to one channel (attempt 1, 2, ... of the retries).
-- started is Unix microseconds, duration microseconds, ok 0 or 1. error is
-- the failure, already scrubbed of the channel's secrets; title is the
-- message's one-line summary, never its body.
CREATE TABLE notify_attempts (
    id {{id}},
    delivery TEXT NOT NULL,
    channel TEXT NOT NULL,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    state TEXT NOT NULL,
    severity TEXT NOT NULL,
    alert TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    started BIGINT NOT NULL,
    duration BIGINT NOT NULL,
    ok INTEGER NOT NULL,
    error TEXT NOT NULL
);
CREATE INDEX notify_attempts_channel ON notify_attempts(channel, ok, started);
CREATE INDEX notify_attempts_started ON notify_attempts(started);
-- +goose Down
DROP TABLE notify_attempts;
