-- +goose Up
-- Roles, their grants, and which user holds which role. Times are Unix
-- microseconds (0 = none); booleans are 0/1. There is deliberately no foreign
-- key from access_bindings.user_id to a users table: identity is another
-- capability with its own migrations, and it removes a deleted user's
-- bindings through Store.RemoveUserTx in its own transaction.
CREATE TABLE access_roles (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    builtin INTEGER NOT NULL DEFAULT 0,
    require_2fa INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE access_grants (
    id {{id}},
    role TEXT NOT NULL REFERENCES access_roles(name) ON DELETE CASCADE,
    effect TEXT NOT NULL,
    module TEXT NOT NULL,
    level TEXT NOT NULL,
    scope TEXT NOT NULL,
    expires_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX access_grants_role ON access_grants (role);
CREATE TABLE access_bindings (
    user_id BIGINT NOT NULL,
    role TEXT NOT NULL REFERENCES access_roles(name) ON DELETE CASCADE,
    expires_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, role)
);
CREATE INDEX access_bindings_role ON access_bindings (role);
-- +goose Down
DROP TABLE access_bindings;
DROP TABLE access_grants;
DROP TABLE access_roles;
