//! The admin API's wire types: request bodies and queries as clients send
//! them, responses as clients read them, and the conversions between them
//! and the domain.
//!
//! Requests reject unknown fields and carry raw strings; each converts into
//! a validated engine command with the core parsers, so a bad value is a
//! 400 with the core's message. Responses are built from domain types;
//! times are RFC 3339 UTC with microseconds. Nothing here calls the engine.

use crate::schema;
use chrono::SecondsFormat;
use handoff_audit::{Record, Report};
use handoff_core::{
    AdminToken, Attributes, Credential, Cursor, Environment, Identity, IdentityId, Invalid, Kind,
    Limit, Role, Status, Time,
};
use handoff_engine::Authenticated;
use handoff_engine::inventory::{IdentityUpdate, NewIdentity};
use handoff_store::{IdentityFilter, Page};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Default number of audit records per page.
pub const AUDIT_DEFAULT_LIMIT: u32 = 100;
/// Largest audit page (and tail).
pub const AUDIT_MAX_LIMIT: u32 = 1000;

/// A time as the API shows it: RFC 3339, UTC, microseconds, `Z`.
pub fn time(t: Time) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn time_opt(t: Option<Time>) -> Option<String> {
    t.map(time)
}

/// An optional integer, also when written with a zero fraction (`60.0`):
/// JSON has one number type, and JSON Schema's `integer` admits both
/// spellings (JSON Schema Validation 2020-12 §6.1.1).
pub(crate) fn whole_number<'de, D>(d: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    use serde::de::{Error, Unexpected};
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    if let Some(u) = n.as_u64() {
        return Err(D::Error::invalid_value(
            Unexpected::Unsigned(u),
            &"a whole number of seconds",
        ));
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    // -2^63 and 2^63 are exact in f64, so a whole `f` in between casts exactly.
    if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 {
        Ok(Some(f as i64))
    } else {
        Err(D::Error::invalid_type(
            Unexpected::Float(f),
            &"a whole number of seconds",
        ))
    }
}

/// A field that is present, whatever its value (`null` included); with
/// `#[serde(default)]`, absent is `None`.
fn given<'de, D>(d: D) -> Result<Option<serde_json::Value>, D::Error>
where
    D: Deserializer<'de>,
{
    serde_json::Value::deserialize(d).map(Some)
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

// ---------------------------------------------------------------- identities

/// Body of `POST /v1/identities`. Its schema is [`crate::schema`]'s: the
/// ownership rule makes it two shapes, which a derive cannot say.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateIdentity {
    /// `<kind>:<name>`, kind one of human, agent, service.
    pub id: String,
    /// The owning human; required for agents and services, refused for humans.
    #[serde(default)]
    pub owner: Option<String>,
    /// Environment label (lowercase letters, digits, `-`, `_`).
    #[serde(default)]
    pub environment: Option<String>,
    /// Free-form JSON object.
    #[serde(default)]
    pub attributes: Option<serde_json::Value>,
}

