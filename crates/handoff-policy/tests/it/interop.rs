//! The official AuthZEN interop decision files (Todo 1.0 -01 and -02 with
//! its batches, API gateway), every case through `Pdp::evaluate`.

use crate::support::{example, pdp};
use handoff_policy::{Pdp, Request};
use serde_json::{Map, Value};

const CONFORMANCE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/authzen/"
);

fn load(file: &str) -> Value {
    let path = format!("{CONFORMANCE}{file}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the AuthZEN conformance file {path} is missing: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn todo_pdp() -> Pdp {
    pdp(&example("authzen-todo"), Vec::new())
}

/// Runs every single evaluation of a decision file; returns how many ran.
fn check_evaluations(pdp: &Pdp, file: &str) -> usize {
    let data = load(file);
    let cases = data["evaluation"].as_array().unwrap();
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let request: Request = serde_json::from_value(case["request"].clone()).unwrap();
        let expected = case["expected"].as_bool().unwrap();
        let got = pdp.evaluate(&request).unwrap();
        if got.allow != expected {
            failures.push(format!(
                "#{i}: {request:?} expected {expected}, got {got:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{file}:\n{}", failures.join("\n"));
    cases.len()
}

/// AuthZEN 1.0 §7.1: the top-level subject, action, resource and context
/// are defaults for each item; an item's own fields replace them.
fn merge(defaults: &Map<String, Value>, item: &Value) -> Request {
    let mut merged = Map::new();
    for key in ["subject", "action", "resource", "context"] {
        if let Some(v) = item.get(key).or_else(|| defaults.get(key)) {
            merged.insert(key.to_owned(), v.clone());
        }
    }
    serde_json::from_value(Value::Object(merged)).unwrap()
}

/// Evaluates a batch with AuthZEN 1.0 semantics (`execute_all` by default).
fn evaluate_batch(pdp: &Pdp, batch: &Value) -> Vec<bool> {
    let defaults = batch.as_object().unwrap();
    let semantic = batch
        .pointer("/options/evaluations_semantic")
        .and_then(Value::as_str)
        .unwrap_or("execute_all");
    let mut out = Vec::new();
    for item in batch["evaluations"].as_array().unwrap() {
        let decision = pdp
            .evaluate(&merge(defaults, item))
            .map(|d| d.allow)
            .unwrap_or(false);
        out.push(decision);
        match (semantic, decision) {
            ("deny_on_first_deny", false) | ("permit_on_first_permit", true) => break,
            _ => {}
        }
    }
    out
}

#[test]
fn todo_1_0_01_decisions() {
    assert_eq!(
        check_evaluations(
            &todo_pdp(),
            "authzen-todo-backend-decisions-authorization-api-1_0-01.json"
        ),
        40
    );
}

#[test]
fn todo_1_0_02_decisions_and_batches() {
    let pdp = todo_pdp();
    let file = "authzen-todo-backend-decisions-authorization-api-1_0-02.json";
    assert_eq!(check_evaluations(&pdp, file), 40);
    let data = load(file);
    let batches = data["evaluations"].as_array().unwrap();
    assert_eq!(batches.len(), 3);
    for batch in batches {
        let expected: Vec<bool> = batch["expected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["decision"].as_bool().unwrap())
            .collect();
        assert_eq!(evaluate_batch(&pdp, &batch["request"]), expected, "{batch}");
    }
}

#[test]
fn api_gateway_decisions() {
    assert_eq!(
        check_evaluations(&todo_pdp(), "authzen-api-gateways-decisions.json"),
        25
    );
}
