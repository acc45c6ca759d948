-- Handoff SQLite schema, version 2: versioned policy packs.

-- Every accepted pack, kept forever: `files` is the pack as JSON
-- ({"files": {"name": "contents", …}}), opaque to the store.
CREATE TABLE policy_versions (
    version      INTEGER NOT NULL PRIMARY KEY CHECK (version > 0),
    digest       TEXT    NOT NULL,
    policy_count INTEGER NOT NULL CHECK (policy_count >= 0),
    files        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    created_by   TEXT    NOT NULL
) STRICT;

-- Which version decides. One row at most (id = 1); no row until the first push.
CREATE TABLE policy_state (
    id             INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    active_version INTEGER NOT NULL REFERENCES policy_versions (version),
    updated_at     INTEGER NOT NULL
) STRICT;
