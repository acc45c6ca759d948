//! `/v1/audit`: paging, tail and verification after mutations; secrets
//! never reach the log.

use crate::harness::Harness;
use serde_json::{Value, json};

fn seqs(v: &Value) -> Vec<u64> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["seq"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn mutations_are_recorded_and_the_log_verifies() {
    let h = Harness::new().await;
    h.human("alice").await;
    h.owned("agent:bot", "alice").await;
    let (cred, secret) = h.issue("agent:bot", json!({"description": "ci"})).await;
    let (_, token_secret) = h.admin_token("auditor").await;
    h.patch("/v1/identities/agent%3Abot", json!({"environment": "prod"}))
        .await
        .expect(200);
    h.post_empty(&format!("/v1/credentials/{cred}/revoke"))
        .await
        .expect(200);
    h.set_status("human:alice", "disabled").await;
    let head = h.audit_head().await;
    // bootstrap token + 7 changes
    assert_eq!(head, 8);

    let all = h.get("/v1/audit").await;
    let v = all.expect(200);
    assert_eq!(seqs(v), (1..=8).collect::<Vec<_>>());
    assert_eq!(v["next_after"], Value::Null);
    let kinds: Vec<_> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "admin_token.create",
            "identity.create",
            "identity.create",
            "credential.issue",
            "admin_token.create",
            "identity.update",
            "credential.revoke",
            "identity.status"
        ]
    );
    let first = &v["items"][0];
    assert_eq!(first["actor"], "system");
    assert_eq!(first["prev_hash"], "0".repeat(64));
    assert_eq!(first["outcome"], "success");
    assert_eq!(first["time"], "2026-11-22T17:00:00.000000Z");
    let second = &v["items"][1];
    assert!(second["actor"].as_str().unwrap().starts_with("token:tok_"));
    assert_eq!(second["prev_hash"], first["hash"]);
    assert_eq!(second["target"], "human:alice");
    assert!(second["details"].is_object());
    let status = &v["items"][7]["details"];
    assert_eq!(status["from"], "active");
    assert_eq!(status["to"], "disabled");
    assert_eq!(status["orphan_owned"], true);
    for r in v["items"].as_array().unwrap() {
        let hash = r["hash"].as_str().unwrap();
        assert_eq!(hash.len(), 64);
        assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()));
    }
    for s in [&secret, &token_secret, &h.token] {
        assert!(
            !all.text.contains(s.as_str()),
            "a secret reached the audit log"
        );
    }

    let verify = h.get("/v1/audit/verify").await;
    let r = verify.expect(200);
    assert_eq!(r["ok"], true);
    assert_eq!(r["records"], 8);
    assert_eq!(r["last_seq"], 8);
    assert_eq!(r["last_hash"], v["items"][7]["hash"]);
    assert!(r.get("last_checkpoint").is_some());
}

#[tokio::test]
async fn the_log_pages_forward_and_has_a_tail() {
    let h = Harness::new().await;
    for i in 0..6 {
        h.human(&format!("h{i}")).await;
    }
    let p1 = h.get("/v1/audit?limit=3").await;
    assert_eq!(seqs(p1.expect(200)), [1, 2, 3]);
    assert_eq!(p1.json["next_after"], 3);
    let p2 = h.get("/v1/audit?after=3&limit=3").await;
    assert_eq!(seqs(p2.expect(200)), [4, 5, 6]);
    assert_eq!(p2.json["next_after"], 6);
    let p3 = h.get("/v1/audit?after=6&limit=3").await;
    assert_eq!(seqs(p3.expect(200)), [7]);
    assert_eq!(p3.json["next_after"], Value::Null);
    let p4 = h.get("/v1/audit?after=7").await;
    assert_eq!(p4.expect(200)["items"], json!([]));
    assert_eq!(p4.json["next_after"], Value::Null);
    let tail = h.get("/v1/audit?tail=2").await;
    assert_eq!(seqs(tail.expect(200)), [6, 7]);
    assert_eq!(tail.json["next_after"], Value::Null);
}
