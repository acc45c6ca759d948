//! Stored entities (what the directory and a pack's `entities.json` hold)
//! and the parsing of `entities.json`.
//!
//! `entities.json` is Cedar's entity JSON format, validated against the
//! pack's schema. It holds resources, teams and other non-identity
//! entities. An entry for a Handoff identity type (`Human`, `Agent`,
//! `Service`) may give only `parents` — team memberships that are added to
//! the inventory identity of that id; its attributes come from the inventory.

use crate::diagnostic::{Diagnostic, array_element_offsets, find_quoted_name};
use crate::names::{entity_id, type_kind};
use crate::pack::ENTITIES_FILE;
use crate::schema::json_message;
use cedar_policy::{Entities, Entity, EntityTypeName, EntityUid, EvalResult, Schema};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;

/// A Cedar entity with the uids it points at (parents and entity-valued
/// attributes): what an evaluation must gather along with it.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    /// The entity, with parents (not ancestors).
    pub(crate) entity: Entity,
    /// Parents and entity references in attributes, deduplicated.
    pub(crate) refs: Vec<EntityUid>,
    /// Parents only.
    pub(crate) parents: Vec<EntityUid>,
}

impl Stored {
    /// Wraps `entity`, collecting its parents and attribute references.
    pub(crate) fn new(entity: Entity) -> Self {
        let mut refs = Vec::new();
        for (_, value) in entity.attrs() {
            if let Ok(value) = value {
                collect_refs(&value, &mut refs);
            }
        }
        let (_, _, parents) = entity.clone().into_inner();
        let parents: Vec<EntityUid> = parents.into_iter().collect();
        refs.extend(parents.iter().cloned());
        dedup(&mut refs);
        Self {
            entity,
            refs,
            parents,
        }
    }
}

/// Removes duplicates, keeping the first of each.
pub(crate) fn dedup(uids: &mut Vec<EntityUid>) {
    let mut seen = HashSet::with_capacity(uids.len());
    uids.retain(|u| seen.insert(u.clone()));
}

fn collect_refs(value: &EvalResult, out: &mut Vec<EntityUid>) {
    match value {
        EvalResult::EntityUid(uid) => out.push(uid.clone()),
        EvalResult::Set(set) => set.iter().for_each(|v| collect_refs(v, out)),
        EvalResult::Record(record) => record.iter().for_each(|(_, v)| collect_refs(v, out)),
        EvalResult::Bool(_)
        | EvalResult::Long(_)
        | EvalResult::String(_)
        | EvalResult::ExtensionValue(_) => {}
    }
}

/// The entities of a pack.
#[derive(Debug, Clone, Default)]
pub(crate) struct PackEntities {
    /// Non-identity entities by uid.
    pub(crate) by_uid: HashMap<EntityUid, Arc<Stored>>,
    /// Extra parents (teams) of inventory identities, by identity uid.
    pub(crate) memberships: HashMap<EntityUid, Vec<EntityUid>>,
}

