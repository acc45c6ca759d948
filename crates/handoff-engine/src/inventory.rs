//! Identity inventory use cases: create, read, list, update, change status.

use crate::{Admin, AppendError, Engine, EngineError};
use handoff_audit::{Draft, Outcome, Record};
use handoff_core::identity::OwnerError;
use handoff_core::{
    Attributes, Cursor, Environment, Identity, IdentityId, Invalid, Kind, Limit, Status,
};
use handoff_store::{Change, IdentityFilter, Page, Write};
use serde_json::json;

/// Longest status-change reason, in bytes.
pub const MAX_REASON_LEN: usize = 512;

/// A validated request to create an identity.
#[derive(Debug, Clone, PartialEq)]
pub struct NewIdentity {
    /// `<kind>:<name>`.
    pub id: IdentityId,
    /// Required for agents and services.
    pub owner: Option<IdentityId>,
    /// Environment label.
    pub environment: Option<Environment>,
    /// Attributes.
    pub attributes: Attributes,
}

/// A validated partial update.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdentityUpdate {
    /// New environment (`Some(None)` clears it).
    pub environment: Option<Option<Environment>>,
    /// New attributes (replaces the object).
    pub attributes: Option<Attributes>,
}

impl Engine {
    /// Sends one change through the appender and maps its failure for `what`.
    pub(crate) async fn submit(
        &self,
        admin: &Admin,
        write: Write,
        kind: &str,
        target: &str,
        details: serde_json::Value,
        what: &str,
    ) -> Result<Record, EngineError> {
        let record = Draft {
            time: self.clock.now(),
            kind: kind.to_owned(),
            actor: admin.actor.audit_name(),
            target: target.to_owned(),
            outcome: Outcome::Success,
            details,
        };
        self.appender
            .submit(Change { write, record })
            .await
            .map_err(|e| match e {
                AppendError::Write(e) => EngineError::from_store(e, what),
                AppendError::Unavailable => EngineError::AuditUnavailable,
            })
    }

    /// Creates an identity after checking the ownership rule.
    pub async fn create_identity(
        &self,
        admin: &Admin,
        new: NewIdentity,
    ) -> Result<Identity, EngineError> {
        admin.require_write()?;
        let owner = match new.owner {
            Some(owner_id) => {
                let found = if owner_id.kind() == Kind::Human {
                    self.store.identity(&owner_id).await?
                } else {
                    None
                };
                Some((owner_id, found))
            }
            None => None,
        };
        let owner = owner
            .as_ref()
            .map(|(id, found)| (id.clone(), found.as_ref()));
        let identity = Identity::new(
            new.id,
            owner,
            new.environment,
            new.attributes,
            self.clock.now(),
        )?;
        let details = json!({
            "kind": identity.kind().as_str(),
            "owner": identity.owner.as_ref().map(IdentityId::as_str),
            "environment": identity.environment.as_ref().map(Environment::as_str),
            "attributes": serde_json::Value::from(identity.attributes.clone()),
        });
        let result = self
            .submit(
                admin,
                Write::CreateIdentity(identity.clone()),
                "identity.create",
                identity.id.as_str(),
                details,
                &quoted(&identity.id),
            )
            .await;
        match (result, &identity.owner) {
            // The owner vanished between the check and the write.
            (Err(EngineError::NotFound(_)), Some(owner)) => {
                Err(OwnerError::Unknown(owner.clone()).into())
            }
            (Err(e), _) => Err(e),
            (Ok(_), _) => {
                self.policy
                    .identities_changed(std::slice::from_ref(&identity));
                Ok(identity)
            }
        }
    }

    /// One identity.
    pub async fn identity(&self, id: &IdentityId) -> Result<Identity, EngineError> {
        self.store.identity(id).await?.ok_or_else(|| not_found(id))
    }

    /// A page of identities.
    pub async fn identities(
        &self,
        filter: &IdentityFilter,
        after: Option<&Cursor>,
        limit: Limit,
    ) -> Result<Page<Identity>, EngineError> {
        Ok(self.store.identities(filter, after, limit).await?)
    }

