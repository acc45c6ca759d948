//! Policy packs over the admin API: push, identical push, diagnostics for
//! an invalid pack, versions, rollback, roles and the body limit.

use crate::harness::Harness;
use axum::http::Method;
use serde_json::{Value, json};

const SCHEMA: &str =
    "entity user; entity doc;\naction read, write appliesTo { principal: user, resource: doc };\n";

fn pack(policy: &str) -> Value {
    json!({"files": {"schema.cedarschema": SCHEMA, "policies.cedar": policy}})
}

const READ: &str = "@id(\"read\")\npermit(principal, action == Action::\"read\", resource);\n";
const WRITE: &str = "@id(\"write\")\npermit(principal, action == Action::\"write\", resource);\n";

async fn put(h: &Harness, token: &str, body: Value) -> crate::harness::Reply {
    h.call(Method::PUT, "/v1/policies", Some(token), Some(body))
        .await
}

async fn allowed(h: &Harness, action: &str) -> bool {
    let body = json!({"subject": {"type": "user", "id": "u"}, "action": {"name": action},
                      "resource": {"type": "doc", "id": "d"}});
    h.post("/access/v1/evaluation", body).await.expect(200)["decision"]
        .as_bool()
        .unwrap()
}

#[tokio::test]
async fn pushes_create_active_versions_and_an_identical_push_stores_nothing() {
    let h = Harness::new().await;
    let r = put(&h, &h.token, pack(READ)).await;
    let v = r.expect(201);
    assert_eq!(r.headers["location"], "/v1/policies/1");
    assert_eq!(v["version"], 1);
    assert_eq!(v["active"], true);
    assert_eq!(v["created"], true);
    assert_eq!(v["policy_count"], 1);
    assert_eq!(v["digest"].as_str().unwrap().len(), 64);
    assert!(v["created_by"].as_str().unwrap().starts_with("token:"));
    assert!(allowed(&h, "read").await);

    let again = put(&h, &h.token, pack(READ)).await;
    assert_eq!(again.expect(200)["created"], false);
    assert_eq!(again.json["version"], 1);

    put(&h, &h.token, pack(WRITE)).await.expect(201);
    let list = h.get("/v1/policies").await;
    let v = list.expect(200);
    assert_eq!(v["active"], 2);
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
    assert_eq!(v["items"][0]["active"], false);
    assert!(v["items"][0].get("created").is_none());
    let one = h.get("/v1/policies/1").await;
    assert_eq!(one.expect(200)["files"]["policies.cedar"], READ);
    assert_eq!(one.json["active"], false);
    h.get("/v1/policies/9")
        .await
        .assert_problem(404, "not-found");
    for bad in ["0", "01", "x", "-1"] {
        h.get(&format!("/v1/policies/{bad}"))
            .await
            .assert_problem(400, "invalid-request");
    }
}

#[tokio::test]
async fn an_invalid_pack_is_422_with_diagnostics_and_changes_nothing() {
    let h = Harness::new().await;
    put(&h, &h.token, pack(READ)).await.expect(201);
    let head = h.audit_head().await;
    let broken =
        "@id(\"read\")\npermit(principal, action == Action::\"read\", resource)\nforbid(;\n";
    let r = put(&h, &h.token, pack(broken)).await;
    r.assert_problem(422, "unprocessable");
    let errors = r.json["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    let first = &errors[0];
    assert_eq!(first["file"], "policies.cedar");
    assert!(first["line"].as_u64().unwrap() >= 2, "{first}");
    assert!(first["column"].as_u64().unwrap() >= 1);
    assert!(first["message"].is_string());
    assert_eq!(h.audit_head().await, head, "nothing audited");
    assert_eq!(h.get("/v1/policies").await.expect(200)["active"], 1);
    assert!(allowed(&h, "read").await);
    // A body that is not the documented shape is a 400 like the rest of /v1/.
    put(&h, &h.token, json!({"files": {"a.cedar": 1}}))
        .await
        .assert_problem(400, "invalid-request");
    put(&h, &h.token, json!({"files": {}, "extra": 1}))
        .await
        .assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn activating_an_older_version_rolls_back() {
    let h = Harness::new().await;
    put(&h, &h.token, pack(READ)).await.expect(201);
    put(&h, &h.token, pack(WRITE)).await.expect(201);
    assert!(!allowed(&h, "read").await);
    let r = h.post_empty("/v1/policies/1/activate").await;
    assert_eq!(r.expect(200)["version"], 1);
    assert_eq!(r.json["active"], true);
    assert!(allowed(&h, "read").await);
    assert!(!allowed(&h, "write").await);
    h.post_empty("/v1/policies/1/activate")
        .await
        .assert_problem(409, "conflict");
    h.post_empty("/v1/policies/7/activate")
        .await
        .assert_problem(404, "not-found");
    let tail = h.engine.audit_tail(5).await.unwrap();
    assert!(tail.iter().any(|r| r.kind == "policy.activate"));
    assert_eq!(h.get("/v1/audit/verify").await.expect(200)["ok"], true);
}

#[tokio::test]
async fn auditors_read_policies_and_only_admins_change_them() {
    let h = Harness::new().await;
    put(&h, &h.token, pack(READ)).await.expect(201);
    put(&h, &h.token, pack(WRITE)).await.expect(201);
    let (_, auditor) = h.admin_token("auditor").await;
    let (_, pdp) = h.admin_token("pdp").await;
    h.call(Method::GET, "/v1/policies", Some(&auditor), None)
        .await
        .expect(200);
    h.call(Method::GET, "/v1/policies/1", Some(&auditor), None)
        .await
        .expect(200);
    put(&h, &auditor, pack(READ))
        .await
        .assert_problem(403, "forbidden");
    h.call(
        Method::POST,
        "/v1/policies/1/activate",
        Some(&auditor),
        None,
    )
    .await
    .assert_problem(403, "forbidden");
    h.call(Method::GET, "/v1/policies", Some(&pdp), None)
        .await
        .assert_problem(403, "forbidden");
    h.call(Method::GET, "/v1/policies", None, None)
        .await
        .assert_problem(401, "unauthenticated");
}

#[tokio::test]
async fn packs_may_exceed_the_usual_body_limit_up_to_a_mebibyte() {
    let h = Harness::new().await;
    let padding = format!("// {}\n", "x".repeat(200 * 1024));
    put(&h, &h.token, pack(&format!("{padding}{READ}")))
        .await
        .expect(201);
    let huge = format!("// {}\n", "x".repeat(1100 * 1024));
    put(&h, &h.token, pack(&format!("{huge}{READ}")))
        .await
        .assert_problem(413, "payload-too-large");
    // Other routes keep 64 KiB.
    let big = json!({"id": "human:x", "attributes": {"pad": "x".repeat(70 * 1024)}});
    h.post("/v1/identities", big)
        .await
        .assert_problem(413, "payload-too-large");
}
