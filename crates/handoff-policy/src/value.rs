//! JSON values (request properties, context, inventory attributes) to Cedar
//! restricted expressions, built directly from typed values — no JSON text
//! is parsed on the hot path — and bounded in depth and size.
//!
//! Mapping: string → `String`, boolean → `Bool`, integer → `Long`, other
//! numbers → `decimal` when exactly representable (4 fraction digits),
//! otherwise dropped with a note; array → `Set`; object → `Record`; `null`
//! → the key is left out. Cedar's JSON escapes are honoured:
//! `{"__entity": {"type": T, "id": I}}` is an entity reference and
//! `{"__extn": {"fn": F, "arg": A}}` an extension value (`ip`, `decimal`,
//! `datetime`, `duration`).

use crate::error::{PolicyError, shorten};
use cedar_policy::{EntityId, EntityTypeName, EntityUid, RestrictedExpression};
use serde_json::{Map, Value};
use std::str::FromStr;

/// Deepest nesting of arrays and objects accepted in request properties and context.
pub const MAX_PROPERTY_DEPTH: usize = 8;
/// Most JSON values (every scalar, array and object counts one) in a
/// subject's properties and context together, and again in the action's and
/// resource's properties.
pub const MAX_REQUEST_VALUES: usize = 4096;
/// Most bytes of text (strings and keys), counted like [`MAX_REQUEST_VALUES`].
pub const MAX_REQUEST_BYTES: usize = 256 * 1024;
/// Most entities one evaluation may gather from the directory and the pack.
pub const MAX_GATHERED_ENTITIES: usize = 4096;

/// What one conversion may still spend, and what it noticed on the way.
#[derive(Debug)]
pub(crate) struct Budget {
    values: usize,
    bytes: usize,
    /// Values that were dropped, as messages for `Decision::errors`.
    pub(crate) notes: Vec<String>,
    /// Entity references met in the converted values.
    pub(crate) refs: Vec<EntityUid>,
}

impl Budget {
    /// The budget of one request.
    pub(crate) fn request() -> Self {
        Self {
            values: MAX_REQUEST_VALUES,
            bytes: MAX_REQUEST_BYTES,
            notes: Vec::new(),
            refs: Vec::new(),
        }
    }

    /// For inventory attributes, which handoff-core already bounds.
    pub(crate) fn inventory() -> Self {
        Self {
            values: usize::MAX,
            bytes: usize::MAX,
            notes: Vec::new(),
            refs: Vec::new(),
        }
    }

    fn spend(&mut self, bytes: usize) -> Result<(), PolicyError> {
        self.values = self.values.checked_sub(1).ok_or(PolicyError::TooLarge)?;
        self.bytes = self.bytes.checked_sub(bytes).ok_or(PolicyError::TooLarge)?;
        Ok(())
    }
}

/// Converts every entry of `map` (dropping `null`s and unrepresentable numbers).
pub(crate) fn convert_map(
    map: &Map<String, Value>,
    part: &'static str,
    budget: &mut Budget,
) -> Result<Vec<(String, RestrictedExpression)>, PolicyError> {
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        budget.spend(key.len())?;
        if let Some(expr) = convert(value, part, 1, budget)? {
            out.push((key.clone(), expr));
        }
    }
    Ok(out)
}

/// Converts one value at nesting `depth` (the entries of a top-level map are depth 1).
pub(crate) fn convert(
    value: &Value,
    part: &'static str,
    depth: usize,
    budget: &mut Budget,
) -> Result<Option<RestrictedExpression>, PolicyError> {
    if depth > MAX_PROPERTY_DEPTH {
        return Err(PolicyError::TooDeep(part));
    }
    let expr = match value {
        Value::Null => {
            budget.spend(0)?;
            return Ok(None);
        }
        Value::Bool(b) => {
            budget.spend(0)?;
            RestrictedExpression::new_bool(*b)
        }
        Value::String(s) => {
            budget.spend(s.len())?;
            RestrictedExpression::new_string(s.clone())
        }
        Value::Number(n) => {
            budget.spend(0)?;
            match number(n) {
                Some(expr) => expr,
                None => {
                    budget.notes.push(format!(
                        "{part}: the number {} cannot be represented in cedar and was left out",
                        shorten(&n.to_string())
                    ));
                    return Ok(None);
                }
            }
        }
        Value::Array(items) => {
            budget.spend(0)?;
            let mut set = Vec::with_capacity(items.len());
            for item in items {
                if let Some(expr) = convert(item, part, depth + 1, budget)? {
                    set.push(expr);
                }
            }
            RestrictedExpression::new_set(set)
        }
        Value::Object(map) => {
            budget.spend(0)?;
            if let Some(expr) = escape(map, part, budget)? {
                return Ok(Some(expr));
            }
            let mut fields = Vec::with_capacity(map.len());
            for (key, item) in map {
                budget.spend(key.len())?;
                if let Some(expr) = convert(item, part, depth + 1, budget)? {
                    fields.push((key.clone(), expr));
                }
            }
            RestrictedExpression::new_record(fields).map_err(|e| PolicyError::InvalidValue {
                part,
                message: e.to_string(),
            })?
        }
    };
    Ok(Some(expr))
}

/// Integers become `Long`; other numbers `decimal` when exact to 4 digits.
fn number(n: &serde_json::Number) -> Option<RestrictedExpression> {
    if let Some(i) = n.as_i64() {
        return Some(RestrictedExpression::new_long(i));
    }
    let f = n.as_f64()?;
    // Cedar decimals are i64 with 4 fraction digits.
    let scaled = f * 10_000.0;
    let exact = f.is_finite() && scaled.fract() == 0.0 && scaled.abs() < 9.2e18;
    exact.then(|| RestrictedExpression::new_decimal(format!("{f:.4}")))
}

