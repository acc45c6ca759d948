//! `handoff policy …`: offline validation and tests of a pack, pushing it
//! to a server, listing, showing and rolling back versions, and
//! `handoff serve --policy-pack`.

use crate::support::{Run, Server, handoff_command, run};
use std::path::{Path, PathBuf};

/// An example pack shipped in the repository's `examples/`.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// `handoff ARGS` with no server, in `cwd`.
fn offline(cwd: &Path, args: &[&str]) -> Run {
    let mut cmd = handoff_command(cwd);
    cmd.args(args);
    run(cmd)
}

/// A pack with a problem in each of two files.
fn broken_pack(dir: &Path) -> PathBuf {
    let pack = dir.join("broken");
    std::fs::create_dir_all(&pack).unwrap();
    std::fs::write(
        pack.join("a.cedar"),
        "permit(principal, action, resource)\n",
    )
    .unwrap();
    std::fs::write(pack.join("b.cedar"), "forbid(principal, action;\n").unwrap();
    pack
}

/// A copy of the certification example pack in `dir`.
fn copy_pack(from: &Path, dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
    }
    dir.to_owned()
}

/// Asserts that `text` has a `file:line:column: message` line for each of
/// `files`, and that every such line is well formed.
#[track_caller]
fn assert_diagnostics(text: &str, files: &[&str]) {
    let re = regex_lite(text);
    for file in files {
        assert!(
            re.iter().any(|l| l.starts_with(&format!("{file}:"))),
            "no diagnostic for {file} in\n{text}"
        );
    }
}

/// The lines of `text` shaped `name.ext:LINE:COL: message`.
fn regex_lite(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| {
            let mut parts = l.splitn(4, ':');
            let (Some(file), Some(line), Some(col), Some(msg)) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return false;
            };
            file.contains('.')
                && line.parse::<u32>().is_ok()
                && col.parse::<u32>().is_ok()
                && msg.starts_with(' ')
                && msg.len() > 1
        })
        .collect()
}

#[test]
fn validate_accepts_the_examples() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["authzen-certification", "authzen-todo", "agents"] {
        let dir = example(name);
        let out = offline(tmp.path(), &["policy", "validate", dir.to_str().unwrap()]);
        out.ok();
        assert!(out.stdout.starts_with("ok: "), "{}", out.stdout);
    }
}

#[test]
fn validate_prints_every_diagnostic_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_pack(tmp.path());
    let out = offline(tmp.path(), &["policy", "validate", pack.to_str().unwrap()]);
    out.expect_code(1);
    assert_diagnostics(&out.stderr, &["a.cedar", "b.cedar"]);
    assert!(
        out.stderr.contains("error: the policy pack"),
        "{}",
        out.stderr
    );

    let out = offline(
        tmp.path(),
        &[
            "policy",
            "validate",
            pack.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    out.expect_code(1);
    let json = out.json();
    assert_eq!(json["valid"], false);
    assert!(json["errors"].as_array().unwrap().len() >= 2, "{json}");
}

#[test]
fn validate_of_a_missing_directory_fails() {
    let tmp = tempfile::tempdir().unwrap();
    let out = offline(tmp.path(), &["policy", "validate", "nowhere"]);
    out.expect_code(1);
    assert!(
        out.stderr
            .starts_with("error: cannot read the policy pack \"nowhere\""),
        "{}",
        out.stderr
    );
}

#[test]
fn test_runs_the_examples_tests() {
    let tmp = tempfile::tempdir().unwrap();
    for name in ["authzen-certification", "authzen-todo", "agents"] {
        let dir = example(name);
        let out = offline(tmp.path(), &["policy", "test", dir.to_str().unwrap()]);
        out.ok();
        assert!(out.stdout.starts_with("ok: all "), "{name}: {}", out.stdout);
    }
}

#[test]
fn test_reports_each_failing_case_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = copy_pack(&example("authzen-certification"), &tmp.path().join("pack"));
    let tests = std::fs::read_to_string(pack.join("tests.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&tests).unwrap();
    let cases = match &mut value {
        serde_json::Value::Array(cases) => cases,
        other => other["tests"].as_array_mut().unwrap(),
    };
    let total = cases.len();
    // Flip the expectation of the first case.
    let first = &mut cases[0];
    let expected = first["expected"].as_bool().unwrap();
    first["expected"] = serde_json::Value::Bool(!expected);
    first["name"] = serde_json::Value::String("flipped".into());
    std::fs::write(pack.join("tests.json"), value.to_string()).unwrap();

    let out = offline(tmp.path(), &["policy", "test", pack.to_str().unwrap()]);
    out.expect_code(1);
    assert!(
        out.stdout.contains(&format!(
            "FAIL flipped: expected {}, got {}",
            if expected { "deny" } else { "allow" },
            if expected { "allow" } else { "deny" }
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "failed: 1 of {total} tests did not get the expected decision"
        )),
        "{}",
        out.stdout
    );

    let out = offline(
        tmp.path(),
        &["policy", "test", pack.to_str().unwrap(), "--output", "json"],
    );
    out.expect_code(1);
    assert_eq!(out.json()["failures"].as_array().unwrap().len(), 1);
}

#[test]
fn test_of_a_broken_pack_prints_its_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_pack(tmp.path());
    let out = offline(tmp.path(), &["policy", "test", pack.to_str().unwrap()]);
    out.expect_code(1);
    assert_diagnostics(&out.stderr, &["a.cedar", "b.cedar"]);
    assert!(out.stderr.contains("no test was run"), "{}", out.stderr);
}

/// A server with its data in `tmp/data`, and any extra `args`.
fn server(tmp: &Path, args: &[&str]) -> Server {
    let data = tmp.join("data");
    let mut all = vec!["--data-dir", data.to_str().unwrap()];
    all.extend_from_slice(args);
    Server::start(tmp, &data, &all)
}

#[test]
fn push_list_show_and_rollback() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path(), &[]);
    let pack = copy_pack(&example("authzen-certification"), &tmp.path().join("pack"));
    let dir = pack.to_str().unwrap();

    let out = server.cli(&["policy", "push", dir]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        "pushed policy version 1; it is now active"
    );
    let out = server.cli(&["policy", "push", dir]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        "policy version 1 is already active; nothing changed"
    );

    let policies = pack.join("policies.cedar");
    let text = std::fs::read_to_string(&policies).unwrap();
    std::fs::write(&policies, format!("{text}\n// version two\n")).unwrap();
    let out = server.cli(&["policy", "push", dir]);
    out.ok();
    assert_eq!(
        out.stdout.trim(),
        "pushed policy version 2; it is now active"
    );

    let list = server.cli(&["policy", "list", "--output", "json"]);
    let list = list.ok().json();
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["active"], 2);
    let table = server.cli(&["policy", "list"]);
    table.ok();
    assert!(table.stdout.contains("VERSION"), "{}", table.stdout);

    let shown = server.cli(&["policy", "show", "2", "--files"]);
    shown.ok();
    assert!(
        shown.stdout.contains("==> policies.cedar <=="),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("// version two"), "{}", shown.stdout);

    let out = server.cli(&["policy", "rollback", "1"]);
    out.ok();
    assert_eq!(out.stdout.trim(), "policy version 1 is active");
    let list = server.cli(&["policy", "list", "--output", "json"]);
    assert_eq!(list.ok().json()["active"], 1);

    let out = server.cli(&["policy", "show", "9"]);
    out.expect_code(1);
    assert!(out.stderr.contains("(404)"), "{}", out.stderr);
}

