//! The command line itself: help texts, usage errors, completions and
//! failures that need no running server.

use crate::support::{free_port, handoff_command, run};

/// Every command path of the binary.
const COMMANDS: &[&[&str]] = &[
    &[],
    &["serve"],
    &["identity"],
    &["identity", "create"],
    &["identity", "list"],
    &["identity", "show"],
    &["identity", "update"],
    &["identity", "suspend"],
    &["identity", "resume"],
    &["identity", "disable"],
    &["identity", "decommission"],
    &["credential"],
    &["credential", "issue"],
    &["credential", "list"],
    &["credential", "show"],
    &["credential", "revoke"],
    &["token"],
    &["token", "create"],
    &["token", "list"],
    &["token", "revoke"],
    &["whoami"],
    &["policy"],
    &["policy", "push"],
    &["policy", "validate"],
    &["policy", "test"],
    &["policy", "list"],
    &["policy", "show"],
    &["policy", "rollback"],
    &["audit"],
    &["audit", "tail"],
    &["audit", "export"],
    &["audit", "verify"],
    &["completions"],
];

fn handoff(args: &[&str]) -> crate::support::Run {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = handoff_command(dir.path());
    cmd.args(args);
    run(cmd)
}

#[test]
fn every_command_has_help_with_an_example() {
    for path in COMMANDS {
        let mut args = path.to_vec();
        args.push("--help");
        let out = handoff(&args);
        out.ok();
        assert!(
            out.stdout.contains("Example"),
            "`handoff {}` has no example:\n{}",
            args.join(" "),
            out.stdout
        );
    }
}

#[test]
fn help_documents_exit_codes() {
    let top = handoff(&["--help"]);
    assert!(top.ok().stdout.contains("Exit status"), "{}", top.stdout);
    let verify = handoff(&["audit", "verify", "--help"]);
    assert!(
        verify.ok().stdout.contains("3  the log is broken"),
        "{}",
        verify.stdout
    );
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &["frobnicate"][..],
        &["identity", "create"],
        &["identity", "list", "--limit", "0"],
        &["identity", "list", "--kind", "robot"],
        &["identity", "update", "agent:x"],
        &["identity", "create", "agent:x", "--attributes-json", "[1]"],
        &["credential", "issue", "agent:x", "--expires-in", "soon"],
        &["token", "create", "ci"],
        &["audit", "tail", "-n", "many"],
        &["serve", "--listen", "not-an-address"],
        &["serve", "--tls-cert", "cert.pem"],
        &["--output", "yaml", "whoami"],
        &["completions", "tcsh"],
    ] {
        let out = handoff(args);
        assert_eq!(out.code, 2, "`handoff {}`:\n{}", args.join(" "), out.stderr);
        assert!(
            !out.stderr.is_empty(),
            "`handoff {}` printed no error",
            args.join(" ")
        );
    }
}

#[test]
fn an_unreachable_server_exits_1_and_names_the_address() {
    let port = free_port();
    let addr = format!("http://127.0.0.1:{port}");
    let out = handoff(&["--addr", &addr, "--token", "hfa_not-a-real-token", "whoami"]);
    out.expect_code(1);
    assert!(
        out.stderr.starts_with("error: could not connect to"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains(&addr), "{}", out.stderr);
    assert!(out.stderr.contains("handoff serve"), "{}", out.stderr);
    assert!(
        !out.stderr.contains("hfa_not-a-real-token"),
        "the token leaked: {}",
        out.stderr
    );
}

#[test]
fn offline_verify_of_a_missing_data_directory_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = handoff(&["audit", "verify", "--data-dir", missing.to_str().unwrap()]);
    out.expect_code(1);
    assert!(
        out.stderr.contains("cannot read the audit log"),
        "{}",
        out.stderr
    );
}

#[test]
fn completions_are_generated_for_each_shell() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = handoff(&["completions", shell]);
        out.ok();
        assert!(out.stdout.contains("handoff"), "{shell}: {}", out.stdout);
        assert!(out.stdout.contains("credential"), "{shell}: {}", out.stdout);
    }
}

#[test]
fn an_invalid_configuration_file_fails_before_serving() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("handoff.toml");
    std::fs::write(&config, "version = 2\n").unwrap();
    let out = handoff(&["serve", "--config", config.to_str().unwrap()]);
    out.expect_code(1);
    assert!(out.stderr.contains("version 2"), "{}", out.stderr);
}
