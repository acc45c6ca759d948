-- Handoff PostgreSQL schema, version 1: the whole layout of SQLite
-- versions 1 to 5 in one step.
--
-- Times are BIGINT microseconds since the Unix epoch (UTC), as on SQLite,
-- so they round-trip exactly. Ids are the domain's text ids, compared and
-- ordered byte by byte (COLLATE "C") like SQLite does, whatever the
-- database's locale: keyset pagination depends on that order. Texts the
-- store must return byte for byte (audit details, JWKs, policy files,
-- attributes) are TEXT, not JSONB, which would reformat them.

-- The inventory: humans, agents and services.
CREATE TABLE identities (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    kind        TEXT COLLATE "C" NOT NULL,
    name        TEXT    NOT NULL,
    owner       TEXT COLLATE "C" NULL REFERENCES identities (id),
    environment TEXT COLLATE "C" NULL,
    attributes  TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    status      TEXT COLLATE "C" NOT NULL,
    orphaned    BOOLEAN NOT NULL DEFAULT false,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

-- One index per list filter, each ending in id so a filtered page is read
-- in key order straight from the index (keyset pagination on id).
CREATE INDEX identities_kind ON identities (kind, id);
CREATE INDEX identities_status ON identities (status, id);
-- Also serves the foreign key check and "flag everything this owner owns".
CREATE INDEX identities_owner ON identities (owner, id);
CREATE INDEX identities_environment ON identities (environment, id);
CREATE INDEX identities_orphaned ON identities (orphaned, id);

-- Credentials: only the keyed hash of the secret is kept. Room left on
-- each page (fillfactor) lets updates of columns no index covers (last
-- use, revocation) stay on their page (HOT) without touching any index.
CREATE TABLE credentials (
    id           TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    identity     TEXT COLLATE "C" NOT NULL REFERENCES identities (id),
    description  TEXT   NOT NULL,
    hash         BYTEA  NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NULL,
    last_used_at BIGINT NULL,
    revoked_at   BIGINT NULL
) WITH (fillfactor = 90);

CREATE INDEX credentials_identity ON credentials (identity, created_at);

-- Admin API tokens: hash only.
CREATE TABLE admin_tokens (
    id         TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    name       TEXT   NOT NULL,
    role       TEXT   NOT NULL,
    hash       BYTEA  NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL,
    revoked_at BIGINT NULL
);

-- The hash-chained audit log.
CREATE TABLE audit_records (
    seq       BIGINT NOT NULL PRIMARY KEY CHECK (seq > 0),
    time      BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    actor     TEXT   NOT NULL,
    target    TEXT   NOT NULL,
    outcome   TEXT   NOT NULL,
    details   TEXT   NOT NULL,
    prev_hash BYTEA  NOT NULL CHECK (octet_length(prev_hash) = 32),
    hash      BYTEA  NOT NULL CHECK (octet_length(hash) = 32)
);

-- The chain head, one row: every commit locks it first (SELECT … FOR
-- UPDATE) and moves it last, so batches from several nodes append to one
-- chain in commit order. Under READ COMMITTED a locking read returns the
-- row's latest committed version, which is why the head lives here and is
-- not computed from audit_records under the lock.
CREATE TABLE audit_head (
    id   SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  BIGINT   NOT NULL CHECK (seq >= 0),
    hash BYTEA    NOT NULL CHECK (octet_length(hash) = 32)
);

INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Signed checkpoints over the chain head.
CREATE TABLE audit_checkpoints (
    seq       BIGINT NOT NULL PRIMARY KEY CHECK (seq > 0),
    hash      BYTEA  NOT NULL CHECK (octet_length(hash) = 32),
    time      BIGINT NOT NULL,
    key_id    TEXT   NOT NULL,
    signature BYTEA  NOT NULL
);

-- Every accepted policy pack, kept forever: `files` is the pack as JSON
-- ({"files": {"name": "contents", …}}), opaque to the store.
CREATE TABLE policy_versions (
    version      BIGINT NOT NULL PRIMARY KEY CHECK (version > 0),
    digest       TEXT   NOT NULL,
    policy_count BIGINT NOT NULL CHECK (policy_count >= 0),
    files        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    created_by   TEXT   NOT NULL
);

-- Which version decides. One row at most (id = 1); no row until the first push.
CREATE TABLE policy_state (
    id             SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    active_version BIGINT   NOT NULL REFERENCES policy_versions (version),
    updated_at     BIGINT   NOT NULL
);

-- Every handoff ever made, kept after it expires or is revoked. A lineage
-- is a tree over `parent`; revocation cascades down it (a recursive query
-- over delegations_parent). `scope` is the space-separated scope,
-- `audience` a JSON array of strings. The fillfactor keeps revocations and
-- live child counts HOT updates where the page has room.
CREATE TABLE delegations (
    id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    parent      TEXT COLLATE "C" NULL REFERENCES delegations (id),
    lineage     TEXT COLLATE "C" NOT NULL,
    subject     TEXT COLLATE "C" NOT NULL,
    delegator   TEXT COLLATE "C" NOT NULL,
    actor       TEXT COLLATE "C" NOT NULL,
    credential  TEXT COLLATE "C" NULL,
    scope       TEXT   NOT NULL,
    audience    JSONB  NOT NULL CHECK (jsonb_typeof(audience) = 'array'),
    depth       BIGINT NOT NULL CHECK (depth >= 0),
    max_depth   BIGINT NOT NULL CHECK (max_depth >= 0),
    max_fan_out BIGINT NOT NULL CHECK (max_fan_out >= 0),
    -- Unrevoked direct children, kept by the writes (insert adds one,
    -- revocation recounts the parents of what it revoked), so a fan-out
    -- check is one row, however many children there are.
    live_children BIGINT NOT NULL DEFAULT 0 CHECK (live_children >= 0),
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    revoked_at  BIGINT NULL
) WITH (fillfactor = 85);

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
    client     TEXT COLLATE "C" NOT NULL,
    jti        TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL,
    PRIMARY KEY (client, jti)
);

-- Forgetting expired entries is a range scan on this index.
CREATE INDEX assertion_jtis_expires_at ON assertion_jtis (expires_at);

-- Public keys of agents and services for private_key_jwt client
-- authentication (RFC 7523). Public JWKs only, kept as written.
CREATE TABLE client_keys (
    identity   TEXT COLLATE "C" NOT NULL REFERENCES identities (id),
    kid        TEXT COLLATE "C" NOT NULL,
    jwk        TEXT   NOT NULL CHECK (jwk::jsonb IS NOT NULL),
    created_at BIGINT NOT NULL,
    revoked_at BIGINT NULL,
    PRIMARY KEY (identity, kid)
);

-- Secrets sealed by the engine under the master key (never clear text).
CREATE TABLE secrets (
    name       TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    value      BYTEA  NOT NULL,
    version    BIGINT NOT NULL CHECK (version > 0),
    updated_at BIGINT NOT NULL
);

-- What each committed write changed that a node may cache, keyed by the
-- sequence number of the write's audit record (so in commit order).
CREATE TABLE changes (
    seq     BIGINT NOT NULL CHECK (seq > 0),
    topic   TEXT COLLATE "C" NOT NULL,
    subject TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (seq, topic, subject)
);
