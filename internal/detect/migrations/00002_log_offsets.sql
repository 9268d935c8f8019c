-- +goose Up
-- Where each tailed log file was read up to, so that a restart resumes
-- without re-reading or skipping lines. dev and inode identify the file
-- (unsigned 64-bit values stored bit for bit in signed BIGINT); file_offset
-- is the byte after the last line handled (named so because OFFSET is a
-- reserved word in both engines); head is the hex SHA-256 of the file's
-- first min(256, file_offset) bytes, to tell a recycled inode from the
-- file itself. updated is Unix microseconds.
CREATE TABLE detect_log_offsets (
    path TEXT NOT NULL PRIMARY KEY,
    dev BIGINT NOT NULL,
    inode BIGINT NOT NULL,
    file_offset BIGINT NOT NULL,
    head TEXT NOT NULL,
    updated BIGINT NOT NULL
);
-- +goose Down
DROP TABLE detect_log_offsets;
