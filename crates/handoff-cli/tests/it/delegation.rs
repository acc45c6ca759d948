//! Delegation through the CLI against a real server: a human's development
//! token (`token mint-human`), handed to an agent and on to a service
//! (`delegate`), drawn as a tree (`trace`), cut off with its descendants
//! (`revoke`), and the signing keys (`keys`).

use crate::support::{Run, Server, handoff_command, run};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

const ALICE: &str = "human:alice@example.com";
const BOT: &str = "agent:bot";
const SEARCH: &str = "service:search";

/// A pack that permits every handoff and every read.
const SCHEMA: &str = "\
action delegate appliesTo { principal: [Human, Agent, Service], resource: [Human, Agent, Service] };
action read appliesTo { principal: [Human, Agent, Service], resource: [Doc] };
entity Doc;
";
const POLICIES: &str = "\
permit(principal, action == Action::\"delegate\", resource);
permit(principal, action == Action::\"read\", resource);
";

/// A server with its data in `tmp/data`, started with `--dev` when `dev`.
fn server(tmp: &Path, dev: bool) -> Server {
    let data = tmp.join("data");
    let mut args = vec!["--data-dir", data.to_str().unwrap()];
    if dev {
        args.push("--dev");
    }
    Server::start(tmp, &data, &args)
}

/// The people, the pack and the credentials every delegation test needs.
struct Fixture {
    server: Server,
    bot_secret: String,
    search_secret: String,
}

impl Fixture {
    /// A `--dev` server with the permissive pack, alice, and credentials
    /// for agent:bot and service:search.
    fn new(tmp: &Path) -> Self {
        let server = server(tmp, true);
        let pack = tmp.join("pack");
        std::fs::create_dir_all(&pack).unwrap();
        std::fs::write(pack.join("schema.cedarschema"), SCHEMA).unwrap();
        std::fs::write(pack.join("policies.cedar"), POLICIES).unwrap();
        server.cli(&["policy", "push", pack.to_str().unwrap()]).ok();
        server.cli(&["identity", "create", ALICE]).ok();
        for id in [BOT, SEARCH] {
            server
                .cli(&["identity", "create", id, "--owner", ALICE])
                .ok();
        }
        let issue = |id: &str| {
            let out = server.cli(&["credential", "issue", id]);
            let secret = out.ok().stdout.trim().to_owned();
            assert!(secret.starts_with("hfc_"), "{secret}");
            secret
        };
        let bot_secret = issue(BOT);
        let search_secret = issue(SEARCH);
        Self {
            server,
            bot_secret,
            search_secret,
        }
    }

    /// alice's development token, scope `read write`.
    fn alice_token(&self) -> String {
        let out = self.server.cli(&[
            "token",
            "mint-human",
            ALICE,
            "--scope",
            "read write",
            "--lifetime",
            "15m",
        ]);
        let token = out.ok().stdout.trim().to_owned();
        assert_jwt(&token);
        token
    }

    /// `handoff delegate` as `client` with `secret` (on the command line).
    fn delegate(&self, client: &str, secret: &str, args: &[&str]) -> Run {
        let mut all = vec!["delegate", "--client-id", client, "--client-secret", secret];
        all.extend_from_slice(args);
        self.server.cli(&all)
    }

    /// alice → agent:bot (scope `read`) → service:search; the two tokens.
    /// The second hop reads its subject token from standard input and the
    /// secret from HANDOFF_CLIENT_SECRET.
    fn chain(&self) -> (String, String) {
        let alice = self.alice_token();
        let out = self.delegate(
            BOT,
            &self.bot_secret,
            &[
                "--subject-token",
                &alice,
                "--subject-token-type",
                "jwt",
                "--scope",
                "read",
            ],
        );
        let bot = out.ok().stdout.trim().to_owned();
        assert_jwt(&bot);
        assert!(out.stderr.contains("scope \"read\""), "{}", out.stderr);

        let out = self.with_stdin(
            &["delegate", "--client-id", SEARCH, "--subject-token", "-"],
            &[("HANDOFF_CLIENT_SECRET", self.search_secret.as_str())],
            &format!("{bot}\n"),
        );
        let search = out.ok().stdout.trim().to_owned();
        assert_jwt(&search);
        (bot, search)
    }

    /// `handoff ARGS` with the admin token, extra variables `env` and
    /// `input` on standard input.
    fn with_stdin(&self, args: &[&str], env: &[(&str, &str)], input: &str) -> Run {
        let mut cmd = handoff_command(&self.server.cwd);
        cmd.env("HANDOFF_ADDR", &self.server.addr)
            .env("HANDOFF_TOKEN", self.server.admin_token())
            .envs(env.iter().copied())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn handoff");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `trace TARGET --output json`.
    fn trace(&self, target: &str) -> Value {
        self.server
            .cli(&["trace", target, "--output", "json"])
            .ok()
            .json()
    }

    /// RFC 7662 introspection of `token` with the admin token.
    fn introspect(&self, token: &str) -> Value {
        let url = format!("{}/oauth2/introspect", self.server.addr);
        let admin = self.server.admin_token();
        let body = format!("token={token}");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let resp = reqwest::Client::new()
                .post(url)
                .bearer_auth(admin)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(resp.status().is_success(), "introspection: {resp:?}");
            resp.json::<Value>().await.unwrap()
        })
    }
}

