//! `/v1/identities`: create, read, list, filter, paginate, update, status
//! transitions, ownership rules and orphans.

use crate::harness::{Harness, enc};
use serde_json::{Value, json};

#[tokio::test]
async fn creating_an_identity_answers_201_with_location_and_the_identity() {
    let h = Harness::new().await;
    let r = h
        .post(
            "/v1/identities",
            json!({"id": "human:alice@example.com", "environment": "prod", "attributes": {"team": "payments"}}),
        )
        .await;
    let v = r.expect(201);
    assert_eq!(
        r.headers["location"],
        "/v1/identities/human%3Aalice%40example.com"
    );
    assert_eq!(
        v,
        &json!({
            "id": "human:alice@example.com", "kind": "human", "name": "alice@example.com",
            "owner": null, "environment": "prod", "attributes": {"team": "payments"},
            "source": "manual", "status": "active", "orphaned": false,
            "created_at": "2026-11-22T17:00:00.000000Z", "updated_at": "2026-11-22T17:00:00.000000Z"
        })
    );
    let agent = h.owned("agent:support-bot", "alice@example.com").await;
    assert_eq!(agent["owner"], "human:alice@example.com");
    assert_eq!(agent["kind"], "agent");
    assert_eq!(agent["attributes"], json!({}));

    let got = h.get(r.headers["location"].to_str().unwrap()).await;
    assert_eq!(got.expect(200), v);
}

#[tokio::test]
async fn a_duplicate_id_is_a_conflict_and_changes_nothing() {
    let h = Harness::new().await;
    h.human("alice").await;
    let before = h.audit_head().await;
    h.post(
        "/v1/identities",
        json!({"id": "human:alice", "environment": "prod"}),
    )
    .await
    .assert_problem(409, "conflict");
    assert_eq!(h.audit_head().await, before);
    assert_eq!(
        h.get("/v1/identities/human%3Aalice").await.expect(200)["environment"],
        Value::Null
    );
}

#[tokio::test]
async fn ownership_rules_are_enforced_with_422_and_nothing_is_written() {
    let h = Harness::new().await;
    h.human("alice").await;
    h.human("sus").await;
    h.set_status("human:sus", "suspended").await;
    h.owned("agent:helper", "alice").await;
    let cases = [
        json!({"id": "agent:orphan"}),
        json!({"id": "service:orphan"}),
        json!({"id": "agent:orphan", "owner": "human:nobody"}),
        json!({"id": "human:orphan", "owner": "human:alice"}),
        json!({"id": "agent:orphan", "owner": "agent:helper"}),
        json!({"id": "agent:orphan", "owner": "human:sus"}),
    ];
    for body in cases {
        let before = h.audit_head().await;
        let r = h.post("/v1/identities", body.clone()).await;
        r.assert_problem(422, "unprocessable");
        assert_eq!(h.audit_head().await, before, "{body}");
        h.assert_absent(body["id"].as_str().unwrap()).await;
    }
}