impl CreateIdentity {
    /// Validates the request into an engine command.
    pub fn into_command(self) -> Result<NewIdentity, Invalid> {
        let owner = self
            .owner
            .map(|o| IdentityId::parse(&o).map_err(|e| Invalid::new("owner", e.message)))
            .transpose()?;
        Ok(NewIdentity {
            id: IdentityId::parse(&self.id)?,
            owner,
            environment: self
                .environment
                .as_deref()
                .map(Environment::parse)
                .transpose()?,
            attributes: self
                .attributes
                .map(Attributes::parse)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

/// Body of `PATCH /v1/identities/{id}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, example = json!({"environment": "staging", "attributes": {"team": "support"}}))]
pub struct UpdateIdentity {
    /// New environment; `null` clears it, absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<schema::Environment>)]
    pub environment: Option<Option<String>>,
    /// New attributes, replacing the whole object; absent leaves them.
    /// `null` is refused rather than read as absent: send `{}` to clear.
    #[serde(default, deserialize_with = "given")]
    #[schema(value_type = schema::Attributes)]
    pub attributes: Option<serde_json::Value>,
}

impl UpdateIdentity {
    /// Validates the request into an engine command.
    pub fn into_command(self) -> Result<IdentityUpdate, Invalid> {
        let environment = match self.environment {
            None => None,
            Some(None) => Some(None),
            Some(Some(e)) => Some(Some(Environment::parse(&e)?)),
        };
        Ok(IdentityUpdate {
            environment,
            attributes: self.attributes.map(Attributes::parse).transpose()?,
        })
    }
}

/// Body of `POST /v1/identities/{id}/status`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"status": "suspended", "reason": "owner left the team"}))]
pub struct SetStatus {
    /// active, suspended, disabled or decommissioned.
    #[schema(value_type = schema::IdentityStatus)]
    pub status: String,
    /// Why, recorded in the audit log: at most 512 bytes of UTF-8, no
    /// control characters.
    #[serde(default)]
    #[schema(max_length = 512, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub reason: Option<String>,
}

impl SetStatus {
    /// Validates the target status.
    pub fn into_command(self) -> Result<(Status, Option<String>), Invalid> {
        Ok((Status::parse(&self.status)?, self.reason))
    }
}

/// Query of `GET /v1/identities`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListIdentities {
    /// Only this kind: human, agent or service.
    #[param(value_type = Option<schema::IdentityKind>)]
    pub kind: Option<String>,
    /// Only this status.
    #[param(value_type = Option<schema::IdentityStatus>)]
    pub status: Option<String>,
    /// Only identities owned by this identity (only humans own).
    #[param(value_type = Option<schema::IdentityId>)]
    pub owner: Option<String>,
    /// Only this environment.
    #[param(value_type = Option<schema::Environment>)]
    pub environment: Option<String>,
    /// Only orphan candidates (`true`) or only the others (`false`).
    pub orphaned: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<schema::Cursor>)]
    pub cursor: Option<String>,
}

impl ListIdentities {
    /// Validates the query into a filter, a start position and a page size.
    pub fn into_command(self) -> Result<(IdentityFilter, Option<Cursor>, Limit), Invalid> {
        let filter = IdentityFilter {
            kind: self.kind.as_deref().map(str::parse::<Kind>).transpose()?,
            status: self.status.as_deref().map(Status::parse).transpose()?,
            owner: self
                .owner
                .as_deref()
                .map(|o| IdentityId::parse(o).map_err(|e| Invalid::new("owner", e.message)))
                .transpose()?,
            environment: self
                .environment
                .as_deref()
                .map(Environment::parse)
                .transpose()?,
            orphaned: self.orphaned,
        };
        let cursor = self.cursor.as_deref().map(Cursor::decode).transpose()?;
        Ok((filter, cursor, Limit::new(self.limit)?))
    }
}

/// An identity.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(example = json!({"id": "agent:support-bot", "kind": "agent", "name": "support-bot",
    "owner": "human:alice@example.com", "environment": "prod", "attributes": {},
    "source": "manual", "status": "active", "orphaned": false,
    "created_at": "2026-11-22T17:00:00.000000Z", "updated_at": "2026-11-22T17:00:00.000000Z"}))]
pub struct IdentityBody {
    /// `<kind>:<name>`.
    #[schema(value_type = schema::IdentityId)]
    pub id: String,
    /// human, agent or service.
    #[schema(value_type = schema::IdentityKind)]
    pub kind: String,
    /// The part after the colon.
    pub name: String,
    /// The owning human, for agents and services.
    #[schema(value_type = Option<schema::HumanId>)]
    pub owner: Option<String>,
    /// Environment label.
    #[schema(value_type = Option<schema::Environment>)]
    pub environment: Option<String>,
    /// Free-form attributes.
    #[schema(value_type = schema::Attributes)]
    pub attributes: serde_json::Value,
    /// Where the record came from (`manual`).
    pub source: String,
    /// active, suspended, disabled or decommissioned.
    #[schema(value_type = schema::IdentityStatus)]
    pub status: String,
    /// Whether its owner was disabled or decommissioned.
    pub orphaned: bool,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it last changed.
    #[schema(format = DateTime)]
    pub updated_at: String,
}

impl From<Identity> for IdentityBody {
    fn from(i: Identity) -> Self {
        Self {
            kind: i.kind().as_str().to_owned(),
            name: i.id.name().to_owned(),
            id: i.id.into(),
            owner: i.owner.map(String::from),
            environment: i.environment.map(String::from),
            attributes: i.attributes.into(),
            source: i.source.as_str().to_owned(),
            status: i.status.as_str().to_owned(),
            orphaned: i.orphaned,
            created_at: time(i.created_at),
            updated_at: time(i.updated_at),
        }
    }
}