/// Asserts that `token` has the shape of a JWT (three base64url parts).
#[track_caller]
fn assert_jwt(token: &str) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token:?}");
    assert!(
        parts.iter().all(|p| !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')),
        "not a JWT: {token:?}"
    );
}

/// Member `key` of each delegation of a trace, in order.
fn field<'a>(trace: &'a Value, key: &str) -> Vec<&'a str> {
    trace["delegations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[key].as_str().unwrap())
        .collect()
}

#[test]
fn a_handed_over_token_is_traced_and_revoked_with_its_descendants() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = Fixture::new(tmp.path());
    let (bot, search) = fx.chain();

    // The leaf's trace is the whole lineage: alice's root, bot, search.
    let trace = fx.trace(&search);
    assert_eq!(field(&trace, "actor"), [ALICE, BOT, SEARCH], "{trace:#}");
    let ids = field(&trace, "id");
    assert!(ids.iter().all(|id| id.starts_with("dlg_")), "{trace:#}");
    assert_eq!(trace["lineage"], ids[0], "{trace:#}");
    assert_eq!(trace["focus"], ids[2], "{trace:#}");
    assert_eq!(trace["delegations"][0]["parent"], Value::Null);
    assert_eq!(trace["delegations"][2]["delegator"], BOT);
    assert_eq!(trace["delegations"][2]["scope"], "read");
    assert_eq!(field(&trace, "state"), ["active"; 3], "{trace:#}");

    // The same lineage from the bot's token, its delegation id, and the
    // lineage id; as a tree with the traced delegation marked.
    let bot_trace = fx.trace(&bot);
    let bot_id = bot_trace["focus"].as_str().unwrap().to_owned();
    assert_eq!(bot_id, ids[1]);
    assert_eq!(field(&bot_trace, "id"), ids);
    assert_eq!(fx.trace(&bot_id)["focus"], bot_id.as_str());
    let by_lineage = fx.trace(ids[0]);
    assert_eq!(field(&by_lineage, "id"), ids);
    let tree = fx.server.cli(&["trace", &search]);
    let text = tree.ok().stdout.clone();
    assert!(text.contains(&format!("lineage {}", ids[0])), "{text}");
    assert!(text.contains("└─ "), "{text}");
    assert!(text.contains(&format!("{BOT} → {SEARCH}")), "{text}");
    let marked: Vec<&str> = text.lines().filter(|l| l.starts_with("* ")).collect();
    assert!(
        marked.first().is_some_and(|l| l.contains(SEARCH)),
        "the leaf is not marked:\n{text}"
    );

    // A dry run names both delegations and changes nothing.
    let dry = fx
        .server
        .cli(&["revoke", &bot_id, "--dry-run", "--output", "json"])
        .ok()
        .json();
    assert_eq!(dry["dry_run"], true, "{dry:#}");
    assert_eq!(dry["root"], bot_id.as_str());
    let lost: Vec<&str> = dry["delegations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(lost.len(), 2, "{dry:#}");
    assert!(lost.contains(&ids[1]) && lost.contains(&ids[2]), "{dry:#}");
    let identities = dry["identities"].as_array().unwrap();
    assert!(identities.contains(&Value::from(BOT)), "{dry:#}");
    assert!(identities.contains(&Value::from(SEARCH)), "{dry:#}");
    let table = fx.server.cli(&["revoke", &bot_id, "--dry-run"]);
    let text = table.ok().stdout.clone();
    assert!(text.contains("2 delegations"), "{text}");
    assert!(text.contains("nothing was revoked"), "{text}");
    assert_eq!(fx.introspect(&search)["active"], true);
    assert_eq!(fx.introspect(&bot)["active"], true);

    // The real revocation takes the bot's and the search service's access.
    let done = fx.server.cli(&["revoke", &bot_id]);
    let text = done.ok().stdout.clone();
    assert!(text.contains("2 delegations"), "{text}");
    assert!(!text.contains("nothing was revoked"), "{text}");
    assert_eq!(fx.introspect(&search)["active"], false);
    assert_eq!(fx.introspect(&bot)["active"], false);
    let after = fx.trace(&search);
    assert_eq!(after["delegations"][1]["state"], "revoked", "{after:#}");
    assert_eq!(after["delegations"][0]["state"], "active", "{after:#}");
}

#[test]
fn exchange_widening_scope_is_denied_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = Fixture::new(tmp.path());
    let (bot, _) = fx.chain();

    let out = fx.delegate(
        SEARCH,
        &fx.search_secret,
        &["--subject-token", &bot, "--scope", "read write"],
    );
    out.expect_code(3);
    assert!(
        out.stderr.starts_with("error: invalid_scope: "),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    // A wrong secret is a failure, not a denial.
    let out = fx.delegate(
        SEARCH,
        &fx.bot_secret,
        &["--subject-token", &bot, "--scope", "read"],
    );
    out.expect_code(1);
    assert!(
        out.stderr.starts_with("error: invalid_client"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains(&fx.bot_secret),
        "the secret leaked: {}",
        out.stderr
    );
}

#[test]
fn delegate_prints_the_whole_answer_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let fx = Fixture::new(tmp.path());
    let alice = fx.alice_token();
    let answer = fx
        .delegate(
            BOT,
            &fx.bot_secret,
            &[
                "--subject-token",
                &alice,
                "--scope",
                "read",
                "--lifetime",
                "300",
                "--output",
                "json",
            ],
        )
        .ok()
        .json();
    assert_jwt(answer["access_token"].as_str().unwrap());
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["scope"], "read");
    let expires_in = answer["expires_in"].as_u64().unwrap();
    assert!(expires_in > 0 && expires_in <= 300, "{answer:#}");
}

