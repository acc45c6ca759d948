//! The offline test runner behind `handoff policy test DIR`.
//!
//! `tests.json` is either a list of cases or an object with inventory
//! fixtures and cases:
//!
//! ```json
//! [{"name": "alice reads", "request": {"subject": {...}, "action": {...}, "resource": {...}}, "expected": true}]
//! {"identities": [{"id": "agent:bot", "owner": "human:alice", "environment": "prod"}], "tests": [...]}
//! ```
//!
//! Identity fixtures (`id`, `owner`, `environment`, `status`, `orphaned`,
//! `attributes`) are added to the directory for the run, so a pack about
//! Handoff's own identities can be tested without a server. A request that
//! cannot be evaluated counts as a deny with its error, as the AuthZEN API
//! answers it.

use crate::directory::Directory;
use crate::error::PackError;
use crate::pdp::Pdp;
use crate::policies::Policies;
use crate::request::{Decision, Request};
use handoff_core::{Attributes, Environment, Identity, IdentityId, Source, Status};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The outcome of a test run.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct TestReport {
    /// Cases whose decision was the expected one.
    pub passed: usize,
    /// Cases whose decision was not.
    pub failures: Vec<TestFailure>,
}

impl TestReport {
    /// Whether every case passed.
    pub fn is_success(&self) -> bool {
        self.failures.is_empty()
    }
}

/// One case that did not get its expected decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestFailure {
    /// The case's `name`, or `#<n>` (1-based) when it has none.
    pub name: String,
    /// The expected decision.
    pub expected: bool,
    /// The decision the pack gave.
    pub got: Decision,
}

#[derive(Deserialize)]
struct TestsFile {
    #[serde(default)]
    identities: Vec<IdentityFixture>,
    tests: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    #[serde(default)]
    name: Option<String>,
    request: Request,
    expected: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityFixture {
    id: IdentityId,
    #[serde(default)]
    owner: Option<IdentityId>,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default)]
    status: Option<Status>,
    #[serde(default)]
    orphaned: bool,
    #[serde(default)]
    attributes: Option<Attributes>,
}

impl From<IdentityFixture> for Identity {
    fn from(f: IdentityFixture) -> Self {
        Identity {
            id: f.id,
            owner: f.owner,
            environment: f.environment,
            attributes: f.attributes.unwrap_or_default(),
            source: Source::Manual,
            status: f.status.unwrap_or(Status::Active),
            orphaned: f.orphaned,
            created_at: handoff_core::Time::default(),
            updated_at: handoff_core::Time::default(),
        }
    }
}

/// Runs the cases of `tests_json` against `policies` and `directory`
/// (plus the file's identity fixtures).
pub fn run_tests(
    policies: &Policies,
    directory: &Directory,
    tests_json: &str,
) -> Result<TestReport, PackError> {
    let TestsFile { identities, tests } = parse(tests_json)?;
    let mut directory = directory.clone();
    for fixture in identities {
        directory.upsert(&fixture.into());
    }
    let pdp = Pdp::new(Arc::new(policies.clone()), 0, directory);
    let mut report = TestReport::default();
    for (n, case) in tests.into_iter().enumerate() {
        let got = pdp
            .evaluate(&case.request)
            .unwrap_or_else(|e| Decision::deny(vec![e.to_string()]));
        if got.allow == case.expected {
            report.passed += 1;
        } else {
            report.failures.push(TestFailure {
                name: case.name.unwrap_or_else(|| format!("#{}", n + 1)),
                expected: case.expected,
                got,
            });
        }
    }
    Ok(report)
}

/// Parses either shape; serde_json reports line and column for syntax
/// and shape errors alike.
fn parse(text: &str) -> Result<TestsFile, PackError> {
    let located = |e: serde_json::Error| PackError::Tests {
        line: u32::try_from(e.line()).unwrap_or(u32::MAX),
        column: u32::try_from(e.column()).unwrap_or(u32::MAX),
        message: crate::schema::json_message(&e),
    };
    if text.trim_start().starts_with('[') {
        let tests = serde_json::from_str::<Vec<Case>>(text).map_err(located)?;
        Ok(TestsFile {
            identities: Vec::new(),
            tests,
        })
    } else {
        serde_json::from_str(text).map_err(located)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PackFiles, compile};

    fn policies() -> Policies {
        let files = PackFiles {
            files: [
                (
                    "schema.cedarschema".to_owned(),
                    "entity Doc;\naction read appliesTo { principal: [Human, Agent], resource: [Doc] };".to_owned(),
                ),
                (
                    "p.cedar".to_owned(),
                    "@id(\"prod-agents\") permit(principal is Agent, action, resource) when { principal has environment && principal.environment == \"prod\" };".to_owned(),
                ),
            ]
            .into(),
        };
        compile(&files).unwrap()
    }

    const CASE: &str = r#"{"subject": {"type": "agent", "id": "agent:bot"}, "action": {"name": "read"}, "resource": {"type": "Doc", "id": "d"}}"#;

    #[test]
    fn identity_fixtures_feed_the_directory() {
        let tests = format!(
            r#"{{"identities": [{{"id": "human:alice"}}, {{"id": "agent:bot", "owner": "human:alice", "environment": "prod"}}],
                "tests": [{{"name": "bot reads", "request": {CASE}, "expected": true}}]}}"#
        );
        let report = run_tests(&policies(), &Directory::default(), &tests).unwrap();
        assert_eq!(report.passed, 1);
        assert!(report.is_success());
    }

    #[test]
    fn failures_are_named_and_carry_the_decision() {
        let tests = format!(
            r#"[{{"request": {CASE}, "expected": true}}, {{"name": "n", "request": {CASE}, "expected": false}}]"#
        );
        let report = run_tests(&policies(), &Directory::default(), &tests).unwrap();
        assert_eq!(report.passed, 1);
        assert_eq!(report.failures.len(), 1);
        let failure = &report.failures[0];
        assert_eq!(
            (failure.name.as_str(), failure.expected, failure.got.allow),
            ("#1", true, false)
        );
    }

    #[test]
    fn requests_that_cannot_be_evaluated_count_as_denies() {
        let tests = r#"[{"request": {"subject": {"type": "no such", "id": "x"}, "action": {"name": "read"}, "resource": {"type": "Doc", "id": "d"}}, "expected": true}]"#;
        let report = run_tests(&policies(), &Directory::default(), tests).unwrap();
        assert_eq!(
            report.failures[0].got.errors,
            ["invalid entity type \"no such\""]
        );
    }

    #[test]
    fn malformed_files_are_located() {
        let err = run_tests(
            &policies(),
            &Directory::default(),
            "[\n  {\"request\": {}, \"expected\": true}\n]",
        )
        .unwrap_err();
        let PackError::Tests { line, message, .. } = err else {
            panic!("{err}")
        };
        assert_eq!(line, 2);
        assert!(message.contains("missing field `subject`"), "{message}");
        let err = run_tests(
            &policies(),
            &Directory::default(),
            "{\"identities\": [{\"id\": \"robot:x\"}], \"tests\": []}",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("tests.json:1:"), "{err}");
        assert!(err.to_string().contains("robot:x"), "{err}");
    }
}
