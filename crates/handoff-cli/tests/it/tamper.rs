//! Tamper detection on a copy of a real data directory: a server writes a
//! log with frequent checkpoints and stops on SIGTERM; each test edits,
//! deletes, inserts, reorders or truncates records in a copy of its
//! database and `handoff audit verify --data-dir` must name the first bad
//! sequence number and exit 3.

use crate::support::{Server, copy_data_dir, handoff_command, run};
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection as Conn};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tempfile::TempDir;

/// The record the edit, delete, insert and reorder tests tamper with.
const K: i64 = 12;

/// A stopped server's data directory with a verified-good log, shared by
/// the tamper tests (each works on its own copy).
struct Pristine {
    _tmp: TempDir,
    data_dir: PathBuf,
    last_seq: i64,
    checkpoints: Vec<i64>,
}

fn pristine() -> &'static Pristine {
    static PRISTINE: OnceLock<Pristine> = OnceLock::new();
    PRISTINE.get_or_init(build_pristine)
}

fn build_pristine() -> Pristine {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let config = tmp.path().join("handoff.toml");
    std::fs::write(&config, "version = 1\n\n[audit]\ncheckpoint_every = 5\n").unwrap();
    let server = Server::start(
        tmp.path(),
        &data_dir,
        &[
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    server
        .cli(&["identity", "create", "human:owner@example.com"])
        .ok();
    for i in 0..30 {
        let id = format!("agent:bot-{i:02}");
        server
            .cli(&[
                "identity",
                "create",
                &id,
                "--owner",
                "human:owner@example.com",
                "--env",
                "prod",
            ])
            .ok();
    }
    let (status, log) = server.terminate();
    assert!(
        status.success(),
        "the server did not exit 0 on SIGTERM ({status}):\n{log}"
    );

    let (last_seq, checkpoints) = block_on(async {
        let mut conn = open(&data_dir.join("handoff.db")).await;
        let last: i64 = sqlx::query_scalar("SELECT max(seq) FROM audit_records")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        let checkpoints: Vec<i64> =
            sqlx::query_scalar("SELECT seq FROM audit_checkpoints ORDER BY seq")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        conn.close().await.unwrap();
        (last, checkpoints)
    });
    assert!(
        last_seq > 31,
        "31 creations must be recorded, the log ends at {last_seq}"
    );
    assert_eq!(
        checkpoints.last(),
        Some(&last_seq),
        "shutdown writes a final checkpoint over the last record"
    );
    assert!(
        checkpoints.len() >= 3,
        "checkpoints every 5 records: {checkpoints:?}"
    );
    Pristine {
        _tmp: tmp,
        data_dir,
        last_seq,
        checkpoints,
    }
}

/// A fresh copy of the pristine data directory.
fn copy() -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("copy");
    copy_data_dir(&pristine().data_dir, &dir);
    (tmp, dir)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

async fn open(db: &Path) -> Conn {
    let options = SqliteConnectOptions::new().filename(db);
    Conn::connect_with(&options).await.unwrap()
}

/// Runs `tamper` on the copy's database.
fn tamper<F>(dir: &Path, tamper: F)
where
    F: AsyncFnOnce(&mut Conn),
{
    block_on(async {
        let mut conn = open(&dir.join("handoff.db")).await;
        tamper(&mut conn).await;
        conn.close().await.unwrap();
    });
}

/// `handoff audit verify --data-dir DIR`.
fn verify(dir: &Path, json: bool) -> crate::support::Run {
    let mut cmd = handoff_command(dir);
    cmd.args(["audit", "verify", "--data-dir", dir.to_str().unwrap()]);
    if json {
        cmd.args(["--output", "json"]);
    }
    run(cmd)
}

/// Asserts that verification reports the log broken at `seq`.
#[track_caller]
fn assert_broken_at(dir: &Path, seq: i64) {
    let out = verify(dir, false);
    out.expect_code(3);
    let expected = format!("audit log is broken at sequence {seq}: ");
    assert!(
        out.stderr.starts_with(&expected),
        "expected {expected:?}, got:\n{}",
        out.stderr
    );
    let json = verify(dir, true).expect_code(3).json();
    assert_eq!(json["ok"], false);
    assert_eq!(json["first_bad_seq"].as_i64(), Some(seq), "{json}");
}

#[test]
fn an_untouched_copy_verifies() {
    let (_tmp, dir) = copy();
    let out = verify(&dir, false);
    out.ok();
    let p = pristine();
    let expected = format!(
        "ok: {} records, {} checkpoints, last seq {}",
        p.last_seq,
        p.checkpoints.len(),
        p.last_seq
    );
    assert_eq!(out.stdout.trim(), expected);
}

#[test]
fn an_edited_record_is_detected() {
    let (_tmp, dir) = copy();
    tamper(&dir, async |conn| {
        let changed = sqlx::query("UPDATE audit_records SET details = ?1 WHERE seq = ?2")
            .bind(r#"{"environment":"dev"}"#)
            .bind(K)
            .execute(&mut *conn)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1);
    });
    assert_broken_at(&dir, K);
}

#[test]
fn a_deleted_record_is_detected() {
    let (_tmp, dir) = copy();
    tamper(&dir, async |conn| {
        let changed = sqlx::query("DELETE FROM audit_records WHERE seq = ?1")
            .bind(K)
            .execute(&mut *conn)
            .await
            .unwrap();
        assert_eq!(changed.rows_affected(), 1);
    });
    assert_broken_at(&dir, K);
}

#[test]
fn an_inserted_record_is_detected() {
    let (_tmp, dir) = copy();
    let last = pristine().last_seq;
    tamper(&dir, async |conn| {
        // Make room at K, from the top down so no two rows share a seq.
        for seq in (K..=last).rev() {
            sqlx::query("UPDATE audit_records SET seq = seq + 1 WHERE seq = ?1")
                .bind(seq)
                .execute(&mut *conn)
                .await
                .unwrap();
        }
        // A forged record: the contents of K-1, placed at K.
        let changed = sqlx::query(
            "INSERT INTO audit_records (seq, time, kind, actor, target, outcome, details, prev_hash, hash) \
             SELECT ?1, time, kind, actor, target, outcome, details, prev_hash, hash \
             FROM audit_records WHERE seq = ?2",
        )
        .bind(K)
        .bind(K - 1)
        .execute(&mut *conn)
        .await
        .unwrap();
        assert_eq!(changed.rows_affected(), 1);
    });
    assert_broken_at(&dir, K);
}

#[test]
fn reordered_records_are_detected() {
    let (_tmp, dir) = copy();
    tamper(&dir, async |conn| {
        // Swapping the seq values of K and K+1 swaps every other column.
        let parked = 1_000_000_i64;
        for (from, to) in [(K, parked), (K + 1, K), (parked, K + 1)] {
            let changed = sqlx::query("UPDATE audit_records SET seq = ?1 WHERE seq = ?2")
                .bind(to)
                .bind(from)
                .execute(&mut *conn)
                .await
                .unwrap();
            assert_eq!(changed.rows_affected(), 1);
        }
    });
    assert_broken_at(&dir, K);
}

#[test]
fn a_tail_truncated_behind_the_last_checkpoint_is_detected() {
    let (_tmp, dir) = copy();
    let checkpoints = &pristine().checkpoints;
    let second_to_last = checkpoints[checkpoints.len() - 2];
    tamper(&dir, async |conn| {
        let changed = sqlx::query("DELETE FROM audit_records WHERE seq > ?1")
            .bind(second_to_last)
            .execute(&mut *conn)
            .await
            .unwrap();
        assert!(changed.rows_affected() > 0);
    });
    // What is left verifies record by record; the last checkpoint proves
    // that more existed.
    assert_broken_at(&dir, second_to_last + 1);
    let out = verify(&dir, false);
    assert!(out.stderr.contains("truncated"), "{}", out.stderr);
}
