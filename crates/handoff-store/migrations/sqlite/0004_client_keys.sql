-- Handoff SQLite schema, version 4: public keys of agents and services
-- for private_key_jwt client authentication (RFC 7523). Public JWKs only.

CREATE TABLE client_keys (
    identity   TEXT    NOT NULL REFERENCES identities (id),
    kid        TEXT    NOT NULL,
    jwk        TEXT    NOT NULL CHECK (json_valid(jwk)),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER NULL,
    PRIMARY KEY (identity, kid)
) STRICT, WITHOUT ROWID;
