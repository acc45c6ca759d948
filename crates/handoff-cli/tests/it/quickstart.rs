//! The README's quickstart against a real server, plus the error paths an
//! operator meets first.

use crate::support::Server;
use serde_json::Value;

const ALICE: &str = "human:alice@example.com";
const BOT: &str = "agent:support-bot";

#[test]
fn quickstart_against_a_real_server() {
    let tmp = tempfile::tempdir().unwrap();
    // No --data-dir: the server uses ./handoff-data, and the CLI finds the
    // bootstrap admin token there without --token.
    let server = Server::start(tmp.path(), &tmp.path().join("handoff-data"), &[]);
    let token = server.admin_token();
    assert!(
        !server.log().contains(&token),
        "the bootstrap token was logged"
    );

    let out = server.cli_default_token(&["identity", "create", ALICE]);
    assert!(out.ok().stdout.contains(ALICE), "{}", out.stdout);
    server
        .cli_default_token(&[
            "identity",
            "create",
            BOT,
            "--owner",
            ALICE,
            "--env",
            "prod",
            "--attr",
            "team=support",
        ])
        .ok();

    // Listing, as JSON and as a table.
    let list = server
        .cli(&["identity", "list", "--output", "json"])
        .ok()
        .json();
    let items = list["items"].as_array().unwrap();
    let bot = items
        .iter()
        .find(|i| i["id"] == BOT)
        .expect("the agent is listed");
    assert_eq!(bot["owner"], ALICE);
    assert_eq!(bot["environment"], "prod");
    assert_eq!(bot["status"], "active");
    assert_eq!(bot["attributes"]["team"], "support");
    assert!(items.iter().any(|i| i["id"] == ALICE));
    let table = server
        .cli(&["identity", "list", "--kind", "agent"])
        .ok()
        .stdout
        .clone();
    assert!(table.contains(BOT) && table.contains("prod"), "{table}");
    let all = server
        .cli(&[
            "identity", "list", "--all", "--limit", "1", "--output", "json",
        ])
        .ok()
        .json();
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        items.len(),
        "--all follows the cursor"
    );
    let first = server.cli(&["identity", "list", "--limit", "1"]);
    assert!(first.ok().stderr.contains("--cursor"), "{}", first.stderr);

    // Show and update.
    let shown = server
        .cli(&["identity", "show", BOT, "--output", "json"])
        .ok()
        .json();
    assert_eq!(shown["kind"], "agent");
    let updated = server
        .cli(&[
            "identity", "update", BOT, "--env", "staging", "--output", "json",
        ])
        .ok()
        .json();
    assert_eq!(updated["environment"], "staging");
    let cleared = server
        .cli(&["identity", "update", BOT, "--clear-env", "--output", "json"])
        .ok()
        .json();
    assert_eq!(cleared["environment"], Value::Null);

    // A credential: the secret alone on stdout, the warning on stderr.
    let issued = server.cli(&[
        "credential",
        "issue",
        BOT,
        "--description",
        "quickstart",
        "--expires-in",
        "1d",
    ]);
    issued.ok();
    let secret = issued.stdout.trim().to_owned();
    assert!(secret.starts_with("hfc_"), "{secret}");
    assert!(
        issued.stderr.contains("cannot be shown again"),
        "{}",
        issued.stderr
    );
    let creds = server
        .cli(&["credential", "list", BOT, "--output", "json"])
        .ok()
        .json();
    let cred_id = creds["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(!creds.to_string().contains(&secret), "the secret is listed");
    let shown = server
        .cli(&["credential", "show", &cred_id])
        .ok()
        .stdout
        .clone();
    assert!(shown.contains("active") && shown.contains(BOT), "{shown}");

    // The credential authenticates while its identity is active.
    let me = server
        .cli_with_token(&secret, &["whoami", "--output", "json"])
        .ok()
        .json();
    assert_eq!(me["kind"], "credential");
    assert_eq!(me["identity"], BOT);
    server
        .cli(&["identity", "suspend", BOT, "--reason", "quickstart"])
        .ok();
    let refused = server.cli_with_token(&secret, &["whoami"]);
    refused.expect_code(1);
    assert!(
        refused.stderr.starts_with("error: ") && refused.stderr.contains("(401)"),
        "{}",
        refused.stderr
    );
    server.cli(&["identity", "resume", BOT]).ok();
    server.cli_with_token(&secret, &["whoami"]).ok();
    let revoked = server
        .cli(&["credential", "revoke", &cred_id, "--output", "json"])
        .ok()
        .json();
    assert_eq!(revoked["state"], "revoked");
    server.cli_with_token(&secret, &["whoami"]).expect_code(1);

    // Admin tokens: an auditor reads but does not write.
    let created = server.cli(&[
        "token",
        "create",
        "reader",
        "--role",
        "auditor",
        "--expires-in",
        "1h",
    ]);
    let auditor = created.ok().stdout.trim().to_owned();
    assert!(auditor.starts_with("hfa_"), "{auditor}");
    let tokens = server.cli(&["token", "list"]).ok().stdout.clone();
    assert!(
        tokens.contains("reader") && tokens.contains("auditor"),
        "{tokens}"
    );
    server.cli_with_token(&auditor, &["identity", "list"]).ok();
    let forbidden =
        server.cli_with_token(&auditor, &["identity", "create", "human:eve@example.com"]);
    assert!(
        forbidden.expect_code(1).stderr.contains("(403)"),
        "{}",
        forbidden.stderr
    );
    let me = server
        .cli_with_token(&auditor, &["whoami", "--output", "json"])
        .ok()
        .json();
    assert_eq!(me["role"], "auditor");

    // Refusals carry the problem's detail and status.
    let duplicate = server.cli(&["identity", "create", ALICE]);
    assert!(
        duplicate.expect_code(1).stderr.contains("(409)"),
        "{}",
        duplicate.stderr
    );
    let orphan = server.cli(&[
        "identity",
        "create",
        "agent:nobody",
        "--owner",
        "human:ghost@example.com",
    ]);
    assert!(
        orphan.expect_code(1).stderr.contains("(422)"),
        "{}",
        orphan.stderr
    );
    let missing = server.cli(&["identity", "show", "agent:ghost"]);
    assert!(
        missing.expect_code(1).stderr.contains("(404)"),
        "{}",
        missing.stderr
    );
    let transition = server.cli(&["identity", "decommission", BOT]);
    assert!(
        transition.expect_code(1).stderr.contains("(409)"),
        "{}",
        transition.stderr
    );
    let anonymous = server.cli_with_token("hfa_wrong", &["identity", "list"]);
    assert!(
        anonymous.expect_code(1).stderr.contains("(401)"),
        "{}",
        anonymous.stderr
    );

    // Orphans: disabling the owner flags the agent.
    server
        .cli(&["identity", "disable", ALICE, "--reason", "left"])
        .ok();
    let orphans = server
        .cli(&["identity", "list", "--orphaned", "--output", "json"])
        .ok()
        .json();
    assert!(
        orphans["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == BOT),
        "{orphans}"
    );

    // The audit log: tail, export, verify online and offline.
    let tail = server.cli(&["audit", "tail"]).ok().stdout.clone();
    assert!(tail.contains("SEQ") && tail.contains(BOT), "{tail}");
    let tail = server
        .cli(&["audit", "tail", "-n", "3", "--output", "json"])
        .ok()
        .json();
    assert_eq!(tail["items"].as_array().unwrap().len(), 3);

    let export = server
        .cli(&["audit", "export", "--format", "jsonl"])
        .ok()
        .stdout
        .clone();
    let records: Vec<Value> = export
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            r["seq"].as_u64(),
            Some(i as u64 + 1),
            "records are in order without gaps"
        );
    }
    let verify = server
        .cli(&["audit", "verify", "--output", "json"])
        .ok()
        .json();
    assert_eq!(verify["ok"], true);
    assert_eq!(
        verify["records"].as_u64(),
        Some(records.len() as u64),
        "one line per record"
    );
    let out_file = tmp.path().join("audit.jsonl");
    let to_file = server.cli(&[
        "audit",
        "export",
        "--out",
        out_file.to_str().unwrap(),
        "--after",
        "2",
    ]);
    assert!(
        to_file.ok().stderr.contains("exported"),
        "{}",
        to_file.stderr
    );
    let lines = std::fs::read_to_string(&out_file).unwrap();
    assert_eq!(lines.lines().count(), records.len() - 2);

    let online = server.cli(&["audit", "verify"]);
    assert!(online.ok().stdout.starts_with("ok: "), "{}", online.stdout);
    // Offline, next to the running server.
    let offline = server.cli(&["audit", "verify", "--data-dir", "handoff-data"]);
    assert!(
        offline.ok().stdout.starts_with("ok: "),
        "{}",
        offline.stdout
    );

    assert!(
        !server.log().contains(&token),
        "the bootstrap token was logged"
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "server exit {status}:\n{log}");
}
