//! Following other nodes: on a shared database, every node holds chains,
//! policies, the inventory and the token keys in memory for the hot path,
//! so it reads the change feed ([`Store::changes_since`]) whenever a
//! notification arrives, and at least every [`POLL`], and reloads what
//! changed. The feed is keyed by audit sequence number, so a missed
//! notification or a lost connection is caught up by reading from the last
//! number seen.
//!
//! A node that has not read the feed for [`STALE_AFTER`] cannot trust its
//! caches: [`Engine::check_fresh`] then fails and decisions answer 503
//! (fail closed) until the database is back.

use crate::{Engine, EngineError};
use handoff_core::{IdentityId, Limit};
use handoff_store::{Changed, IdentityFilter, Store, Topic};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The longest a node waits between two reads of the feed.
pub const POLL: Duration = Duration::from_millis(250);
/// How long after its last good read a node stops trusting its caches.
pub const STALE_AFTER: Duration = Duration::from_secs(2);
/// Changes read per query.
const PAGE: u32 = 1000;

/// When the feed was last read successfully.
#[derive(Debug)]
pub(crate) struct Freshness {
    started: Instant,
    /// Milliseconds after `started` of the last good read; `u64::MAX` for a
    /// node that follows nobody (a database only it writes).
    last_ok: AtomicU64,
    /// The last sequence number read.
    seen: AtomicU64,
}

impl Freshness {
    /// A node alone on its database: always fresh.
    pub(crate) fn alone() -> Self {
        Self {
            started: Instant::now(),
            last_ok: AtomicU64::new(u64::MAX),
            seen: AtomicU64::new(0),
        }
    }

    /// A node following a shared database from sequence number `seen`.
    pub(crate) fn following(seen: u64) -> Self {
        Self {
            started: Instant::now(),
            last_ok: AtomicU64::new(0),
            seen: AtomicU64::new(seen),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn mark_ok(&self) {
        let now = self.now_ms();
        self.last_ok.fetch_max(now, Ordering::AcqRel);
    }

    pub(crate) fn fresh(&self) -> bool {
        let last = self.last_ok.load(Ordering::Acquire);
        last == u64::MAX
            || self.now_ms().saturating_sub(last)
                < u64::try_from(STALE_AFTER.as_millis()).unwrap_or(u64::MAX)
    }

    /// The last sequence number read.
    pub(crate) fn seen(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }
}

impl Engine {
    /// Whether this node's caches can be trusted: always on a database only
    /// it writes; on a shared one, only while it keeps reading the feed.
    pub fn check_fresh(&self) -> Result<(), EngineError> {
        if self.freshness.fresh() {
            Ok(())
        } else {
            Err(EngineError::Unavailable(
                "this node has lost the database: it cannot tell what other nodes revoked, \
                 so it refuses to decide until the database is back"
                    .into(),
            ))
        }
    }

    /// The last change-feed sequence number this node has applied (0 on a
    /// database only it writes).
    pub fn changes_seen(&self) -> u64 {
        self.freshness.seen()
    }

    /// Reads the shared token keys again (after a conflicting rotation);
    /// nothing on a database only this node writes.
    pub async fn reload_shared_keys(&self) -> Result<(), EngineError> {
        if let Some(shared) = &self.shared {
            shared
                .reload_tokens(self.store.as_ref(), self.keys.tokens())
                .await?;
            self.chains.forget_tokens();
        }
        Ok(())
    }

    /// Follows the feed until the task is aborted.
    pub(crate) async fn follow(self) {
        loop {
            self.store.wait_for_change(POLL).await;
            if let Err(e) = self.catch_up().await {
                metrics::counter!("handoff_follow_failures_total").increment(1);
                tracing::warn!(error = %e, "reading other nodes' changes failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }

    /// Reads and applies every change after the last one seen.
    pub(crate) async fn catch_up(&self) -> Result<(), EngineError> {
        loop {
            let after = self.freshness.seen();
            let changes = self.store.changes_since(after, PAGE).await?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                let head = self.store.audit_head().await?.seq;
                if head < after {
                    self.reload_everything(head).await?;
                }
                self.freshness.mark_ok();
                return Ok(());
            };
            self.apply(&changes).await?;
            self.freshness.seen.fetch_max(last, Ordering::AcqRel);
            self.freshness.mark_ok();
            metrics::counter!("handoff_follow_changes_total").increment(changes.len() as u64);
            if changes.len() < PAGE as usize {
                return Ok(());
            }
        }
    }

    /// The stored chain ends before what this node has seen: the database
    /// was restored or failed over to an earlier point. Nothing held can be
    /// trusted to match it, so everything is read again and the feed is
    /// followed from the stored head.
    async fn reload_everything(&self, head: u64) -> Result<(), EngineError> {
        tracing::warn!(
            seen = self.freshness.seen(),
            head,
            "the database's audit chain is shorter than what this node has seen \
             (a restore or failover): reloading everything"
        );
        self.policy.reload_all(self.store.as_ref()).await?;
        self.chains.invalidate();
        self.reload_shared_keys().await?;
        self.freshness.seen.store(head, Ordering::Release);
        Ok(())
    }

    async fn apply(&self, changes: &[Changed]) -> Result<(), EngineError> {
        let mut identities = BTreeSet::<IdentityId>::new();
        let mut owners = BTreeSet::<IdentityId>::new();
        let (mut delegations, mut policy, mut tokens) = (false, false, false);
        for change in changes {
            match &change.topic {
                Topic::Identity(id) => {
                    identities.insert(id.clone());
                }
                Topic::Owned(id) => {
                    owners.insert(id.clone());
                }
                Topic::Delegations => delegations = true,
                Topic::Policy => policy = true,
                Topic::Secret(name) => tokens |= name == crate::shared::TOKEN_SECRET,
            }
        }
        // Statuses feed the chain check: a changed identity may end a chain.
        if delegations || !identities.is_empty() {
            self.chains.invalidate();
        }
        let mut changed = Vec::new();
        for id in &identities {
            if let Some(identity) = self.store.identity(id).await? {
                changed.push(identity);
            }
        }
        for owner in &owners {
            changed.extend(owned_by(self.store.as_ref(), owner).await?);
        }
        if !changed.is_empty() {
            self.policy.identities_changed(&changed);
        }
        if policy {
            self.policy.reload_active(self.store.as_ref()).await?;
        }
        if tokens {
            self.reload_shared_keys().await?;
        }
        Ok(())
    }
}

async fn owned_by(
    store: &dyn Store,
    owner: &IdentityId,
) -> Result<Vec<handoff_core::Identity>, EngineError> {
    let filter = IdentityFilter {
        owner: Some(owner.clone()),
        ..IdentityFilter::default()
    };
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .identities(&filter, after.as_ref(), Limit::new(Some(500))?)
            .await?;
        all.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(all),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_node_is_always_fresh_and_a_follower_goes_stale() {
        assert!(Freshness::alone().fresh());
        let f = Freshness::following(7);
        assert_eq!(f.seen(), 7);
        f.mark_ok();
        assert!(f.fresh());
        let old = Freshness {
            started: Instant::now() - STALE_AFTER - Duration::from_millis(10),
            last_ok: AtomicU64::new(0),
            seen: AtomicU64::new(0),
        };
        assert!(!old.fresh());
    }
}
