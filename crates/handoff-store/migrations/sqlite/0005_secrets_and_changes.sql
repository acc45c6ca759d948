-- Handoff SQLite schema, version 5: sealed secrets and the change feed.

-- Secrets sealed by the engine under the master key (never clear text).
CREATE TABLE secrets (
    name       TEXT    NOT NULL PRIMARY KEY,
    value      BLOB    NOT NULL,
    version    INTEGER NOT NULL CHECK (version > 0),
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- What each committed write changed that a node may cache, keyed by the
-- sequence number of the write's audit record (so in commit order).
CREATE TABLE changes (
    seq     INTEGER NOT NULL CHECK (seq > 0),
    topic   TEXT    NOT NULL,
    subject TEXT    NOT NULL,
    PRIMARY KEY (seq, topic, subject)
) STRICT, WITHOUT ROWID;