#[test]
fn mint_human_without_dev_is_refused_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path(), false);
    server.cli(&["identity", "create", ALICE]).ok();
    let out = server.cli(&["token", "mint-human", ALICE, "--scope", "read"]);
    out.expect_code(1);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(out.stderr.starts_with("error: "), "{}", out.stderr);
    assert!(out.stderr.contains("--dev"), "{}", out.stderr);
    assert!(out.stderr.contains("(403)"), "{}", out.stderr);
}

#[test]
fn rotating_keys_changes_the_signing_key() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path(), false);
    let before = server
        .cli(&["keys", "list", "--output", "json"])
        .ok()
        .json();
    let keys = before["keys"].as_array().unwrap();
    assert_eq!(
        keys.iter().filter(|k| k["signing"] == true).count(),
        1,
        "{before:#}"
    );
    let old = keys.iter().find(|k| k["signing"] == true).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    let rotated = server
        .cli(&["keys", "rotate", "--output", "json"])
        .ok()
        .json();
    let new = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new, old);

    let after = server
        .cli(&["keys", "list", "--output", "json"])
        .ok()
        .json();
    let keys = after["keys"].as_array().unwrap();
    let key = |kid: &str| keys.iter().find(|k| k["kid"] == kid).cloned().unwrap();
    assert_eq!(key(&new)["signing"], true, "{after:#}");
    assert_eq!(key(&old)["signing"], false, "{after:#}");
    assert!(key(&old)["retired_at"].is_string(), "{after:#}");
    let table = server.cli(&["keys", "list"]).ok().stdout.clone();
    assert!(table.contains(&new) && table.contains("KID"), "{table}");
}

