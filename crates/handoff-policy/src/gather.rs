//! Gathering the entities one evaluation needs, instead of handing Cedar
//! the whole directory.
//!
//! Cedar reaches entities only from the request (principal, action,
//! resource), from entity references in the context, from entity literals
//! in the policies, and from there through entity-valued attributes; `in`
//! follows parents. So the entities an evaluation needs are the closure of
//! those seeds over parents and attribute references. We gather exactly
//! that closure (bounded by [`MAX_GATHERED_ENTITIES`]) from the request
//! overlays, the directory snapshot and the pack, and let Cedar compute the
//! transitive closure of this small set. Entities that do not exist anywhere
//! are simply absent, as they would be in a full entity store.

use crate::entities::Stored;
use crate::error::PolicyError;
use crate::pdp::Pdp;
use crate::value::MAX_GATHERED_ENTITIES;
use cedar_policy::{Entities, Entity, EntityUid};
use std::collections::HashSet;

/// A request entity (principal or resource) with its overlay, if the
/// request gave properties.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The Cedar uid.
    pub(crate) uid: EntityUid,
    /// The stored entity with the request's properties on top.
    pub(crate) overlay: Option<Stored>,
}

/// Visited uids: a short vector while small (a request usually reaches a
/// handful of entities, for which a linear scan beats hashing), a hash set
/// past that.
#[derive(Default)]
struct Seen<'a> {
    few: Vec<&'a EntityUid>,
    many: HashSet<&'a EntityUid>,
}

impl<'a> Seen<'a> {
    const FEW: usize = 32;

    fn contains(&self, uid: &EntityUid) -> bool {
        self.few.contains(&uid) || self.many.contains(uid)
    }

    fn insert(&mut self, uid: &'a EntityUid) {
        if self.few.len() < Self::FEW {
            self.few.push(uid);
        } else {
            self.many.insert(uid);
        }
    }

    fn len(&self) -> usize {
        self.few.len() + self.many.len()
    }
}

/// One gathering pass; uids are borrowed from the stored entities and the
/// request, never cloned.
pub(crate) struct Gather<'a> {
    pdp: &'a Pdp,
    seen: Seen<'a>,
    out: Vec<Entity>,
    queue: Vec<&'a EntityUid>,
}

impl<'a> Gather<'a> {
    /// An empty pass over `pdp`'s entities.
    pub(crate) fn new(pdp: &'a Pdp) -> Self {
        Self {
            pdp,
            seen: Seen::default(),
            out: Vec::new(),
            queue: Vec::new(),
        }
    }

    /// Adds a request entity: its overlay replaces the stored entity.
    /// The first overlay of a uid wins, so add the merged one first.
    pub(crate) fn target(&mut self, target: &'a Target) {
        match &target.overlay {
            Some(overlay) if !self.seen.contains(&target.uid) => {
                self.seen.insert(&target.uid);
                self.out.push(overlay.entity.clone());
                self.queue.extend(&overlay.refs);
            }
            _ => self.queue.push(&target.uid),
        }
    }

    /// Adds seeds: uids whose closure must be present.
    pub(crate) fn seeds(&mut self, uids: impl IntoIterator<Item = &'a EntityUid>) {
        self.queue.extend(uids);
    }

    /// Follows parents and references from the seeds and builds the entities.
    pub(crate) fn finish(mut self) -> Result<Entities, PolicyError> {
        while let Some(uid) = self.queue.pop() {
            if self.seen.contains(uid) {
                continue;
            }
            // Uids that exist nowhere also count, so a flood of dangling
            // references is bounded too.
            if self.seen.len() >= 4 * MAX_GATHERED_ENTITIES {
                return Err(PolicyError::TooManyEntities);
            }
            self.seen.insert(uid);
            let Some(stored) = self.pdp.lookup(uid) else {
                continue;
            };
            if self.out.len() >= MAX_GATHERED_ENTITIES {
                return Err(PolicyError::TooManyEntities);
            }
            self.out.push(stored.entity.clone());
            self.queue.extend(&stored.refs);
        }
        Entities::from_entities(self.out, None).map_err(|e| PolicyError::Evaluation(e.to_string()))
    }
}