/// One page of identities.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct IdentityPage {
    /// The identities, ordered by id.
    pub items: Vec<IdentityBody>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl From<Page<Identity>> for IdentityPage {
    fn from(p: Page<Identity>) -> Self {
        Self {
            items: p.items.into_iter().map(IdentityBody::from).collect(),
            next_cursor: p.next.as_ref().map(Cursor::encode),
        }
    }
}

// --------------------------------------------------------------- credentials

/// Body of `POST /v1/identities/{id}/credentials`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "ci", "expires_in": 86400}))]
pub struct IssueCredential {
    /// Free text for operators (default empty): at most 256 bytes of UTF-8,
    /// no control characters.
    #[serde(default)]
    #[schema(max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub description: Option<String>,
    /// Lifetime in seconds; absent means no expiry.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = Option<schema::Lifetime>)]
    pub expires_in: Option<i64>,
}

/// Whether a credential may authenticate, at the server's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CredentialState {
    /// Unrevoked and unexpired.
    Active,
    /// Past its expiry.
    Expired,
    /// Revoked.
    Revoked,
}

impl CredentialState {
    /// The state of `c` at `now`; revocation wins over expiry.
    pub fn of(c: &Credential, now: Time) -> Self {
        if c.revoked_at.is_some() {
            Self::Revoked
        } else if c.expires_at.is_some_and(|e| now >= e) {
            Self::Expired
        } else {
            Self::Active
        }
    }
}

/// A credential's metadata; never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CredentialBody {
    /// `cred_<16 hex>`.
    #[schema(value_type = schema::CredentialId)]
    pub id: String,
    /// The agent or service it authenticates.
    #[schema(value_type = schema::NonHumanId)]
    pub identity: String,
    /// Free text.
    pub description: String,
    /// When it was issued.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it stops working, if ever.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// When it last authenticated (updated at most once a minute).
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// active, expired or revoked, at the time of the answer.
    pub state: CredentialState,
}

impl CredentialBody {
    /// The wire form of `c`, its state computed at `now`.
    pub fn new(c: Credential, now: Time) -> Self {
        Self {
            state: CredentialState::of(&c, now),
            id: c.id.into(),
            identity: c.identity.into(),
            description: c.description,
            created_at: time(c.created_at),
            expires_at: time_opt(c.expires_at),
            last_used_at: time_opt(c.last_used_at),
            revoked_at: time_opt(c.revoked_at),
        }
    }
}

/// The answer to issuing a credential: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IssuedCredential {
    /// The credential.
    pub credential: CredentialBody,
    /// The bearer secret, `hfc_…`; store it now, it cannot be shown again.
    pub secret: String,
}

/// Every credential of an identity, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct CredentialList {
    /// The credentials.
    pub items: Vec<CredentialBody>,
}

// -------------------------------------------------------------- admin tokens

/// Body of `POST /v1/admin-tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "ci", "role": "auditor", "expires_in": 3600}))]
pub struct CreateAdminToken {
    /// Operator-chosen name: 1 to 64 bytes of UTF-8, no control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: String,
    /// What it may do.
    #[schema(value_type = schema::AdminRole)]
    pub role: String,
    /// Lifetime in seconds; absent means no expiry.
    #[serde(default, deserialize_with = "whole_number")]
    #[schema(value_type = Option<schema::Lifetime>)]
    pub expires_in: Option<i64>,
}

impl CreateAdminToken {
    /// Validates the role.
    pub fn into_command(self) -> Result<(String, Role, Option<i64>), Invalid> {
        Ok((self.name, Role::parse(&self.role)?, self.expires_in))
    }
}

/// An admin token's metadata; never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AdminTokenBody {
    /// `tok_<16 hex>`.
    #[schema(value_type = schema::AdminTokenId)]
    pub id: String,
    /// Operator-chosen name.
    pub name: String,
    /// What it may do.
    #[schema(value_type = schema::AdminRole)]
    pub role: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When it stops working, if ever.
    #[schema(format = DateTime)]
    pub expires_at: Option<String>,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