#[tokio::test]
async fn lists_filter_by_every_field_and_paginate_with_cursors() {
    let h = Harness::new().await;
    for name in ["a", "b", "c"] {
        h.human(name).await;
    }
    for i in 0..5 {
        h.owned(
            &format!("agent:bot-{i}"),
            if i % 2 == 0 { "a" } else { "b" },
        )
        .await;
    }
    h.post(
        "/v1/identities",
        json!({"id": "service:api", "owner": "human:c", "environment": "staging"}),
    )
    .await
    .expect(201);
    h.set_status("agent:bot-4", "suspended").await;

    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = h.get("/v1/identities").await;
    assert_eq!(ids(all.expect(200)).len(), 9);
    assert_eq!(all.json["next_cursor"], Value::Null);
    let agents = h.get("/v1/identities?kind=agent").await;
    assert_eq!(
        ids(agents.expect(200)),
        [
            "agent:bot-0",
            "agent:bot-1",
            "agent:bot-2",
            "agent:bot-3",
            "agent:bot-4"
        ]
    );
    let owned_by_b = h.get("/v1/identities?owner=human%3Ab").await;
    assert_eq!(ids(owned_by_b.expect(200)), ["agent:bot-1", "agent:bot-3"]);
    let suspended = h.get("/v1/identities?status=suspended").await;
    assert_eq!(ids(suspended.expect(200)), ["agent:bot-4"]);
    let staging = h.get("/v1/identities?environment=staging").await;
    assert_eq!(ids(staging.expect(200)), ["service:api"]);
    let combined = h
        .get("/v1/identities?kind=agent&owner=human%3Aa&status=active")
        .await;
    assert_eq!(ids(combined.expect(200)), ["agent:bot-0", "agent:bot-2"]);

    let mut seen = vec![];
    let mut path = "/v1/identities?limit=2".to_owned();
    loop {
        let page = h.get(&path).await;
        let v = page.expect(200);
        assert!(v["items"].as_array().unwrap().len() <= 2);
        seen.extend(ids(v));
        match v["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/identities?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all.json));
}

#[tokio::test]
async fn patch_replaces_environment_and_attributes() {
    let h = Harness::new().await;
    h.post(
        "/v1/identities",
        json!({"id": "human:alice", "environment": "prod", "attributes": {"a": 1}}),
    )
    .await
    .expect(201);
    h.advance(5);
    let r = h
        .patch(
            "/v1/identities/human%3Aalice",
            json!({"attributes": {"b": [1, 2]}}),
        )
        .await;
    let v = r.expect(200);
    assert_eq!(v["attributes"], json!({"b": [1, 2]}));
    assert_eq!(v["environment"], "prod");
    assert_eq!(v["updated_at"], "2026-11-22T17:00:05.000000Z");
    assert_eq!(v["created_at"], "2026-11-22T17:00:00.000000Z");
    let r = h
        .patch("/v1/identities/human%3Aalice", json!({"environment": null}))
        .await;
    assert_eq!(r.expect(200)["environment"], Value::Null);
    let r = h
        .patch(
            "/v1/identities/human%3Aalice",
            json!({"environment": "staging"}),
        )
        .await;
    assert_eq!(r.expect(200)["environment"], "staging");

    let before = h.audit_head().await;
    h.patch("/v1/identities/human%3Aalice", json!({}))
        .await
        .assert_problem(400, "invalid-request");
    h.patch(
        "/v1/identities/human%3Aalice",
        json!({"environment": "Not Valid"}),
    )
    .await
    .assert_problem(400, "invalid-request");
    h.patch("/v1/identities/human%3Aalice", json!({"attributes": [1]}))
        .await
        .assert_problem(400, "invalid-request");
    h.patch(
        "/v1/identities/human%3Anobody",
        json!({"environment": "prod"}),
    )
    .await
    .assert_problem(404, "not-found");
    assert_eq!(h.audit_head().await, before);
    h.assert_absent("human:nobody").await;
    assert_eq!(
        h.get("/v1/identities/human%3Aalice").await.expect(200)["environment"],
        "staging"
    );
}

/// Puts a fresh human into `status` along allowed transitions.
async fn human_in(h: &Harness, name: &str, status: &str) -> String {
    let id = format!("human:{name}");
    h.human(name).await;
    let path: &[&str] = match status {
        "active" => &[],
        "suspended" => &["suspended"],
        "disabled" => &["disabled"],
        "decommissioned" => &["disabled", "decommissioned"],
        other => panic!("{other}"),
    };
    for s in path {
        h.set_status(&id, s).await;
    }
    id
}

#[tokio::test]
async fn every_status_transition_is_allowed_or_rejected_with_409() {
    let h = Harness::new().await;
    let statuses = ["active", "suspended", "disabled", "decommissioned"];
    let allowed = [
        ("active", "suspended"),
        ("suspended", "active"),
        ("active", "disabled"),
        ("suspended", "disabled"),
        ("disabled", "decommissioned"),
    ];
    for from in statuses {
        for to in statuses {
            let id = human_in(&h, &format!("{from}-{to}"), from).await;
            let before = h.audit_head().await;
            let r = h
                .post(
                    &format!("/v1/identities/{}/status", enc(&id)),
                    json!({"status": to, "reason": "test"}),
                )
                .await;
            if allowed.contains(&(from, to)) {
                assert_eq!(r.expect(200)["status"], to, "{from} -> {to}");
                assert_eq!(h.audit_head().await, before + 1);
            } else {
                r.assert_problem(409, "conflict");
                assert_eq!(h.audit_head().await, before, "{from} -> {to}");
                let now = h.get(&format!("/v1/identities/{}", enc(&id))).await;
                assert_eq!(now.expect(200)["status"], from);
            }
        }
    }
}

#[tokio::test]
async fn an_unknown_status_or_oversized_reason_is_a_400() {
    let h = Harness::new().await;
    h.human("alice").await;
    let before = h.audit_head().await;
    for body in [
        json!({"status": "paused"}),
        json!({"status": "Active"}),
        json!({"status": "suspended", "reason": "x".repeat(513)}),
        json!({"status": "suspended", "reason": "line\nbreak"}),
    ] {
        h.post("/v1/identities/human%3Aalice/status", body)
            .await
            .assert_problem(400, "invalid-request");
    }
    h.post(
        "/v1/identities/human%3Anobody/status",
        json!({"status": "suspended"}),
    )
    .await
    .assert_problem(404, "not-found");
    assert_eq!(h.audit_head().await, before);
}

#[tokio::test]
async fn disabling_a_human_orphans_what_it_owns() {
    for terminal in [&["disabled"][..], &["disabled", "decommissioned"][..]] {
        let h = Harness::new().await;
        h.human("alice").await;
        h.human("bob").await;
        h.owned("agent:a1", "alice").await;
        h.owned("service:s1", "alice").await;
        h.owned("agent:b1", "bob").await;
        for s in terminal {
            h.set_status("human:alice", s).await;
        }
        for id in ["agent:a1", "service:s1"] {
            let v = h.get(&format!("/v1/identities/{}", enc(id))).await;
            assert_eq!(v.expect(200)["orphaned"], true, "{id}");
            assert_eq!(v.json["status"], "active");
        }
        assert_eq!(
            h.get("/v1/identities/agent%3Ab1").await.expect(200)["orphaned"],
            false
        );
        let orphans = h.get("/v1/identities?orphaned=true").await;
        let ids: Vec<_> = orphans.expect(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].clone())
            .collect();
        assert_eq!(ids, [json!("agent:a1"), json!("service:s1")]);
        let others = h.get("/v1/identities?orphaned=false").await;
        assert_eq!(others.expect(200)["items"].as_array().unwrap().len(), 3);
    }
}

#[tokio::test]
async fn suspending_a_human_does_not_orphan() {
    let h = Harness::new().await;
    h.human("alice").await;
    h.owned("agent:a1", "alice").await;
    h.set_status("human:alice", "suspended").await;
    assert_eq!(
        h.get("/v1/identities/agent%3Aa1").await.expect(200)["orphaned"],
        false
    );
    let orphans = h.get("/v1/identities?orphaned=true").await;
    assert_eq!(orphans.expect(200)["items"], json!([]));
}

/// Regression: `u8::from_str_radix` takes a sign, so `+6` was read as the
/// byte 6 and a cursor the server never wrote was accepted.
#[tokio::test]
async fn cursor_with_a_plus_sign_is_rejected_not_read_as_hex() {
    let h = Harness::new().await;
    h.human("alice").await;
    for cursor in ["%2B6", "%2B6%2B6", "4A"] {
        h.get(&format!("/v1/identities?cursor={cursor}"))
            .await
            .assert_problem(400, "invalid-request");
    }
    let first = h.get("/v1/identities?limit=1").await;
    assert_eq!(first.expect(200)["items"][0]["id"], "human:alice");
}

/// Regression: `"attributes": null` in a PATCH was read as absent, so
/// `{"environment": "x", "attributes": null}` silently kept the attributes
/// and `{"attributes": null}` was refused as an empty update.
#[tokio::test]
async fn patch_with_null_attributes_is_rejected_not_ignored() {
    let h = Harness::new().await;
    h.post(
        "/v1/identities",
        json!({"id": "human:alice", "attributes": {"team": "a"}}),
    )
    .await
    .expect(201);
    let before = h.audit_head().await;
    for body in [
        json!({"attributes": null}),
        json!({"environment": "prod", "attributes": null}),
    ] {
        let r = h.patch("/v1/identities/human%3Aalice", body).await;
        r.assert_problem(400, "invalid-request");
        assert!(
            r.json["detail"].as_str().unwrap().contains("attributes"),
            "{}",
            r.text
        );
    }
    assert_eq!(h.audit_head().await, before);
    let alice = h.get("/v1/identities/human%3Aalice").await;
    assert_eq!(alice.expect(200)["attributes"], json!({"team": "a"}));
    assert_eq!(alice.json["environment"], Value::Null);
    let cleared = h
        .patch("/v1/identities/human%3Aalice", json!({"attributes": {}}))
        .await;
    assert_eq!(cleared.expect(200)["attributes"], json!({}));
}