    /// Replaces an identity's environment and/or attributes.
    pub async fn update_identity(
        &self,
        admin: &Admin,
        id: &IdentityId,
        update: IdentityUpdate,
    ) -> Result<Identity, EngineError> {
        admin.require_write()?;
        if update.environment.is_none() && update.attributes.is_none() {
            return Err(
                Invalid::new("body", "nothing to update: give environment or attributes").into(),
            );
        }
        let current = self.identity(id).await?;
        if current.status == Status::Decommissioned {
            return Err(EngineError::Conflict(format!(
                "identity \"{id}\" is decommissioned; its record is frozen"
            )));
        }
        let mut details = serde_json::Map::new();
        if let Some(env) = &update.environment {
            details.insert(
                "environment".into(),
                json!(env.as_ref().map(Environment::as_str)),
            );
        }
        if let Some(attrs) = &update.attributes {
            details.insert("attributes".into(), attrs.clone().into());
        }
        let write = Write::UpdateIdentity {
            id: id.clone(),
            environment: update.environment,
            attributes: update.attributes,
            at: self.clock.now(),
        };
        self.submit(
            admin,
            write,
            "identity.update",
            id.as_str(),
            details.into(),
            &quoted(id),
        )
        .await?;
        let updated = self.identity(id).await?;
        self.policy
            .identities_changed(std::slice::from_ref(&updated));
        Ok(updated)
    }

    /// Moves an identity to `to`. Disabling or decommissioning a human flags
    /// the agents and services it owns as orphan candidates.
    pub async fn set_status(
        &self,
        admin: &Admin,
        id: &IdentityId,
        to: Status,
        reason: Option<String>,
    ) -> Result<Identity, EngineError> {
        admin.require_write()?;
        if let Some(r) = &reason
            && (r.len() > MAX_REASON_LEN || r.chars().any(char::is_control))
        {
            return Err(Invalid::new(
                "reason",
                format!("reason must be at most {MAX_REASON_LEN} bytes without control characters"),
            )
            .into());
        }
        let current = self.identity(id).await?;
        current.status.transition(to)?;
        let orphan_owned =
            id.kind() == Kind::Human && matches!(to, Status::Disabled | Status::Decommissioned);
        let details = json!({
            "from": current.status.as_str(),
            "to": to.as_str(),
            "reason": reason,
            "orphan_owned": orphan_owned,
            "revokes_delegations": to != Status::Active,
        });
        let write = Write::SetStatus {
            id: id.clone(),
            from: current.status,
            to,
            orphan_owned,
            revoke_delegations: to != Status::Active,
            at: self.clock.now(),
        };
        match self
            .submit(
                admin,
                write,
                "identity.status",
                id.as_str(),
                details,
                &quoted(id),
            )
            .await
        {
            Err(EngineError::Conflict(_)) => Err(EngineError::Conflict(format!(
                "identity \"{id}\" changed status concurrently; read it again and retry"
            ))),
            other => other.map(|_| ()),
        }?;
        self.chains.invalidate();
        let changed = self.identity(id).await?;
        let mut refreshed = vec![changed.clone()];
        if orphan_owned {
            refreshed.extend(self.owned_by(id).await?);
        }
        self.policy.identities_changed(&refreshed);
        Ok(changed)
    }

    /// Every identity owned by `owner`.
    async fn owned_by(&self, owner: &IdentityId) -> Result<Vec<Identity>, EngineError> {
        let filter = IdentityFilter {
            owner: Some(owner.clone()),
            ..IdentityFilter::default()
        };
        let mut owned = Vec::new();
        let mut after = None;
        loop {
            let page = self
                .store
                .identities(&filter, after.as_ref(), Limit::new(Some(500))?)
                .await?;
            owned.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(owned),
            }
        }
    }
}

fn quoted(id: &IdentityId) -> String {
    format!("identity \"{id}\"")
}

pub(crate) fn not_found(id: &IdentityId) -> EngineError {
    EngineError::NotFound(format!("identity \"{id}\" does not exist"))
}
