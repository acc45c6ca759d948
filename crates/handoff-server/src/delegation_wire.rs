//! Wire types of the delegation admin API (`/v1/delegations`,
//! `/v1/lineages`, `/v1/keys`, `/v1/dev/human-tokens`).

use crate::schema;
use crate::wire::time;
use handoff_core::{Cursor, Delegation, IdentityId, Invalid, Limit, Time};
use handoff_store::{DelegationFilter, Page};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// A delegation as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DelegationBody {
    /// `dlg_` and 32 hex digits; the `jti` of its token.
    #[schema(value_type = schema::DelegationId)]
    pub id: String,
    /// The delegation it narrows; `null` for a lineage root.
    #[schema(value_type = Option<schema::DelegationId>)]
    pub parent: Option<String>,
    /// The lineage root (the tokens' `txn`).
    #[schema(value_type = schema::DelegationId)]
    pub lineage: String,
    /// The original subject (`sub`).
    #[schema(value_type = schema::IdentityId)]
    pub subject: String,
    /// Who handed it over.
    #[schema(value_type = schema::IdentityId)]
    pub delegator: String,
    /// Who holds it.
    #[schema(value_type = schema::IdentityId)]
    pub actor: String,
    /// The credential the actor authenticated with, if any.
    #[schema(value_type = Option<schema::CredentialId>)]
    pub credential: Option<String>,
    /// Space-separated scope tokens.
    pub scope: String,
    /// Resource servers it may be presented to; empty means any.
    pub audience: Vec<String>,
    /// Hops below the root.
    pub depth: u32,
    /// The deepest any descendant may be.
    pub max_depth: u32,
    /// Most direct delegations below it.
    pub max_fan_out: u32,
    /// When it was made.
    #[schema(format = DateTime)]
    pub issued_at: String,
    /// When it ends.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// When it was revoked.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
    /// `active`, `revoked` or `expired` (this node only; see the chain).
    #[schema(example = "active")]
    pub state: &'static str,
}

impl DelegationBody {
    /// The view of `d` at `now`.
    pub fn new(d: Delegation, now: Time) -> Self {
        let state = if d.revoked_at.is_some() {
            "revoked"
        } else if now >= d.expires_at {
            "expired"
        } else {
            "active"
        };
        Self {
            id: d.id.to_string(),
            parent: d.parent.map(|p| p.to_string()),
            lineage: d.lineage.to_string(),
            subject: d.subject.to_string(),
            delegator: d.delegator.to_string(),
            actor: d.actor.to_string(),
            credential: d.credential.map(|c| c.to_string()),
            scope: d.scope.to_string(),
            audience: d.audience.entries().map(ToOwned::to_owned).collect(),
            depth: d.depth,
            max_depth: d.max_depth,
            max_fan_out: d.max_fan_out,
            issued_at: time(d.issued_at),
            expires_at: time(d.expires_at),
            revoked_at: d.revoked_at.map(time),
            state,
        }
    }
}

/// `GET /v1/delegations/{id}`: the delegation, its chain and whether the
/// chain is live now.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DelegationDetail {
    /// The delegation.
    pub delegation: DelegationBody,
    /// Root first, ending with the delegation itself.
    pub chain: Vec<DelegationBody>,
    /// Whether every delegation and identity on the chain is live now.
    pub live: bool,
    /// Why not, when it is not.
    pub reason: Option<String>,
}

/// `GET /v1/lineages/{txn}`: a whole tree.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct LineageBody {
    /// The root's id.
    #[schema(value_type = schema::DelegationId)]
    pub lineage: String,
    /// Every delegation, by depth, then issue time.
    pub delegations: Vec<DelegationBody>,
}

/// One page of delegations.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DelegationPage {
    /// The delegations, ordered by id.
    pub items: Vec<DelegationBody>,
    /// Pass as `cursor` to read the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl DelegationPage {
    /// The page at `now`.
    pub fn new(p: Page<Delegation>, now: Time) -> Self {
        Self {
            items: p
                .items
                .into_iter()
                .map(|d| DelegationBody::new(d, now))
                .collect(),
            next_cursor: p.next.as_ref().map(Cursor::encode),
        }
    }
}

/// Query of `GET /v1/delegations`.
#[derive(Debug, Clone, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListDelegations {
    /// Only delegations this identity holds, granted or is the subject of.
    #[param(value_type = Option<schema::IdentityId>)]
    pub identity: Option<String>,
    /// Only unrevoked, unexpired ones.
    pub live: Option<bool>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[param(value_type = Option<schema::Cursor>)]
    pub cursor: Option<String>,
}

impl ListDelegations {
    /// Validates the query.
    pub fn into_command(
        self,
        now: Time,
    ) -> Result<(DelegationFilter, Option<Cursor>, Limit), Invalid> {
        let identity = self
            .identity
            .as_deref()
            .map(|i| IdentityId::parse(i).map_err(|e| Invalid::new("identity", e.message)))
            .transpose()?;
        let filter = DelegationFilter {
            identity,
            live_at: self.live.unwrap_or(false).then_some(now),
        };
        let cursor = self.cursor.as_deref().map(Cursor::decode).transpose()?;
        Ok((filter, cursor, Limit::new(self.limit)?))
    }
}

/// Body of `POST /v1/delegations/{id}/revoke`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeDelegation {
    /// Only report what would lose access.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a revocation took (or would take) away.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BlastRadiusBody {
    /// The delegation addressed.
    #[schema(value_type = schema::DelegationId)]
    pub root: String,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// Every delegation that was live and loses access, parents first.
    pub delegations: Vec<DelegationBody>,
    /// The identities holding them.
    pub identities: Vec<String>,
}

/// Body of `POST /v1/dev/human-tokens`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintHuman {
    /// The human (`human:alice@example.com`).
    #[schema(value_type = schema::HumanId)]
    pub human: String,
    /// Space-separated scope the human's lineage may use.
    #[serde(default)]
    #[schema(max_length = 8192)]
    pub scope: String,
    /// Seconds, at most the maximum lifetime.
    #[schema(minimum = 1)]
    pub lifetime_seconds: Option<i64>,
}

/// A development token.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MintedToken {
    /// The signed JWT, usable as a `subject_token`.
    pub access_token: String,
    /// `urn:ietf:params:oauth:token-type:jwt`.
    pub token_type: &'static str,
}

/// One token-signing key.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyBody {
    /// Its key id.
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// When it was made.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// When a newer key replaced it.
    #[schema(format = DateTime)]
    pub retired_at: Option<String>,
    /// Whether new tokens are signed with it.
    pub signing: bool,
}

/// `GET /v1/keys`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyList {
    /// Newest last.
    pub keys: Vec<KeyBody>,
}

/// `POST /v1/keys/rotate`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rotated {
    /// The new signing key's id.
    pub kid: String,
}
