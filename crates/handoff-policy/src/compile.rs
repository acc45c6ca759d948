//! Compiling a pack: parse the schema, every policy file, `entities.json`
//! and `pack.toml`, validate the policies strictly against the schema, and
//! report every problem with file, line and column.
//!
//! Policy ids are the `@id("…")` annotation when present, otherwise
//! `<file>:<n>` with `n` the 1-based position of the policy in its file
//! (`policies.cedar:1` is the first policy of `policies.cedar`). Each file is
//! parsed on its own, so source spans are offsets into that file.

use crate::diagnostic::Diagnostic;
use crate::entities::PackEntities;
use crate::pack::{
    ENTITIES_FILE, MAX_PACK_BYTES, MAX_PACK_FILES, PackFiles, SCHEMA_FILE, SETTINGS_FILE,
    TESTS_FILE, is_pack_file, is_policy_file,
};
use crate::policies::Policies;
use crate::settings::PackSettings;
use cedar_policy::{Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};
use std::collections::HashMap;
use std::str::FromStr;

/// Name used for problems of the pack as a whole (size, file count).
pub(crate) const PACK: &str = "(pack)";

/// Validates and compiles a pack. Returns every problem, sorted by file,
/// line and column, or the compiled pack.
pub fn compile(files: &PackFiles) -> Result<Policies, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    if files.files.len() > MAX_PACK_FILES {
        diags.push(Diagnostic::at_line(
            PACK,
            1,
            1,
            format!("the pack has more than {MAX_PACK_FILES} files"),
        ));
    }
    if files.size() > MAX_PACK_BYTES {
        diags.push(Diagnostic::at_line(
            PACK,
            1,
            1,
            format!("the pack is larger than {MAX_PACK_BYTES} bytes"),
        ));
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    for name in files.files.keys() {
        if !is_pack_file(name) && name != TESTS_FILE && !name.ends_with(".md") {
            diags.push(Diagnostic::at_line(
                name,
                1,
                1,
                format!(
                    "unexpected file \"{}\": a pack holds {SCHEMA_FILE}, *.cedar, {ENTITIES_FILE} and {SETTINGS_FILE}",
                    crate::error::shorten(name)
                ),
            ));
        }
    }
    let schema = crate::schema::build(files)
        .map_err(|d| diags.extend(d))
        .ok();
    let (policies, origin) = parse_policies(files, &mut diags);
    let mut entities = PackEntities::default();
    if let Some(schema) = &schema {
        validate(schema, &policies, &origin, files, &mut diags);
        if let Some(text) = files.files.get(ENTITIES_FILE) {
            match crate::entities::parse(text, schema) {
                Ok(parsed) => entities = parsed,
                Err(d) => diags.extend(d),
            }
        }
    }
    let mut settings = PackSettings::default();
    if let Some(text) = files.files.get(SETTINGS_FILE) {
        let actions = schema.as_ref().map(action_ids).unwrap_or_default();
        match crate::settings::parse(text, &actions) {
            Ok(parsed) => settings = parsed,
            Err(d) => diags.extend(d),
        }
    }
    let Some(schema) = schema.filter(|_| diags.is_empty()) else {
        diags.sort();
        diags.dedup();
        return Err(diags);
    };
    Policies::new(schema, policies, entities, settings)
        .map_err(|message| vec![Diagnostic::at_line(SCHEMA_FILE, 1, 1, message)])
}

/// Action ids and full names declared by the schema, as `pack.toml` may name them.
fn action_ids(schema: &Schema) -> Vec<String> {
    schema
        .actions()
        .flat_map(|uid| [uid.id().unescaped().to_owned(), uid.to_string()])
        .collect()
}

/// Parses every `*.cedar` file on its own; returns the policies with their
/// final ids and the file each id came from.
fn parse_policies(
    files: &PackFiles,
    diags: &mut Vec<Diagnostic>,
) -> (Vec<Policy>, HashMap<String, String>) {
    let mut policies = Vec::new();
    let mut origin: HashMap<String, String> = HashMap::new();
    for (name, text) in files.files.iter().filter(|(n, _)| is_policy_file(n)) {
        let too_big = crate::limits::check_policies(name, text);
        if !too_big.is_empty() {
            diags.extend(too_big);
            continue;
        }
        let set = match PolicySet::from_str(text) {
            Ok(set) => set,
            Err(errors) => {
                diags.extend(errors.iter().map(|e| Diagnostic::from_cedar(name, text, e)));
                continue;
            }
        };
        if set.templates().next().is_some() {
            let offset = ["?principal", "?resource"]
                .iter()
                .filter_map(|slot| text.find(slot))
                .min()
                .unwrap_or(0);
            diags.push(Diagnostic::at(
                name,
                text,
                offset,
                "templates (policies with ?principal or ?resource) are not supported",
            ));
        }
        // Cedar numbers the policies of one parse `policy0`, `policy1`, … in
        // source order; its set iterates in no particular order.
        let mut parsed: Vec<&Policy> = set.policies().collect();
        parsed.sort_by_key(|p| {
            p.id()
                .to_string()
                .trim_start_matches("policy")
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        for (n, policy) in parsed.into_iter().enumerate() {
            let id = policy
                .annotation("id")
                .map_or_else(|| format!("{name}:{}", n + 1), str::to_owned);
            if let Some(first) = origin.get(&id) {
                let offset = text.find(&format!("\"{id}\"")).unwrap_or(0);
                diags.push(Diagnostic::at(
                    name,
                    text,
                    offset,
                    format!(
                        "duplicate policy id \"{}\" (first in {first})",
                        crate::error::shorten(&id)
                    ),
                ));
                continue;
            }
            origin.insert(id.clone(), name.clone());
            policies.push(policy.new_id(PolicyId::new(&id)));
        }
    }
    (policies, origin)
}

/// Strict validation; each error is placed in the file its policy came from.
fn validate(
    schema: &Schema,
    policies: &[Policy],
    origin: &HashMap<String, String>,
    files: &PackFiles,
    diags: &mut Vec<Diagnostic>,
) {
    let set = match PolicySet::from_policies(policies.iter().cloned()) {
        Ok(set) => set,
        Err(e) => {
            diags.push(Diagnostic::at_line(PACK, 1, 1, e.to_string()));
            return;
        }
    };
    let result = Validator::new(schema.clone()).validate(&set, ValidationMode::Strict);
    for error in result.validation_errors() {
        let file = origin
            .get(&error.policy_id().to_string())
            .map_or(PACK, String::as_str);
        let text = files.files.get(file).map_or("", String::as_str);
        diags.push(Diagnostic::from_cedar(file, text, error));
    }
}
