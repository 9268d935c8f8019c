-- +goose Up
-- When the guard first saw each account log in successfully at a site
-- (Unix microseconds): accounts first seen less than a login endpoint's
-- new_account_age ago get its stricter limit on tries.
CREATE TABLE detect_accounts (
    site TEXT NOT NULL,
    account TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (site, account)
);
-- +goose Down
DROP TABLE detect_accounts;
