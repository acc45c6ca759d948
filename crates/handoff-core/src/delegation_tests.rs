//! Unit and property tests of the chain rules.

use super::*;
use chrono::TimeZone;
use proptest::prelude::*;

fn at(secs: i64) -> Time {
    chrono::Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn ident(s: &str) -> IdentityId {
    IdentityId::parse(s).unwrap()
}

fn did(n: u128) -> DelegationId {
    DelegationId::from_random(n.to_be_bytes())
}

fn root(scope: &str, audience: &[&str], expires: i64) -> Delegation {
    Delegation {
        id: did(1),
        parent: None,
        lineage: did(1),
        subject: ident("human:alice"),
        delegator: ident("human:alice"),
        actor: ident("human:alice"),
        credential: None,
        scope: Scope::parse(scope).unwrap(),
        audience: Audience::parse(audience).unwrap(),
        depth: 0,
        max_depth: 3,
        max_fan_out: 10,
        issued_at: at(0),
        expires_at: at(expires),
        revoked_at: None,
    }
}

fn child_of(parent: &Delegation, n: u128, actor: &str, narrowed: &Narrowed) -> Delegation {
    Delegation {
        id: did(n),
        parent: Some(parent.id.clone()),
        lineage: parent.lineage.clone(),
        subject: parent.subject.clone(),
        delegator: parent.actor.clone(),
        actor: ident(actor),
        credential: None,
        scope: narrowed.scope.clone(),
        audience: narrowed.audience.clone(),
        depth: narrowed.depth,
        max_depth: narrowed.max_depth,
        max_fan_out: narrowed.max_fan_out,
        issued_at: at(0),
        expires_at: narrowed.expires_at,
        revoked_at: None,
    }
}

fn active(_: &IdentityId) -> Option<Status> {
    Some(Status::Active)
}

fn ask(actor: &str) -> Ask {
    Ask {
        actor: ident(actor),
        scope: None,
        audience: None,
        lifetime: None,
    }
}

#[test]
fn delegation_ids_are_dlg_and_32_hex() {
    let id = did(0xabc);
    assert_eq!(id.as_str().len(), 36);
    assert_eq!(DelegationId::parse(id.as_str()).unwrap(), id);
    for bad in ["dlg_", "dlg_ABC", "x", &format!("dlg_{}", "0".repeat(33))] {
        assert!(DelegationId::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn an_omitted_request_inherits_the_parent_within_default_lifetime() {
    let r = root("read write", &["https://api"], 3600);
    let n = attenuate(
        std::slice::from_ref(&r),
        &ask("agent:bot"),
        &Limits::default(),
        0,
        at(10),
        &active,
    )
    .unwrap();
    assert_eq!(n.scope, r.scope);
    assert_eq!(n.audience, r.audience);
    assert_eq!((n.depth, n.max_depth), (1, 3));
    assert_eq!(n.expires_at, at(10 + 15 * 60));
}

#[test]
fn each_rule_is_named_by_its_refusal() {
    let r = root("read", &["https://api"], 100);
    let chain = std::slice::from_ref(&r);
    let limits = Limits::default();
    let mut a = ask("agent:bot");
    a.scope = Some(Scope::parse("read write").unwrap());
    let e = attenuate(chain, &a, &limits, 0, at(1), &active).unwrap_err();
    assert_eq!(e, Refusal::Scope("write".into()));
    assert_eq!(e.error_code(), "invalid_scope");

    let mut a = ask("agent:bot");
    a.audience = Some(Audience::parse(&["https://other"]).unwrap());
    let e = attenuate(chain, &a, &limits, 0, at(1), &active).unwrap_err();
    assert_eq!(e.error_code(), "invalid_target");

    let mut a = ask("agent:bot");
    a.lifetime = Some(TimeDelta::seconds(200));
    let e = attenuate(chain, &a, &limits, 0, at(1), &active).unwrap_err();
    assert!(matches!(e, Refusal::OutlivesParent { requested: 200, .. }));
    a.lifetime = Some(TimeDelta::hours(2));
    let e = attenuate(chain, &a, &limits, 0, at(1), &active).unwrap_err();
    assert!(matches!(e, Refusal::Lifetime { .. }));

    let e = attenuate(chain, &ask("human:alice"), &limits, 0, at(1), &active).unwrap_err();
    assert_eq!(e, Refusal::Cycle(ident("human:alice")));

    let e = attenuate(chain, &ask("agent:bot"), &limits, 10, at(1), &active).unwrap_err();
    assert!(matches!(e, Refusal::FanOut(_, 10)));

    let e = attenuate(chain, &ask("agent:bot"), &limits, 0, at(100), &active).unwrap_err();
    assert_eq!(e, Refusal::Expired(r.id.clone()));

    let suspended = |i: &IdentityId| {
        Some(if i.as_str() == "agent:bot" {
            Status::Suspended
        } else {
            Status::Active
        })
    };
    let e = attenuate(chain, &ask("agent:bot"), &limits, 0, at(1), &suspended).unwrap_err();
    assert_eq!(e, Refusal::Inactive(ident("agent:bot"), Status::Suspended));
    assert_eq!(e.error_code(), "invalid_request");

    let mut revoked = r.clone();
    revoked.revoked_at = Some(at(0));
    let e = attenuate(
        std::slice::from_ref(&revoked),
        &ask("agent:bot"),
        &limits,
        0,
        at(1),
        &active,
    )
    .unwrap_err();
    assert_eq!(e, Refusal::Revoked(r.id.clone()));
}

#[test]
fn depth_stops_at_the_tighter_of_chain_and_limits() {
    let r = root("read", &[], 3600);
    let limits = Limits {
        max_depth: 2,
        ..Limits::default()
    };
    let n1 = attenuate(
        std::slice::from_ref(&r),
        &ask("agent:a"),
        &limits,
        0,
        at(1),
        &active,
    )
    .unwrap();
    assert_eq!(n1.max_depth, 2);
    let c1 = child_of(&r, 2, "agent:a", &n1);
    let chain = vec![r.clone(), c1.clone()];
    let n2 = attenuate(&chain, &ask("service:b"), &limits, 0, at(1), &active).unwrap();
    let c2 = child_of(&c1, 3, "service:b", &n2);
    let chain = vec![r, c1, c2];
    let e = attenuate(&chain, &ask("service:c"), &limits, 0, at(1), &active).unwrap_err();
    assert_eq!(e, Refusal::Depth { depth: 3, max: 2 });
}

#[test]
fn a_cycle_back_to_any_earlier_actor_is_refused() {
    let r = root("read", &[], 3600);
    let n = attenuate(
        std::slice::from_ref(&r),
        &ask("agent:a"),
        &Limits::default(),
        0,
        at(1),
        &active,
    )
    .unwrap();
    let c1 = child_of(&r, 2, "agent:a", &n);
    let n = attenuate(
        &[r.clone(), c1.clone()],
        &ask("agent:b"),
        &Limits::default(),
        0,
        at(1),
        &active,
    )
    .unwrap();
    let c2 = child_of(&c1, 3, "agent:b", &n);
    let e = attenuate(
        &[r, c1, c2],
        &ask("agent:a"),
        &Limits::default(),
        0,
        at(1),
        &active,
    )
    .unwrap_err();
    assert_eq!(e, Refusal::Cycle(ident("agent:a")));
}

#[test]
fn limits_narrow_field_by_field() {
    let a = Limits::default();
    let b = Limits {
        max_depth: 2,
        max_lifetime: TimeDelta::hours(8),
        default_lifetime: TimeDelta::minutes(5),
        max_fan_out: 500,
    };
    let n = a.narrow(&b);
    assert_eq!(n.max_depth, 2);
    assert_eq!(n.max_lifetime, TimeDelta::hours(1));
    assert_eq!(n.default_lifetime, TimeDelta::minutes(5));
    assert_eq!(n.max_fan_out, 100);
}

const TOKENS: [&str; 8] = [
    "read",
    "write",
    "doc:read",
    "doc:write",
    "doc:*",
    "ticket:close",
    "*",
    "ticket:*",
];
const AUDIENCES: [&str; 4] = ["https://a", "https://b", "https://c", "https://d"];

fn scope_strategy() -> impl Strategy<Value = Option<Scope>> {
    proptest::option::of(proptest::sample::subsequence(TOKENS.to_vec(), 0..4))
        .prop_map(|t| t.map(|t| Scope::parse(&t.join(" ")).unwrap()))
}

fn audience_strategy() -> impl Strategy<Value = Option<Audience>> {
    proptest::option::of(proptest::sample::subsequence(AUDIENCES.to_vec(), 0..3))
        .prop_map(|a| a.map(|a| Audience::parse(&a).unwrap()))
}

#[derive(Debug, Clone)]
struct Step {
    parent: prop::sample::Index,
    actor: u8,
    scope: Option<Scope>,
    audience: Option<Audience>,
    lifetime: Option<i64>,
    elapsed: i64,
}

fn step() -> impl Strategy<Value = Step> {
    (
        any::<prop::sample::Index>(),
        0u8..6,
        scope_strategy(),
        audience_strategy(),
        proptest::option::of(1i64..7200),
        0i64..600,
    )
        .prop_map(|(parent, actor, scope, audience, lifetime, elapsed)| Step {
            parent,
            actor,
            scope,
            audience,
            lifetime,
            elapsed,
        })
}

/// Grows a random lineage: every accepted step adds a child to a random node.
fn grow(steps: &[Step], root_scope: &str) -> (Lineage, Vec<DelegationId>) {
    let limits = Limits {
        max_depth: 4,
        max_fan_out: 3,
        ..Limits::default()
    };
    let mut r = root(root_scope, &["https://a", "https://b"], 3000);
    r.max_depth = 4;
    let mut nodes = vec![r.clone()];
    let mut lineage = Lineage::new([r]);
    let mut now = at(0);
    for (n, s) in steps.iter().enumerate() {
        now += TimeDelta::seconds(s.elapsed);
        let parent = s.parent.get(&nodes).clone();
        let chain: Vec<Delegation> = lineage.chain(&parent.id).into_iter().cloned().collect();
        let children = u32::try_from(
            lineage
                .subtree(&parent.id)
                .iter()
                .filter(|d| d.parent.as_ref() == Some(&parent.id))
                .count(),
        )
        .unwrap();
        let a = Ask {
            actor: ident(&format!("agent:a{}", s.actor)),
            scope: s.scope.clone(),
            audience: s.audience.clone(),
            lifetime: s.lifetime.map(TimeDelta::seconds),
        };
        if let Ok(narrowed) = attenuate(&chain, &a, &limits, children, now, &active) {
            let mut c = child_of(&parent, 100 + n as u128, a.actor.as_str(), &narrowed);
            c.issued_at = now;
            nodes.push(c.clone());
            let all: Vec<Delegation> = nodes.clone();
            lineage = Lineage::new(all);
        }
    }
    let ids = nodes.iter().map(|d| d.id.clone()).collect();
    (lineage, ids)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A child never holds more than its parent: scope, audience, lifetime, depth.
    #[test]
    fn a_child_never_holds_more_than_its_parent(steps in prop::collection::vec(step(), 1..24)) {
        let (lineage, ids) = grow(&steps, "read doc:* ticket:close");
        for id in &ids {
            let d = lineage.get(id).unwrap();
            let Some(parent) = d.parent.as_ref().and_then(|p| lineage.get(p)) else { continue };
            prop_assert!(d.scope.within(&parent.scope).is_ok());
            prop_assert!(d.audience.within(&parent.audience).is_ok());
            prop_assert!(d.expires_at <= parent.expires_at);
            prop_assert!(d.depth == parent.depth + 1);
            prop_assert!(d.depth <= parent.max_depth && d.max_depth <= parent.max_depth);
            prop_assert!(d.max_fan_out <= parent.max_fan_out);
            // No identity appears twice on a chain.
            let chain = lineage.chain(id);
            let mut actors: Vec<&str> = chain.iter().map(|c| c.actor.as_str()).collect();
            let n = actors.len();
            actors.sort_unstable();
            actors.dedup();
            prop_assert_eq!(actors.len(), n);
        }
    }

    /// Revoking any node kills every descendant and nothing else.
    #[test]
    fn revoking_a_node_kills_its_subtree_and_nothing_else(
        steps in prop::collection::vec(step(), 1..24),
        pick in any::<prop::sample::Index>(),
    ) {
        let (mut lineage, ids) = grow(&steps, "*");
        let now = at(0);
        let victim = pick.get(&ids).clone();
        let below: Vec<DelegationId> = lineage.subtree(&victim).iter().map(|d| d.id.clone()).collect();
        let revoked = lineage.revoke(&victim, now);
        prop_assert_eq!(revoked.len(), below.len());
        for id in &ids {
            let on_victims_chain = lineage.chain(id).iter().any(|d| d.id == victim);
            let d = lineage.get(id).unwrap();
            prop_assert_eq!(d.revoked_at.is_some(), on_victims_chain);
            prop_assert_eq!(on_victims_chain, below.contains(id));
            // Revoked or not, the chain_live view agrees with the cascade.
            if on_victims_chain {
                prop_assert!(!lineage.chain_live(id, now));
            }
        }
        // Revoking again changes nothing.
        prop_assert!(lineage.revoke(&victim, now).is_empty());
    }
}