#[test]
fn a_refused_push_prints_every_diagnostic_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path(), &[]);
    let pack = broken_pack(tmp.path());
    let out = server.cli(&["policy", "push", pack.to_str().unwrap()]);
    out.expect_code(1);
    assert_diagnostics(&out.stderr, &["a.cedar", "b.cedar"]);
    assert!(out.stderr.contains("(422)"), "{}", out.stderr);
    let list = server.cli(&["policy", "list", "--output", "json"]);
    let list = list.ok().json();
    assert!(list["items"].as_array().unwrap().is_empty(), "{list}");
    assert!(list["active"].is_null(), "{list}");
}

#[test]
fn serve_pushes_its_policy_pack_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = example("authzen-certification");
    let args = ["--policy-pack", pack.to_str().unwrap()];
    let first = server(tmp.path(), &args);
    let list = first
        .cli(&["policy", "list", "--output", "json"])
        .ok()
        .json();
    assert_eq!(list["active"], 1);
    let (status, _) = first.terminate();
    assert!(status.success());

    let second = server(tmp.path(), &args);
    let list = second
        .cli(&["policy", "list", "--output", "json"])
        .ok()
        .json();
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["active"], 1);
    assert!(second.log().contains("already active"), "{}", second.log());
}

#[test]
fn serve_with_a_bad_policy_pack_stops_with_its_diagnostics() {
    let tmp = tempfile::tempdir().unwrap();
    let pack = broken_pack(tmp.path());
    let data = tmp.path().join("data");
    let mut cmd = handoff_command(tmp.path());
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("HANDOFF_POLICY_PACK", &pack);
    let out = run(cmd);
    out.expect_code(1);
    assert!(out.stderr.contains("is invalid:"), "{}", out.stderr);
    assert_diagnostics(&out.stderr, &["a.cedar", "b.cedar"]);
    assert!(!data.exists(), "nothing is created");
}

#[test]
fn a_pdp_token_is_refused_by_the_admin_api() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path(), &[]);
    let created = server.cli(&[
        "token", "create", "gateway", "--role", "pdp", "--output", "json",
    ]);
    let created = created.ok().json();
    assert_eq!(created["token"]["role"], "pdp", "{created}");
    let secret = created["secret"].as_str().unwrap();
    let out = server.cli_with_token(secret, &["identity", "list"]);
    out.expect_code(1);
    assert!(out.stderr.contains("(403)"), "{}", out.stderr);
}