/// Parses and validates `entities.json` against `schema`.
pub(crate) fn parse(text: &str, schema: &Schema) -> Result<PackEntities, Vec<Diagnostic>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        vec![Diagnostic::at_line(
            ENTITIES_FILE,
            e.line(),
            e.column(),
            json_message(&e),
        )]
    })?;
    let max_depth = 2 * crate::limits::MAX_NESTING;
    if crate::limits::json_depth(&value) > max_depth {
        return Err(vec![Diagnostic::at(
            ENTITIES_FILE,
            text,
            0,
            format!("entities.json nests deeper than {max_depth} levels"),
        )]);
    }
    let Value::Array(items) = value else {
        return Err(vec![Diagnostic::at(
            ENTITIES_FILE,
            text,
            0,
            "entities.json must be a JSON array of entities",
        )]);
    };
    let offsets = array_element_offsets(text);
    let mut diags = Vec::new();
    let mut out = PackEntities::default();
    let mut seen = HashSet::new();
    for (i, item) in items.into_iter().enumerate() {
        let at = offsets.get(i).copied().unwrap_or(0);
        let diag = |message: String| Diagnostic::at(ENTITIES_FILE, text, at, message);
        match identity_membership(&item, schema) {
            Some(Ok((uid, parents))) => {
                if !seen.insert(uid.clone()) {
                    diags.push(diag(format!("duplicate entity {uid}")));
                }
                out.memberships.entry(uid).or_default().extend(parents);
                continue;
            }
            Some(Err(message)) => {
                diags.push(diag(message));
                continue;
            }
            None => {}
        }
        match Entity::from_json_value(item, Some(schema)) {
            Ok(entity) => {
                let uid = entity.uid();
                if !seen.insert(uid.clone()) {
                    diags.push(diag(format!("duplicate entity {uid}")));
                }
                out.by_uid.insert(uid, Arc::new(Stored::new(entity)));
            }
            Err(e) => diags.push(diag(crate::diagnostic::describe(&e))),
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    // Deep hierarchies are refused before Cedar sees them: its transitive
    // closure recurses once per level.
    if let Err((id, message)) = check_depth(&out) {
        let offset = text.find(&format!("\"{id}\"")).unwrap_or(0);
        return Err(vec![Diagnostic::at(ENTITIES_FILE, text, offset, message)]);
    }
    // Cycles in parents are refused here rather than at every request.
    let all = out.by_uid.values().map(|s| s.entity.clone());
    if let Err(e) = Entities::from_entities(all, None) {
        let message = crate::diagnostic::describe(&e);
        let offset = find_quoted_name(text, &message).unwrap_or(0);
        return Err(vec![Diagnostic::at(ENTITIES_FILE, text, offset, message)]);
    }
    Ok(out)
}

/// Deepest chain of parents allowed among a pack's entities (teams in
/// teams, folders in folders).
pub(crate) const MAX_HIERARCHY_DEPTH: usize = 32;

/// Checks that no chain of parents is longer than [`MAX_HIERARCHY_DEPTH`]
/// and that there is no cycle, iteratively (no recursion on user data).
/// The error names the offending entity's id (to locate it) and says why.
fn check_depth(pack: &PackEntities) -> Result<(), (String, String)> {
    fn parents_of<'a>(pack: &'a PackEntities, uid: &EntityUid) -> Vec<&'a EntityUid> {
        let mut out: Vec<&EntityUid> = Vec::new();
        if let Some(stored) = pack.by_uid.get(uid) {
            out.extend(stored.parents.iter());
        }
        if let Some(teams) = pack.memberships.get(uid) {
            out.extend(teams);
        }
        out
    }
    // depth[uid] = longest chain of parents above uid, counting uid.
    let mut depth: HashMap<&EntityUid, usize> = HashMap::new();
    let starts = pack.by_uid.keys().chain(pack.memberships.keys());
    for start in starts {
        let mut stack: Vec<(&EntityUid, bool)> = vec![(start, false)];
        let mut on_path: HashSet<&EntityUid> = HashSet::new();
        while let Some((uid, expanded)) = stack.pop() {
            if expanded {
                on_path.remove(uid);
                let above = parents_of(pack, uid)
                    .into_iter()
                    .map(|p| depth.get(p).copied().unwrap_or(1))
                    .max()
                    .unwrap_or(0);
                let d = above + 1;
                if d > MAX_HIERARCHY_DEPTH {
                    return Err((
                        uid.id().unescaped().to_owned(),
                        format!(
                            "{uid} is more than {MAX_HIERARCHY_DEPTH} levels deep in its parents"
                        ),
                    ));
                }
                depth.insert(uid, d);
                continue;
            }
            if depth.contains_key(uid) {
                continue;
            }
            if !on_path.insert(uid) {
                return Err((
                    uid.id().unescaped().to_owned(),
                    format!("{uid} is its own ancestor (a cycle in parents)"),
                ));
            }
            stack.push((uid, true));
            for parent in parents_of(pack, uid) {
                if on_path.contains(parent) {
                    return Err((
                        parent.id().unescaped().to_owned(),
                        format!("{parent} is its own ancestor (a cycle in parents)"),
                    ));
                }
                if !depth.contains_key(parent) {
                    stack.push((parent, false));
                }
            }
        }
    }
    Ok(())
}