/// `handoff ARGS` with no server.
fn offline(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = handoff_command(dir.path());
    cmd.args(args);
    run(cmd)
}

#[test]
fn delegation_commands_have_help_with_examples() {
    for path in [
        &["delegate"][..],
        &["trace"],
        &["revoke"],
        &["keys"],
        &["keys", "list"],
        &["keys", "rotate"],
        &["token", "mint-human"],
    ] {
        let mut args = path.to_vec();
        args.push("--help");
        let out = offline(&args);
        assert!(
            out.ok().stdout.contains("Example"),
            "`handoff {}` has no example:\n{}",
            args.join(" "),
            out.stdout
        );
    }
    let mint = offline(&["token", "mint-human", "--help"]);
    assert!(mint.ok().stdout.contains("--dev"), "{}", mint.stdout);
    let delegate = offline(&["delegate", "--help"]);
    assert!(
        delegate.ok().stdout.contains("3  the handoff was denied"),
        "{}",
        delegate.stdout
    );
}

#[test]
fn delegation_usage_errors_exit_2() {
    for args in [
        &["delegate", "--client-id", BOT, "--client-secret", "hfc_x"][..],
        &[
            "delegate",
            "--client-id",
            BOT,
            "--client-secret",
            "hfc_x",
            "--subject-token",
            "t",
            "--client-credentials",
        ],
        &["delegate", "--client-id", BOT, "--client-credentials"],
        &[
            "delegate",
            "--client-id",
            BOT,
            "--client-secret",
            "hfc_x",
            "--client-credentials",
            "--lifetime",
            "soon",
        ],
        &["trace"],
        &["revoke"],
        &["keys"],
        &["keys", "burn"],
        &["token", "mint-human"],
    ] {
        let out = offline(args);
        assert_eq!(out.code, 2, "`handoff {}`:\n{}", args.join(" "), out.stderr);
        assert!(!out.stderr.is_empty(), "`handoff {}`", args.join(" "));
    }
}

#[test]
fn client_keys_are_added_listed_and_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server(tmp.path(), false);
    server.cli(&["identity", "create", ALICE]).ok();
    server
        .cli(&["identity", "create", SEARCH, "--owner", ALICE])
        .ok();
    let jwk = tmp.path().join("search.jwk.json");
    std::fs::write(
        &jwk,
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"search-1"}"#,
    )
    .unwrap();
    let added = server.cli(&[
        "credential",
        "add-key",
        SEARCH,
        "--jwk",
        jwk.to_str().unwrap(),
    ]);
    added.ok();
    assert!(
        added.stdout.contains("registered key search-1"),
        "{}",
        added.stdout
    );
    let listed = server.cli(&["credential", "keys", SEARCH, "--output", "json"]);
    assert_eq!(listed.json()["keys"][0]["kid"], "search-1");
    server
        .cli(&["credential", "revoke-key", SEARCH, "search-1"])
        .ok();
    let listed = server.cli(&["credential", "keys", SEARCH]);
    assert!(
        listed.stdout.contains("search-1  revoked"),
        "{}",
        listed.stdout
    );
    let private = tmp.path().join("private.jwk.json");
    std::fs::write(
        &private,
        r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#,
    )
    .unwrap();
    let refused = server.cli(&[
        "credential",
        "add-key",
        SEARCH,
        "--jwk",
        private.to_str().unwrap(),
    ]);
    refused.expect_code(1);
    assert!(
        refused.stderr.contains("private member"),
        "{}",
        refused.stderr
    );
}
