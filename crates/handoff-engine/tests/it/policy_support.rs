//! The example agents pack and the inventory it expects, shared by the
//! policy tests and the shared-database tests.

use handoff_core::{Attributes, Environment, IdentityId};
use handoff_engine::inventory::NewIdentity;
use handoff_engine::{Admin, Engine};
use handoff_policy::{Action, Entity, PackFiles, Request};

/// The example agents pack, with every decision logged (the example
/// samples ticket reads, which would make counts random here).
pub(crate) fn agents_pack() -> PackFiles {
    let mut pack = PackFiles::load_dir(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/agents"
    )))
    .unwrap();
    pack.files.remove("pack.toml");
    pack
}

pub(crate) fn read_ticket(agent: &str) -> Request {
    Request {
        subject: Entity::new("agent", agent),
        action: Action::new("read_ticket"),
        resource: Entity::new("Support::Ticket", "T-1"),
        context: serde_json::Map::new(),
    }
}

/// alice and her prod agent `agent:support-bot`.
pub(crate) async fn seed_inventory(engine: &Engine) {
    let a = Admin::system();
    let id = |s: &str| IdentityId::parse(s).unwrap();
    engine
        .create_identity(
            &a,
            NewIdentity {
                id: id("human:alice@example.com"),
                owner: None,
                environment: None,
                attributes: Attributes::default(),
            },
        )
        .await
        .unwrap();
    engine
        .create_identity(
            &a,
            NewIdentity {
                id: id("agent:support-bot"),
                owner: Some(id("human:alice@example.com")),
                environment: Some(Environment::parse("prod").unwrap()),
                attributes: Attributes::default(),
            },
        )
        .await
        .unwrap();
}
