-- +goose Up
-- One row per published event. Times are Unix microseconds (store.Micros);
-- severity is its rank (1 info .. 5 critical) so MinSeverity is a plain
-- comparison; tags and data are canonical JSON text (sorted keys), which
-- lets tag filters prefilter with LIKE before the exact check in Go.
CREATE TABLE events (
    id {{id}},
    at BIGINT NOT NULL,
    type TEXT NOT NULL,
    severity INTEGER NOT NULL,
    module TEXT NOT NULL,
    actor TEXT NOT NULL,
    resource TEXT NOT NULL,
    tags TEXT NOT NULL,
    message TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX events_at ON events(at);
CREATE INDEX events_type ON events(type, id);
CREATE INDEX events_module ON events(module, id);
CREATE INDEX events_resource ON events(resource, id);
-- +goose Down
DROP TABLE events;
