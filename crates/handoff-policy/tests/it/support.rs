//! Helpers shared by the integration tests.

use handoff_core::{Attributes, Environment, Identity, IdentityId, Source, Status, Time};
use handoff_policy::{Directory, PackFiles, Pdp, Policies, compile};
use std::path::PathBuf;
use std::sync::Arc;

/// `examples/<name>` of the repository.
pub(crate) fn example_dir(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples")).join(name)
}

/// Loads and compiles an example pack, failing with every diagnostic.
pub(crate) fn example(name: &str) -> Arc<Policies> {
    let files = PackFiles::load_dir(&example_dir(name)).unwrap();
    match compile(&files) {
        Ok(p) => Arc::new(p),
        Err(diags) => panic!(
            "{name} does not compile:\n{}",
            diags
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        ),
    }
}

/// A pack from inline files.
pub(crate) fn pack(files: &[(&str, &str)]) -> PackFiles {
    PackFiles {
        files: files
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

/// An active identity.
pub(crate) fn identity(id: &str, owner: Option<&str>, env: Option<&str>) -> Identity {
    Identity {
        id: IdentityId::parse(id).unwrap(),
        owner: owner.map(|o| IdentityId::parse(o).unwrap()),
        environment: env.map(|e| Environment::parse(e).unwrap()),
        attributes: Attributes::default(),
        source: Source::Manual,
        status: Status::Active,
        orphaned: false,
        created_at: Time::default(),
        updated_at: Time::default(),
    }
}

/// A PDP at version 1 over `policies` and `identities`.
pub(crate) fn pdp(policies: &Arc<Policies>, identities: Vec<Identity>) -> Pdp {
    Pdp::new(
        Arc::clone(policies),
        1,
        Directory::from_identities(identities),
    )
}