impl From<AdminToken> for AdminTokenBody {
    fn from(t: AdminToken) -> Self {
        Self {
            id: t.id.into(),
            name: t.name,
            role: t.role.as_str().to_owned(),
            created_at: time(t.created_at),
            expires_at: time_opt(t.expires_at),
            revoked_at: time_opt(t.revoked_at),
        }
    }
}

/// The answer to creating an admin token: the only time the secret is shown.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedAdminToken {
    /// The token.
    pub token: AdminTokenBody,
    /// The bearer secret, `hfa_…`; store it now, it cannot be shown again.
    pub secret: String,
}

/// Every admin token, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AdminTokenList {
    /// The tokens.
    pub items: Vec<AdminTokenBody>,
}

// -------------------------------------------------------------------- whoami

/// Who a bearer secret belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Whoami {
    /// An admin token.
    AdminToken {
        /// `tok_…`.
        #[schema(value_type = schema::AdminTokenId)]
        id: String,
        /// What it may do.
        #[schema(value_type = schema::AdminRole)]
        role: String,
    },
    /// A credential of an active agent or service.
    Credential {
        /// `cred_…`.
        #[schema(value_type = schema::CredentialId)]
        id: String,
        /// The identity it authenticates.
        #[schema(value_type = schema::NonHumanId)]
        identity: String,
    },
}

impl From<Authenticated> for Whoami {
    fn from(a: Authenticated) -> Self {
        match a {
            Authenticated::AdminToken(t) => Self::AdminToken {
                id: t.id.into(),
                role: t.role.as_str().to_owned(),
            },
            Authenticated::Credential { credential, .. } => Self::Credential {
                id: credential.id.into(),
                identity: credential.identity.into(),
            },
        }
    }
}

// --------------------------------------------------------------------- audit

/// Query of `GET /v1/audit`: `after`/`limit` to page forward, or `tail`.
/// Its parameters are [`crate::schema`]'s: they exclude each other.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListAudit {
    /// Return records with a sequence number above this (default 0).
    pub after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<u32>,
    /// Return the last N records (1 to 1000) instead; excludes `after` and `limit`.
    pub tail: Option<u32>,
}

/// Which records to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditRange {
    /// Up to `limit` records after `after`.
    After {
        /// Exclusive lower bound.
        after: u64,
        /// Page size.
        limit: u32,
    },
    /// The last N records.
    Tail(u32),
}

impl ListAudit {
    /// Validates the query.
    pub fn into_command(self) -> Result<AuditRange, Invalid> {
        let bounded = |field: &'static str, n: u32| {
            if (1..=AUDIT_MAX_LIMIT).contains(&n) {
                Ok(n)
            } else {
                Err(Invalid::new(
                    field,
                    format!("{field} must be between 1 and {AUDIT_MAX_LIMIT}"),
                ))
            }
        };
        match (self.tail, self.after, self.limit) {
            (Some(n), None, None) => Ok(AuditRange::Tail(bounded("tail", n)?)),
            (Some(_), _, _) => Err(Invalid::new(
                "tail",
                "tail cannot be combined with after or limit",
            )),
            (None, after, limit) => Ok(AuditRange::After {
                after: after.unwrap_or(0),
                limit: bounded("limit", limit.unwrap_or(AUDIT_DEFAULT_LIMIT))?,
            }),
        }
    }
}

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RecordBody {
    /// Position in the log, from 1 without gaps.
    pub seq: u64,
    /// When it happened.
    #[schema(format = DateTime)]
    pub time: String,
    /// What happened (`identity.create`, `credential.revoke`, …).
    pub kind: String,
    /// Who did it (`token:tok_…` or `system`).
    pub actor: String,
    /// What it was done to.
    pub target: String,
    /// success, failure, allow or deny.
    pub outcome: String,
    /// Event details; secrets appear only as HMACs.
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    /// The previous record's hash, hex.
    pub prev_hash: String,
    /// This record's hash, hex.
    pub hash: String,
}

impl From<Record> for RecordBody {
    fn from(r: Record) -> Self {
        Self {
            details: r.details_json(),
            seq: r.seq,
            time: time(r.time),
            kind: r.kind,
            actor: r.actor,
            target: r.target,
            outcome: r.outcome.as_str().to_owned(),
            prev_hash: r.prev_hash.to_string(),
            hash: r.hash.to_string(),
        }
    }
}

/// A page of audit records.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AuditPage {
    /// The records, in sequence order.
    pub items: Vec<RecordBody>,
    /// Pass as `after` to read on; `null` when nothing more was committed yet.
    pub next_after: Option<u64>,
}

