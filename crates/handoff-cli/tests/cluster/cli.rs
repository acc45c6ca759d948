//! The commands around a shared database, run as an operator would: a
//! master key, `migrate`, offline verification (and what it detects), and
//! the refusals a misconfigured node answers with.

use crate::TURN;
use crate::node::{BIN, Cluster, Database};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

fn handoff(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("HANDOFF_") {
            cmd.env_remove(key);
        }
    }
    cmd.args(args).output().expect("run handoff")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_serve_refusals_and_a_tampered_log() {
    let _turn = TURN.lock().await;
    // A master key is 32 random bytes in base64, different every time.
    let a = handoff(&["keys", "master-key"]);
    let b = handoff(&["keys", "master-key"]);
    assert!(a.status.success(), "{}", text(&a));
    assert_eq!(String::from_utf8_lossy(&a.stdout).trim().len(), 44);
    assert_ne!(a.stdout, b.stdout);

    // migrate: a fresh database twice (idempotent), an unreachable one.
    let db = Database::create().await;
    for _ in 0..2 {
        let out = handoff(&["migrate", "--database", &db.url]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("is at the current schema"),
            "{}",
            text(&out)
        );
    }
    let out = handoff(&[
        "migrate",
        "--database",
        "postgres://nobody:secret@127.0.0.1:1/none",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        !text(&out).contains("secret"),
        "the password was printed: {}",
        text(&out)
    );

    // serve refuses a database without a master key, a world-readable key
    // file and a non-PostgreSQL url, before listening.
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let data = data.to_str().unwrap();
    let out = handoff(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--database",
        &db.url,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("HANDOFF_MASTER_KEY_FILE"),
        "{}",
        text(&out)
    );
    let key = tmp.path().join("master.key");
    fs::write(&key, &a.stdout).unwrap();
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let key = key.to_str().unwrap();
    let out = handoff(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data,
        "--database",
        &db.url,
        "--master-key-file",
        key,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("chmod 600"), "{}", text(&out));
    let out = handoff(&[
        "serve",
        "--data-dir",
        data,
        "--database",
        "mysql://root:pw@db/x",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("not a postgres:// url"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(":pw@"), "{}", text(&out));

    // Offline verification of a cluster's log, then of a tampered one.
    let c = Cluster::start(2).await;
    c.root(0, "agent:bot").await.access_token();
    let (code, out) = c.verify_audit();
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: "), "{out}");
    let out = handoff(&[
        "audit",
        "verify",
        "--database",
        &c.db.url,
        "--public-key",
        "zz",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--public-key"), "{}", text(&out));
    let out = handoff(&["audit", "verify", "--database", &c.db.url]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--public-key HEX"), "{}", text(&out));
    // Another master key cannot vouch for the log.
    let other = tmp.path().join("other.key");
    fs::write(&other, &b.stdout).unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).unwrap();
    let out = handoff(&[
        "audit",
        "verify",
        "--database",
        &c.db.url,
        "--master-key-file",
        other.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("cannot be opened with this master key"),
        "{}",
        text(&out)
    );

    let mut conn = c.db.connect().await;
    sqlx::query(
        "UPDATE audit_records SET details = replace(details, 'agent:bot', 'agent:eve') \
         WHERE kind = 'delegation.create'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let (code, out) = c.verify_audit();
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("audit log is broken at sequence"), "{out}");
}
