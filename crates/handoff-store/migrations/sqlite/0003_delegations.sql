-- Handoff SQLite schema, version 3: delegations and client assertion replay
-- protection.

-- Every handoff ever made, kept after it expires or is revoked. A lineage
-- is a tree over `parent`; revocation cascades down it (a recursive query
-- over delegations_parent). `scope` is the space-separated scope, `audience`
-- a JSON array of strings.
CREATE TABLE delegations (
    id          TEXT    NOT NULL PRIMARY KEY,
    parent      TEXT    NULL REFERENCES delegations (id),
    lineage     TEXT    NOT NULL,
    subject     TEXT    NOT NULL,
    delegator   TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    credential  TEXT    NULL,
    scope       TEXT    NOT NULL,
    audience    TEXT    NOT NULL CHECK (json_valid(audience) AND json_type(audience) = 'array'),
    depth       INTEGER NOT NULL CHECK (depth >= 0),
    max_depth   INTEGER NOT NULL CHECK (max_depth >= 0),
    max_fan_out INTEGER NOT NULL CHECK (max_fan_out >= 0),
    -- Unrevoked direct children, kept by the writes (insert adds one,
    -- revocation recounts the parents of what it revoked), so a fan-out
    -- check is one row, however many children there are.
    live_children INTEGER NOT NULL DEFAULT 0 CHECK (live_children >= 0),
    issued_at   INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    revoked_at  INTEGER NULL
) STRICT, WITHOUT ROWID;

-- A WITHOUT ROWID table's indexes end in its primary key (id), so each of
-- these also yields ids in key order.
-- Walks down a lineage (cascading revocation), counts live children
-- (fan-out) and serves the foreign key check.
CREATE INDEX delegations_parent ON delegations (parent);
-- A whole lineage in the order it is listed.
CREATE INDEX delegations_lineage ON delegations (lineage, depth, issued_at, id);
-- "Everything this identity holds, granted or is the subject of": listing
-- and the cascade when the identity is suspended, disabled or decommissioned.
CREATE INDEX delegations_actor ON delegations (actor);
CREATE INDEX delegations_delegator ON delegations (delegator);
CREATE INDEX delegations_subject ON delegations (subject);
-- The cascade when a credential is revoked.
CREATE INDEX delegations_credential ON delegations (credential);

-- Client assertion ids seen (RFC 7523 §3, item 7), kept until the assertion
-- expires: a second use of the same `jti` by the same client is a replay.
CREATE TABLE assertion_jtis (
    client     TEXT    NOT NULL,
    jti        TEXT    NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (client, jti)
) STRICT;

-- Forgetting expired entries is a range delete on this index.
CREATE INDEX assertion_jtis_expires_at ON assertion_jtis (expires_at);