/// Cedar's JSON escapes for entity references and extension values.
fn escape(
    map: &Map<String, Value>,
    part: &'static str,
    budget: &mut Budget,
) -> Result<Option<RestrictedExpression>, PolicyError> {
    if map.len() != 1 {
        return Ok(None);
    }
    let invalid = |message: String| PolicyError::InvalidValue { part, message };
    if let Some(inner) = map.get("__entity") {
        let (Some(ty), Some(id)) = (
            inner.get("type").and_then(Value::as_str),
            inner.get("id").and_then(Value::as_str),
        ) else {
            return Err(invalid(
                "\"__entity\" needs string \"type\" and \"id\"".into(),
            ));
        };
        budget.spend(ty.len() + id.len())?;
        let ty = EntityTypeName::from_str(ty)
            .map_err(|_| invalid(format!("invalid entity type \"{}\"", shorten(ty))))?;
        let uid = EntityUid::from_type_name_and_id(ty, EntityId::new(id));
        budget.refs.push(uid.clone());
        return Ok(Some(RestrictedExpression::new_entity_uid(uid)));
    }
    if let Some(inner) = map.get("__extn") {
        let (Some(func), Some(arg)) = (
            inner.get("fn").and_then(Value::as_str),
            inner.get("arg").and_then(Value::as_str),
        ) else {
            return Err(invalid("\"__extn\" needs string \"fn\" and \"arg\"".into()));
        };
        budget.spend(func.len() + arg.len())?;
        let expr = match func {
            "ip" | "ipaddr" => RestrictedExpression::new_ip(arg),
            "decimal" => RestrictedExpression::new_decimal(arg),
            "datetime" => RestrictedExpression::new_datetime(arg),
            "duration" => RestrictedExpression::new_duration(arg),
            other => {
                return Err(invalid(format!(
                    "unknown extension function \"{}\"",
                    shorten(other)
                )));
            }
        };
        return Ok(Some(expr));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cedar_policy::{Context, EvalResult};
    use serde_json::json;

    fn context(v: Value) -> Result<Context, PolicyError> {
        let Value::Object(map) = v else {
            panic!("object")
        };
        let mut budget = Budget::request();
        let pairs = convert_map(&map, "context", &mut budget)?;
        Context::from_pairs(pairs).map_err(|e| PolicyError::Evaluation(e.to_string()))
    }

    #[test]
    fn json_scalars_map_to_cedar_types() {
        let ctx = context(json!({"s": "x", "b": true, "n": 42, "d": 1.5, "z": null})).unwrap();
        assert_eq!(ctx.get("s"), Some(EvalResult::String("x".into())));
        assert_eq!(ctx.get("b"), Some(EvalResult::Bool(true)));
        assert_eq!(ctx.get("n"), Some(EvalResult::Long(42)));
        assert!(matches!(ctx.get("d"), Some(EvalResult::ExtensionValue(v)) if v.contains("1.5")));
        assert_eq!(ctx.get("z"), None, "null leaves the key out");
    }

    #[test]
    fn unrepresentable_numbers_are_dropped_with_a_note() {
        let mut budget = Budget::request();
        let map = json!({"tiny": 0.000_01, "ok": 2});
        let pairs = convert_map(map.as_object().unwrap(), "context", &mut budget).unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(budget.notes.len(), 1);
        assert!(
            budget.notes[0].contains("cannot be represented"),
            "{:?}",
            budget.notes
        );
    }

    #[test]
    fn escapes_make_entity_refs_and_extension_values() {
        let mut budget = Budget::request();
        let map = json!({
            "owner": {"__entity": {"type": "Human", "id": "alice"}},
            "from": {"__extn": {"fn": "ip", "arg": "10.0.0.1"}}
        });
        let pairs = convert_map(map.as_object().unwrap(), "context", &mut budget).unwrap();
        assert_eq!(pairs.len(), 2);
        assert_eq!(budget.refs.len(), 1);
        assert_eq!(budget.refs[0].to_string(), r#"Human::"alice""#);
        let ctx = Context::from_pairs(pairs).unwrap();
        assert!(matches!(ctx.get("owner"), Some(EvalResult::EntityUid(_))));
    }

    #[test]
    fn bad_escapes_are_errors() {
        for bad in [
            json!({"x": {"__entity": {"type": "Human"}}}),
            json!({"x": {"__entity": {"type": "not a type", "id": "a"}}}),
            json!({"x": {"__extn": {"fn": "nope", "arg": "1"}}}),
        ] {
            let err = context(bad).unwrap_err();
            assert!(matches!(err, PolicyError::InvalidValue { .. }), "{err}");
        }
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let mut deep = json!(1);
        for _ in 0..MAX_PROPERTY_DEPTH {
            deep = json!([deep]);
        }
        assert_eq!(
            context(json!({ "a": deep })).unwrap_err(),
            PolicyError::TooDeep("context")
        );
        let mut shallow = json!(1);
        for _ in 0..MAX_PROPERTY_DEPTH - 1 {
            shallow = json!([shallow]);
        }
        assert!(context(json!({ "a": shallow })).is_ok());
        let many: Vec<u32> = (0..MAX_REQUEST_VALUES as u32).collect();
        assert_eq!(
            context(json!({ "a": many })).unwrap_err(),
            PolicyError::TooLarge
        );
        let big = "x".repeat(MAX_REQUEST_BYTES + 1);
        assert_eq!(
            context(json!({ "a": big })).unwrap_err(),
            PolicyError::TooLarge
        );
    }
}