/// For an entry of an identity type: its uid and parents, or why it is refused.
/// `None` for any other entry.
fn identity_membership(
    item: &Value,
    schema: &Schema,
) -> Option<Result<(EntityUid, Vec<EntityUid>), String>> {
    let uid = item.get("uid")?;
    let uid = uid.get("__entity").unwrap_or(uid);
    let ty = EntityTypeName::from_str(uid.get("type")?.as_str()?).ok()?;
    let kind = type_kind(&ty)?;
    let raw_id = uid.get("id").and_then(Value::as_str).unwrap_or_default();
    let Some(id) = entity_id(&ty, raw_id) else {
        return Some(Err(format!(
            "id \"{}\" does not match type `{ty}`",
            crate::error::shorten(raw_id)
        )));
    };
    let uid = EntityUid::from_type_name_and_id(ty.clone(), id);
    let empty = |key: &str| match item.get(key) {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(_) => false,
    };
    if !empty("attrs") || !empty("tags") {
        return Some(Err(format!(
            "{uid} is a {kind} from the inventory: entities.json may only give its parents"
        )));
    }
    let allowed: Vec<&EntityTypeName> = schema
        .ancestors(&ty)
        .map(Iterator::collect)
        .unwrap_or_default();
    let mut parents = Vec::new();
    let raw_parents = match item.get("parents") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(list)) => list.clone(),
        Some(_) => return Some(Err(format!("parents of {uid} must be an array"))),
    };
    for raw in raw_parents {
        let parent = match EntityUid::from_json(raw) {
            Ok(p) => p,
            Err(e) => return Some(Err(format!("invalid parent of {uid}: {e}"))),
        };
        if !allowed.contains(&parent.type_name()) {
            return Some(Err(format!(
                "{uid} cannot be in {parent}: the schema does not allow `{ty}` in `{}`",
                parent.type_name()
            )));
        }
        parents.push(parent);
    }
    Some(Ok((uid, parents)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Schema {
        let files = crate::PackFiles {
            files: [(
                "schema.cedarschema".to_owned(),
                "entity Doc in [Team] = { owner?: Human, level: Long };".to_owned(),
            )]
            .into(),
        };
        crate::schema::build(&files).unwrap()
    }

    #[test]
    fn entities_are_parsed_with_their_references() {
        let text = r#"[
          {"uid": {"type": "Team", "id": "eng"}, "attrs": {}, "parents": []},
          {"uid": {"type": "Doc", "id": "d1"}, "attrs": {"level": 1, "owner": {"__entity": {"type": "Human", "id": "alice"}}}, "parents": [{"type": "Team", "id": "eng"}]},
          {"uid": {"type": "Human", "id": "human:alice"}, "parents": [{"type": "Team", "id": "eng"}]}
        ]"#;
        let pack = parse(text, &schema()).unwrap();
        assert_eq!(pack.by_uid.len(), 2);
        let d1 = pack
            .by_uid
            .values()
            .find(|s| s.entity.uid().to_string() == r#"Doc::"d1""#)
            .unwrap();
        let refs: Vec<String> = d1.refs.iter().map(ToString::to_string).collect();
        assert!(refs.contains(&r#"Human::"alice""#.to_owned()), "{refs:?}");
        assert!(refs.contains(&r#"Team::"eng""#.to_owned()), "{refs:?}");
        let (alice, teams) = pack.memberships.iter().next().unwrap();
        assert_eq!(
            alice.to_string(),
            r#"Human::"alice""#,
            "the human: prefix is accepted"
        );
        assert_eq!(teams.len(), 1);
    }

    #[test]
    fn errors_point_at_the_offending_entity() {
        let text = "[\n  {\"uid\": {\"type\": \"Team\", \"id\": \"a\"}, \"attrs\": {}, \"parents\": []},\n  {\"uid\": {\"type\": \"Doc\", \"id\": \"d\"}, \"attrs\": {\"level\": \"high\"}, \"parents\": []}\n]";
        let d = parse(text, &schema()).unwrap_err();
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].column), (3, 3));
        assert!(d[0].message.contains("level"), "{}", d[0].message);
    }

    #[test]
    fn identity_entries_may_only_add_allowed_parents() {
        let s = schema();
        let d = parse(
            r#"[{"uid": {"type": "Human", "id": "a"}, "attrs": {"x": 1}, "parents": []}]"#,
            &s,
        )
        .unwrap_err();
        assert!(
            d[0].message.contains("may only give its parents"),
            "{}",
            d[0].message
        );
        let d = parse(
            r#"[{"uid": {"type": "Human", "id": "a"}, "parents": [{"type": "Doc", "id": "d"}]}]"#,
            &s,
        )
        .unwrap_err();
        assert!(d[0].message.contains("cannot be in"), "{}", d[0].message);
        let d = parse(
            r#"[{"uid": {"type": "Human", "id": "agent:a"}, "parents": []}]"#,
            &s,
        )
        .unwrap_err();
        assert!(d[0].message.contains("does not match"), "{}", d[0].message);
    }

    #[test]
    fn malformed_json_duplicates_and_cycles_are_reported() {
        let s = schema();
        let d = parse("[\n  {,\n]", &s).unwrap_err();
        assert_eq!((d[0].line, d[0].column), (2, 4));
        let d = parse("{}", &s).unwrap_err();
        assert!(d[0].message.contains("array"));
        let team = r#"{"uid": {"type": "Team", "id": "a"}, "attrs": {}, "parents": []}"#;
        let d = parse(&format!("[{team},\n{team}]"), &s).unwrap_err();
        assert_eq!(d[0].line, 2);
        assert!(d[0].message.contains("duplicate"), "{}", d[0].message);
        let cycle = r#"[{"uid": {"type": "Team", "id": "a"}, "attrs": {}, "parents": [{"type": "Team", "id": "b"}]},
                        {"uid": {"type": "Team", "id": "b"}, "attrs": {}, "parents": [{"type": "Team", "id": "a"}]}]"#;
        let d = parse(cycle, &s).unwrap_err();
        assert!(d[0].message.contains("cycle"), "{}", d[0].message);
    }
}