impl AuditPage {
    /// A page of `records` read for `range`, while the log's head was at
    /// `head_seq`: `next_after` is set only when a forward page stopped short
    /// of the head.
    pub fn new(records: Vec<Record>, range: AuditRange, head_seq: u64) -> Self {
        let next_after = match range {
            AuditRange::After { .. } => records.last().map(|r| r.seq).filter(|&seq| seq < head_seq),
            AuditRange::Tail(_) => None,
        };
        Self {
            items: records.into_iter().map(RecordBody::from).collect(),
            next_after,
        }
    }
}

/// The verdict of `GET /v1/audit/verify`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum Verification {
    /// The chain and every checkpoint verify.
    Intact(VerifiedLog),
    /// The log is broken.
    Broken(BrokenLog),
}

/// A log that verifies.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct VerifiedLog {
    /// Always `true`.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// Checkpoints checked.
    pub checkpoints: u64,
    /// The last sequence number (0 for an empty log).
    pub last_seq: u64,
    /// The last hash, hex.
    pub last_hash: String,
    /// The sequence number of the last signed checkpoint.
    pub last_checkpoint: Option<u64>,
}

/// A log that does not verify.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BrokenLog {
    /// Always `false`.
    pub ok: bool,
    /// The first bad sequence number.
    pub first_bad_seq: u64,
    /// What is wrong there.
    pub reason: String,
}

impl From<Report> for Verification {
    fn from(r: Report) -> Self {
        Self::Intact(VerifiedLog {
            ok: true,
            records: r.records,
            checkpoints: r.checkpoints,
            last_seq: r.last_seq,
            last_hash: r.last_hash.to_string(),
            last_checkpoint: r.last_checkpoint,
        })
    }
}

impl From<handoff_audit::Failure> for Verification {
    fn from(f: handoff_audit::Failure) -> Self {
        Self::Broken(BrokenLog {
            ok: false,
            first_bad_seq: f.seq,
            reason: f.reason.to_string(),
        })
    }
}

// ------------------------------------------------------------------ policies

/// Largest body of `PUT /v1/policies` (every other route takes 64 KiB):
/// the size of the largest pack the engine accepts.
pub const MAX_POLICY_BODY_BYTES: usize = handoff_policy::MAX_PACK_BYTES;

/// A policy version in a path: 1, 2, 3, … without leading zeros.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PolicyVersionNumber(pub u64);

impl PolicyVersionNumber {
    /// Parses a path segment (the pattern of [`schema::PolicyVersion`]).
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new("version", format!("invalid policy version \"{s}\""));
        let digits = !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits || s.starts_with('0') {
            return Err(invalid());
        }
        s.parse().map(Self).map_err(|_| invalid())
    }
}

/// Body of `PUT /v1/policies`: the pack's files by name.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"files": {
    "schema.cedarschema": "entity User; entity Doc; action read appliesTo { principal: User, resource: Doc };",
    "policies.cedar": "permit(principal, action == Action::\"read\", resource);"
}}))]
pub struct PushPolicies {
    /// File name → UTF-8 contents: `schema.cedarschema` (or
    /// `schema.cedarschema.json`), `*.cedar`, `entities.json`, `pack.toml`.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub files: std::collections::BTreeMap<String, String>,
}

impl From<PushPolicies> for handoff_policy::PackFiles {
    fn from(p: PushPolicies) -> Self {
        Self { files: p.files }
    }
}

/// A stored policy version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PolicyVersionBody {
    /// 1, 2, 3, … in upload order.
    pub version: u64,
    /// SHA-256 of the pack's files, hex.
    pub digest: String,
    /// How many policies the pack holds.
    pub policy_count: u32,
    /// When it was uploaded.
    pub created_at: String,
    /// Who uploaded it (`token:<id>`).
    pub created_by: String,
    /// Whether it decides right now.
    pub active: bool,
    /// On push answers only: false when the pack equals the active version
    /// and nothing was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<bool>,
}

impl PolicyVersionBody {
    /// The body of `v`, given the active version.
    pub fn new(v: handoff_core::PolicyVersion, active: Option<u64>) -> Self {
        Self {
            active: active == Some(v.version),
            version: v.version,
            digest: v.digest,
            policy_count: v.policy_count,
            created_at: time(v.created_at),
            created_by: v.created_by,
            created: None,
        }
    }
}

