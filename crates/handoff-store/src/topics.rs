//! Which [`Topic`]s a [`Write`] touches: one function, shared by every
//! backend, so all of them publish the same change feed.

use crate::{Topic, Write};

/// The topics `write` changes, as nodes holding them in memory see them.
/// Writes nothing is cached for (new delegations, credentials, tokens,
/// client keys, unactivated policy uploads never cached) touch none.
pub fn topics(write: &Write) -> Vec<Topic> {
    match write {
        Write::CreateIdentity(identity) => vec![Topic::Identity(identity.id.clone())],
        Write::UpdateIdentity { id, .. } => vec![Topic::Identity(id.clone())],
        Write::SetStatus {
            id,
            orphan_owned,
            revoke_delegations,
            ..
        } => {
            let mut topics = vec![Topic::Identity(id.clone())];
            if *orphan_owned {
                topics.push(Topic::Owned(id.clone()));
            }
            if *revoke_delegations {
                topics.push(Topic::Delegations);
            }
            topics
        }
        Write::RevokeCredential { .. } | Write::RevokeDelegations { .. } => {
            vec![Topic::Delegations]
        }
        Write::PutPolicyVersion { .. } | Write::ActivatePolicyVersion { .. } => {
            vec![Topic::Policy]
        }
        Write::ReplaceSecret { name, .. } => vec![Topic::Secret(name.clone())],
        Write::Nothing
        | Write::IssueCredential(_)
        | Write::CreateAdminToken(_)
        | Write::CreateFirstAdminToken(_)
        | Write::RevokeAdminToken { .. }
        | Write::CreateDelegations(_)
        | Write::AddClientKey(_)
        | Write::RevokeClientKey { .. } => Vec::new(),
    }
}

impl Topic {
    /// The stored form: a topic name and its subject ("" when it has none).
    pub fn to_parts(&self) -> (&'static str, &str) {
        match self {
            Self::Identity(id) => ("identity", id.as_str()),
            Self::Owned(id) => ("owned", id.as_str()),
            Self::Delegations => ("delegations", ""),
            Self::Policy => ("policy", ""),
            Self::Secret(name) => ("secret", name.as_str()),
        }
    }

    /// The topic from its stored form; `None` for a name this binary does
    /// not know (written by a newer node) or a malformed subject.
    pub fn from_parts(name: &str, subject: &str) -> Option<Self> {
        Some(match name {
            "identity" => Self::Identity(subject.parse().ok()?),
            "owned" => Self::Owned(subject.parse().ok()?),
            "delegations" => Self::Delegations,
            "policy" => Self::Policy,
            "secret" => Self::Secret(subject.to_owned()),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use handoff_core::{IdentityId, Status, Time};

    #[test]
    fn every_topic_round_trips_its_stored_form() {
        let id: IdentityId = "agent:planner".parse().unwrap();
        for topic in [
            Topic::Identity(id.clone()),
            Topic::Owned(id),
            Topic::Delegations,
            Topic::Policy,
            Topic::Secret("token-signing".into()),
        ] {
            let (name, subject) = topic.to_parts();
            assert_eq!(Topic::from_parts(name, subject), Some(topic.clone()));
        }
        assert_eq!(Topic::from_parts("signals-v9", ""), None);
        assert_eq!(Topic::from_parts("identity", "not an id"), None);
    }

    #[test]
    fn a_suspension_names_the_identity_its_owned_ones_and_delegations() {
        let id: IdentityId = "agent:planner".parse().unwrap();
        let write = Write::SetStatus {
            id: id.clone(),
            from: Status::Active,
            to: Status::Suspended,
            orphan_owned: true,
            revoke_delegations: true,
            at: Time::UNIX_EPOCH,
        };
        assert_eq!(
            topics(&write),
            vec![
                Topic::Identity(id.clone()),
                Topic::Owned(id),
                Topic::Delegations
            ]
        );
        assert!(topics(&Write::Nothing).is_empty());
    }
}
