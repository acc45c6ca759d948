-- Handoff SQLite schema, version 1.
--
-- Times are INTEGER microseconds since the Unix epoch (UTC). Ids are the
-- domain's text ids. Tables are STRICT so a value of the wrong type is
-- refused on write instead of read back as something else.

-- The inventory: humans, agents and services.
CREATE TABLE identities (
    id          TEXT    NOT NULL PRIMARY KEY,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    owner       TEXT    NULL REFERENCES identities (id),
    environment TEXT    NULL,
    attributes  TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    orphaned    INTEGER NOT NULL DEFAULT 0 CHECK (orphaned IN (0, 1)),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- One index per list filter, each ending in id so a filtered page is read
-- in key order straight from the index (keyset pagination on id).
CREATE INDEX identities_kind ON identities (kind, id);
CREATE INDEX identities_status ON identities (status, id);
-- Also serves the foreign key check and "flag everything this owner owns".
CREATE INDEX identities_owner ON identities (owner, id);
CREATE INDEX identities_environment ON identities (environment, id);
CREATE INDEX identities_orphaned ON identities (orphaned, id);

-- Credentials: only the keyed hash of the secret is kept.
CREATE TABLE credentials (
    id           TEXT    NOT NULL PRIMARY KEY,
    identity     TEXT    NOT NULL REFERENCES identities (id),
    description  TEXT    NOT NULL,
    hash         BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NULL,
    last_used_at INTEGER NULL,
    revoked_at   INTEGER NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX credentials_identity ON credentials (identity, created_at);

-- Admin API tokens: hash only.
CREATE TABLE admin_tokens (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    role       TEXT    NOT NULL,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NULL,
    revoked_at INTEGER NULL
) STRICT, WITHOUT ROWID;

-- The hash-chained audit log; seq is the rowid, so the head is one lookup.
CREATE TABLE audit_records (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    time      INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    actor     TEXT    NOT NULL,
    target    TEXT    NOT NULL,
    outcome   TEXT    NOT NULL,
    details   TEXT    NOT NULL,
    prev_hash BLOB    NOT NULL CHECK (length(prev_hash) = 32),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32)
) STRICT;

-- Signed checkpoints over the chain head.
CREATE TABLE audit_checkpoints (
    seq       INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    hash      BLOB    NOT NULL CHECK (length(hash) = 32),
    time      INTEGER NOT NULL,
    key_id    TEXT    NOT NULL,
    signature BLOB    NOT NULL
) STRICT;