/// Every stored version, oldest first, and the active one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PolicyVersionList {
    /// The versions.
    pub items: Vec<PolicyVersionBody>,
    /// The active version; null before the first push.
    pub active: Option<u64>,
}

/// A stored version with its files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct PolicyVersionDetail {
    /// The version.
    #[serde(flatten)]
    pub version: PolicyVersionBody,
    /// File name → contents, as pushed.
    #[schema(value_type = std::collections::BTreeMap<String, String>)]
    pub files: std::collections::BTreeMap<String, String>,
}

// ------------------------------------------------------------------- service

/// The answer of `/healthz` and `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (live) or `ready`.
    pub status: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeDelta, TimeZone, Utc};
    use handoff_core::CredentialId;

    fn t0() -> Time {
        Utc.with_ymd_and_hms(2026, 11, 22, 17, 0, 0).unwrap()
    }

    #[test]
    fn times_have_microseconds_and_z() {
        assert_eq!(time(t0()), "2026-11-22T17:00:00.000000Z");
    }

    #[test]
    fn credential_state_follows_revocation_then_expiry() {
        let mut c = Credential {
            id: CredentialId::parse("cred_0123456789abcdef").unwrap(),
            identity: IdentityId::parse("agent:bot").unwrap(),
            description: String::new(),
            hash: vec![1],
            created_at: t0(),
            expires_at: Some(t0() + TimeDelta::seconds(60)),
            last_used_at: None,
            revoked_at: None,
        };
        assert_eq!(CredentialState::of(&c, t0()), CredentialState::Active);
        assert_eq!(
            CredentialState::of(&c, t0() + TimeDelta::seconds(60)),
            CredentialState::Expired
        );
        c.revoked_at = Some(t0());
        assert_eq!(
            CredentialState::of(&c, t0() + TimeDelta::days(1)),
            CredentialState::Revoked
        );
        let v = serde_json::to_value(CredentialBody::new(c, t0())).unwrap();
        assert_eq!(v["state"], "revoked");
        assert!(v.get("hash").is_none());
    }

    #[test]
    fn patch_tells_null_from_absent() {
        let u: UpdateIdentity = serde_json::from_str(r#"{"environment": null}"#).unwrap();
        assert_eq!(u.into_command().unwrap().environment, Some(None));
        let u: UpdateIdentity = serde_json::from_str(r#"{"attributes": {}}"#).unwrap();
        let cmd = u.into_command().unwrap();
        assert_eq!(cmd.environment, None);
        assert_eq!(cmd.attributes, Some(Attributes::default()));
        assert!(serde_json::from_str::<UpdateIdentity>(r#"{"env": "x"}"#).is_err());
    }

    #[test]
    fn audit_query_is_either_a_page_or_a_tail() {
        let q = |after, limit, tail| ListAudit { after, limit, tail }.into_command();
        assert_eq!(
            q(None, None, None).unwrap(),
            AuditRange::After {
                after: 0,
                limit: 100
            }
        );
        assert_eq!(
            q(Some(5), Some(10), None).unwrap(),
            AuditRange::After {
                after: 5,
                limit: 10
            }
        );
        assert_eq!(q(None, None, Some(3)).unwrap(), AuditRange::Tail(3));
        assert!(q(Some(1), None, Some(3)).is_err());
        assert!(q(None, Some(0), None).is_err());
        assert!(q(None, Some(1001), None).is_err());
        assert!(q(None, None, Some(0)).is_err());
    }

    #[test]
    fn policy_versions_in_paths_are_positive_without_leading_zeros() {
        assert_eq!(PolicyVersionNumber::parse("1").unwrap().0, 1);
        assert_eq!(
            PolicyVersionNumber::parse("9999999999999999999").unwrap().0,
            9_999_999_999_999_999_999
        );
        for bad in ["", "0", "01", "-1", "1.0", "x", "99999999999999999999"] {
            assert!(PolicyVersionNumber::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_owner_is_reported_as_owner() {
        let req = CreateIdentity {
            id: "agent:bot".into(),
            owner: Some("nobody".into()),
            environment: None,
            attributes: None,
        };
        assert_eq!(req.into_command().unwrap_err().field, "owner");
    }
}
