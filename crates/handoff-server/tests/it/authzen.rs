//! The AuthZEN Authorization API 1.0 over HTTP: the certification fixture's
//! decisions and searches, the official Todo and API-gateway interop
//! decision files, batches, pagination, metadata, every error case, who may
//! call, and the decision log.

use crate::harness::{Harness, Reply};
use axum::body::Body;
use axum::http::{Method, Request, header};
use handoff_policy::PackFiles;
use handoff_server::{AppState, app};
use serde_json::{Value, json};
use std::path::Path;
use tower::ServiceExt;

const CERTIFICATION: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../examples/authzen-certification"
);
const TODO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/authzen-todo");
const INTEROP: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/authzen"
);

/// Pushes the example pack in `dir`, expecting a new version.
async fn push(h: &Harness, dir: &str) -> u64 {
    let pack = PackFiles::load_dir(Path::new(dir)).unwrap();
    let r = h
        .call(
            Method::PUT,
            "/v1/policies",
            Some(&h.token),
            Some(json!({"files": pack.files})),
        )
        .await;
    r.expect(201)["version"].as_u64().unwrap()
}

/// Reads an interop file, failing loudly when the shared data is missing.
fn interop(name: &str) -> Value {
    let path = format!("{INTEROP}/{name}");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("the AuthZEN interop file {path} is missing: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A POST of `body` to an AuthZEN path with `token`.
async fn ask(h: &Harness, path: &str, token: Option<&str>, body: Value) -> Reply {
    h.call(Method::POST, path, token, Some(body)).await
}

/// A POST with a raw body and content type.
async fn raw(h: &Harness, path: &str, content_type: Option<&str>, body: &str) -> Reply {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", h.token));
    if let Some(ct) = content_type {
        req = req.header(header::CONTENT_TYPE, ct);
    }
    h.send(req.body(Body::from(body.to_owned())).unwrap()).await
}

fn certification_cases() -> Vec<Value> {
    let text = std::fs::read_to_string(format!("{CERTIFICATION}/tests.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn certification_decisions_come_out_right_singly_and_in_a_batch() {
    let h = Harness::new().await;
    push(&h, CERTIFICATION).await;
    let (_, pdp) = h.admin_token("pdp").await;
    let cases = certification_cases();
    assert!(cases.len() >= 8);
    for case in &cases {
        let r = ask(
            &h,
            "/access/v1/evaluation",
            Some(&pdp),
            case["request"].clone(),
        )
        .await;
        assert_eq!(
            r.expect(200),
            &json!({"decision": case["expected"]}),
            "{}",
            case["name"]
        );
    }
    let items: Vec<Value> = cases.iter().map(|c| c["request"].clone()).collect();
    let r = ask(
        &h,
        "/access/v1/evaluations",
        Some(&pdp),
        json!({"evaluations": items}),
    )
    .await;
    let got: Vec<Value> = r.expect(200)["evaluations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["decision"].clone())
        .collect();
    let want: Vec<Value> = cases.iter().map(|c| c["expected"].clone()).collect();
    assert_eq!(got, want);
}

fn ids(r: &Reply) -> Vec<String> {
    r.expect(200)["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().or(e["name"].as_str()).unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn certification_searches_find_what_the_issue_lists() {
    let h = Harness::new().await;
    push(&h, CERTIFICATION).await;
    let subjects = ask(
        &h,
        "/access/v1/search/subject",
        Some(&h.token),
        json!({"subject": {"type": "user"}, "action": {"name": "read"},
               "resource": {"type": "record", "id": "record-1"}}),
    )
    .await;
    let found = ids(&subjects);
    assert!(
        found.contains(&"alice".into()) && found.contains(&"bob".into()),
        "{found:?}"
    );
    assert_eq!(subjects.json["results"][0]["type"], "user");
    assert_eq!(subjects.json["page"]["next_token"], "");

    let resources = ask(
        &h,
        "/access/v1/search/resource",
        Some(&h.token),
        json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
               "resource": {"type": "record"}}),
    )
    .await;
    assert!(ids(&resources).contains(&"record-1".into()));
    assert_eq!(resources.json["results"][0]["type"], "record");

    let actions = ask(
        &h,
        "/access/v1/search/action",
        Some(&h.token),
        json!({"subject": {"type": "user", "id": "alice"},
               "resource": {"type": "record", "id": "record-1"}}),
    )
    .await;
    let found = ids(&actions);
    assert!(
        found.contains(&"read".into()) && found.contains(&"write".into()),
        "{found:?}"
    );
    assert!(actions.json["results"][0].get("type").is_none());

    let admin_bob = json!({"type": "user", "id": "bob", "properties": {"role": "admin"}});
    let actions = ask(
        &h,
        "/access/v1/search/action",
        Some(&h.token),
        json!({"subject": admin_bob, "resource": {"type": "record", "id": "record-2"}}),
    )
    .await;
    assert!(ids(&actions).contains(&"write".into()));
    let resources = ask(
        &h,
        "/access/v1/search/resource",
        Some(&h.token),
        json!({"subject": admin_bob, "action": {"name": "write"}, "resource": {"type": "record"}}),
    )
    .await;
    assert!(ids(&resources).contains(&"record-2".into()));
    // Every search is in the audit log: what was asked and how many matched.
    let log = h.engine.audit_tail(100).await.unwrap();
    let searches: Vec<_> = log
        .iter()
        .filter(|r| r.kind.starts_with("access.search."))
        .collect();
    assert!(searches.iter().any(|r| r.kind == "access.search.subject"));
    assert!(searches.iter().any(|r| r.kind == "access.search.action"));
    assert!(searches.iter().any(|r| r.kind == "access.search.resource"));
    let last = searches.last().unwrap().details_json();
    assert_eq!(last["resource"]["type"], "record");
    assert!(last["found"].as_u64().unwrap() >= 1, "{last}");
    assert!(
        !searches.iter().any(|r| r.details.contains("admin")),
        "properties are never logged"
    );
}

#[tokio::test]
async fn search_pages_walk_the_results_and_tokens_die_with_their_version() {
    let h = Harness::new().await;
    push(&h, CERTIFICATION).await;
    let search = |page: Value| {
        json!({"subject": {"type": "user"}, "action": {"name": "read"},
               "resource": {"type": "record", "id": "record-1"}, "page": page})
    };
    let all = ids(&ask(
        &h,
        "/access/v1/search/subject",
        Some(&h.token),
        search(json!(null)),
    )
    .await);
    assert!(all.len() >= 2);
    let mut walked = Vec::new();
    let mut token = String::new();
    loop {
        let r = ask(
            &h,
            "/access/v1/search/subject",
            Some(&h.token),
            search(json!({"token": token, "limit": 1})),
        )
        .await;
        walked.extend(ids(&r));
        assert_eq!(r.json["page"]["count"], 1);
        assert_eq!(r.json["page"]["total"], all.len());
        token = r.json["page"]["next_token"].as_str().unwrap().to_owned();
        if token.is_empty() {
            break;
        }
    }
    assert_eq!(walked, all);

    let first = ask(
        &h,
        "/access/v1/search/subject",
        Some(&h.token),
        search(json!({"limit": 1})),
    )
    .await;
    let stale = first.json["page"]["next_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!stale.is_empty());
    push(&h, TODO).await;
    let r = ask(
        &h,
        "/access/v1/search/subject",
        Some(&h.token),
        search(json!({"token": stale})),
    )
    .await;
    r.assert_problem(400, "invalid-request");
    assert!(
        r.json["detail"]
            .as_str()
            .unwrap()
            .contains("another policy version")
    );
    for page in [
        json!({"token": "nonsense"}),
        json!({"limit": 0}),
        json!({"limit": 1001}),
        json!("x"),
    ] {
        ask(
            &h,
            "/access/v1/search/subject",
            Some(&h.token),
            search(page),
        )
        .await
        .assert_problem(400, "invalid-request");
    }
}

/// Sends every case of an interop file's `evaluation` and `evaluations`
/// lists; returns how many decisions were checked.
async fn run_interop(h: &Harness, token: &str, file: &str) -> usize {
    let data = interop(file);
    let mut checked = 0;
    for case in data["evaluation"].as_array().unwrap() {
        let r = ask(
            h,
            "/access/v1/evaluation",
            Some(token),
            case["request"].clone(),
        )
        .await;
        assert_eq!(
            r.expect(200)["decision"],
            case["expected"],
            "{file}: {}",
            case["request"]
        );
        checked += 1;
    }
    for case in data["evaluations"].as_array().into_iter().flatten() {
        let r = ask(
            h,
            "/access/v1/evaluations",
            Some(token),
            case["request"].clone(),
        )
        .await;
        assert_eq!(
            r.expect(200)["evaluations"],
            case["expected"],
            "{file}: {}",
            case["request"]
        );
        checked += case["expected"].as_array().unwrap().len();
    }
    checked
}

#[tokio::test]
async fn todo_and_gateway_interop_decision_files_pass() {
    let h = Harness::new().await;
    push(&h, TODO).await;
    let (_, pdp) = h.admin_token("pdp").await;
    let one = run_interop(
        &h,
        &pdp,
        "authzen-todo-backend-decisions-authorization-api-1_0-01.json",
    )
    .await;
    let two = run_interop(
        &h,
        &pdp,
        "authzen-todo-backend-decisions-authorization-api-1_0-02.json",
    )
    .await;
    let gateway = run_interop(&h, &pdp, "authzen-api-gateways-decisions.json").await;
    assert_eq!(one, 40);
    assert_eq!(two, 40 + 6);
    assert_eq!(gateway, 25);
}

#[tokio::test]
async fn batches_merge_defaults_short_circuit_and_answer_bad_items_with_deny() {
    let h = Harness::new().await;
    push(&h, CERTIFICATION).await;
    let alice = json!({"type": "user", "id": "alice"});
    let r1 = json!({"resource": {"type": "record", "id": "record-1"}});
    let body = |semantic: &str, actions: [&str; 3]| {
        json!({
            "subject": alice, "resource": {"type": "record", "id": "record-1"},
            "options": {"evaluations_semantic": semantic, "unknown": 1},
            "evaluations": actions.iter().map(|a| json!({"action": {"name": a}})).collect::<Vec<_>>()
        })
    };
    let decisions = |r: &Reply| -> Vec<bool> {
        r.expect(200)["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_bool().unwrap())
            .collect()
    };
    let all = ask(
        &h,
        "/access/v1/evaluations",
        Some(&h.token),
        body("execute_all", ["read", "delete", "write"]),
    )
    .await;
    assert_eq!(decisions(&all), [true, false, true]);
    assert!(
        all.json["evaluations"][1].get("context").is_none(),
        "no internals by default"
    );
    let deny = ask(
        &h,
        "/access/v1/evaluations",
        Some(&h.token),
        body("deny_on_first_deny", ["read", "delete", "write"]),
    )
    .await;
    assert_eq!(decisions(&deny), [true, false]);
    let permit = ask(
        &h,
        "/access/v1/evaluations",
        Some(&h.token),
        body("permit_on_first_permit", ["delete", "read", "write"]),
    )
    .await;
    assert_eq!(decisions(&permit), [false, true]);

    // Items override defaults; a bad item is a deny with its error, not a 400.
    let mixed = ask(
        &h,
        "/access/v1/evaluations",
        Some(&h.token),
        json!({
            "subject": alice, "action": {"name": "read"},
            "evaluations": [
                r1,
                {"subject": {"type": "user"}, "resource": {"type": "record", "id": "record-1"}},
                "not an object",
                {"resource": {"type": "record", "id": "record-2"}, "action": {"name": "write"}}
            ]
        }),
    )
    .await;
    assert_eq!(decisions(&mixed), [true, false, false, false]);
    let error = mixed.json["evaluations"][1]["context"]["errors"][0]
        .as_str()
        .unwrap();
    assert!(
        error.contains("evaluation 1") && error.contains("`id`"),
        "{error}"
    );
    assert!(mixed.json["evaluations"][2]["context"]["errors"][0].is_string());

    // Without items the request is a single evaluation, answered as one.
    let single = ask(
        &h,
        "/access/v1/evaluations",
        Some(&h.token),
        json!({"subject": alice, "action": {"name": "read"}, "resource": r1["resource"], "evaluations": []}),
    )
    .await;
    assert_eq!(single.expect(200), &json!({"decision": true}));
    ask(
        &h,
        "/access/v1/evaluations",
        Some(&h.token),
        json!({"action": {"name": "read"}}),
    )
    .await
    .assert_problem(400, "invalid-request");
    for bad in [
        json!({"evaluations": {}}),
        json!({"evaluations": [{}], "options": {"evaluations_semantic": "sometimes"}}),
        json!({"evaluations": [{}], "options": "all"}),
    ] {
        ask(&h, "/access/v1/evaluations", Some(&h.token), bad)
            .await
            .assert_problem(400, "invalid-request");
    }
}

#[tokio::test]
async fn explain_header_adds_reasons_and_errors() {
    let h = Harness::new().await;
    push(&h, CERTIFICATION).await;
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                      "resource": {"type": "record", "id": "record-1"}});
    let send = |value: &'static str| {
        let req = Request::builder()
            .method(Method::POST)
            .uri("/access/v1/evaluation")
            .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-handoff-explain", value)
            .body(Body::from(body.to_string()))
            .unwrap();
        h.send(req)
    };
    let r = send("true").await;
    assert_eq!(r.expect(200)["decision"], true);
    assert_eq!(r.json["context"]["reasons"], json!(["users-read-records"]));
    assert_eq!(r.json["context"]["errors"], json!([]));
    let r = send("false").await;
    assert!(r.expect(200).get("context").is_none());
    send("yes").await.assert_problem(400, "invalid-request");
}

#[tokio::test]
async fn unreadable_requests_are_400_and_unknown_fields_are_ignored() {
    let h = Harness::new().await;
    push(&h, CERTIFICATION).await;
    let good = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                      "resource": {"type": "record", "id": "record-1"}});
    let mut extra = good.clone();
    extra["unknown"] = json!({"anything": [1, 2]});
    extra["subject"]["extra"] = json!(true);
    let r = ask(&h, "/access/v1/evaluation", Some(&h.token), extra).await;
    assert_eq!(r.expect(200)["decision"], true);

    let path = "/access/v1/evaluation";
    for member in ["subject", "action", "resource"] {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove(member);
        let r = ask(&h, path, Some(&h.token), body).await;
        r.assert_problem(400, "invalid-request");
        assert!(
            r.json["detail"].as_str().unwrap().contains(member),
            "{}",
            r.text
        );
    }
    for (keys, value) in [
        (&["subject"][..], json!("alice")),
        (&["subject", "id"], json!(7)),
        (&["action", "name"], json!(["read"])),
        (&["resource", "type"], json!(null)),
        (&["context"], json!([1])),
        (&["subject", "properties"], json!("x")),
    ] {
        let mut body = good.clone();
        let mut slot = &mut body;
        for key in keys {
            slot = &mut slot[*key];
        }
        *slot = value;
        let r = ask(&h, path, Some(&h.token), body).await;
        r.assert_problem(400, "invalid-request");
        assert!(!r.text.contains("struct"), "no type names: {}", r.text);
    }
    for search in [
        "/access/v1/search/subject",
        "/access/v1/search/resource",
        "/access/v1/search/action",
    ] {
        ask(&h, search, Some(&h.token), json!({"subject": {"id": "x"}}))
            .await
            .assert_problem(400, "invalid-request");
    }
    for p in [path, "/access/v1/evaluations", "/access/v1/search/action"] {
        raw(&h, p, Some("application/json"), "")
            .await
            .assert_problem(400, "invalid-request");
        raw(&h, p, Some("application/json"), "  ")
            .await
            .assert_problem(400, "invalid-request");
        raw(&h, p, Some("application/json"), "{\"subject\":")
            .await
            .assert_problem(400, "invalid-request");
        raw(&h, p, Some("application/json"), "[1]")
            .await
            .assert_problem(400, "invalid-request");
        raw(&h, p, Some("text/plain"), &good.to_string())
            .await
            .assert_problem(400, "invalid-request");
        raw(&h, p, None, &good.to_string())
            .await
            .assert_problem(400, "invalid-request");
    }
    let big = "x".repeat(70 * 1024);
    let r = raw(
        &h,
        path,
        Some("application/json"),
        &format!("{{\"pad\": \"{big}\"}}"),
    )
    .await;
    r.assert_problem(413, "payload-too-large");

    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {}", h.token))
        .header(header::CONTENT_TYPE, "application/json")
        .header("x-request-id", "authzen-42")
        .body(Body::from(good.to_string()))
        .unwrap();
    let r = h.send(req).await;
    assert_eq!(r.headers["x-request-id"], "authzen-42");
}

#[tokio::test]
async fn callers_need_a_pdp_or_admin_token_or_a_credential_unless_the_pdp_is_open() {
    let h = Harness::new().await;
    push(&h, CERTIFICATION).await;
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                      "resource": {"type": "record", "id": "record-1"}});
    let path = "/access/v1/evaluation";
    let r = ask(&h, path, None, body.clone()).await;
    r.assert_problem(401, "unauthenticated");
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer");
    ask(&h, path, Some("hfa_nonsense"), body.clone())
        .await
        .assert_problem(401, "unauthenticated");
    let (_, auditor) = h.admin_token("auditor").await;
    ask(&h, path, Some(&auditor), body.clone())
        .await
        .assert_problem(403, "forbidden");
    let (_, pdp) = h.admin_token("pdp").await;
    assert_eq!(
        ask(&h, path, Some(&pdp), body.clone()).await.expect(200)["decision"],
        true
    );
    h.human("carol").await;
    h.owned("agent:gate", "carol").await;
    let (_, credential) = h.issue("agent:gate", json!({})).await;
    assert_eq!(
        ask(&h, path, Some(&credential), body.clone())
            .await
            .expect(200)["decision"],
        true
    );
    // A pdp token has no business on the admin API.
    h.call(Method::GET, "/v1/identities", Some(&pdp), None)
        .await
        .assert_problem(403, "forbidden");

    let open = app(AppState::new(h.engine.clone()).with_pdp_open(true));
    let send = |token: Option<&str>| {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(t) = token {
            req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
        }
        open.clone()
            .oneshot(req.body(Body::from(body.to_string())).unwrap())
    };
    assert_eq!(send(None).await.unwrap().status(), 200);
    assert_eq!(send(Some("hfa_nonsense")).await.unwrap().status(), 401);
    assert_eq!(send(Some(&auditor)).await.unwrap().status(), 403);
    let last = h.engine.audit_tail(1).await.unwrap();
    assert_eq!(last[0].actor, "anonymous");
}

#[tokio::test]
async fn decisions_are_in_the_audit_log_and_the_chain_verifies() {
    let h = Harness::new().await;
    push(&h, CERTIFICATION).await;
    let (pdp_id, pdp) = h.admin_token("pdp").await;
    let body = json!({"subject": {"type": "user", "id": "bob"}, "action": {"name": "write"},
                      "resource": {"type": "record", "id": "record-1"},
                      "context": {"secret": "not logged"}});
    assert_eq!(
        ask(&h, "/access/v1/evaluation", Some(&pdp), body)
            .await
            .expect(200)["decision"],
        false
    );
    let records = h.get("/v1/audit?tail=1").await;
    let record = &records.expect(200)["items"][0];
    assert_eq!(record["kind"], "access.evaluate");
    assert_eq!(record["actor"], format!("token:{pdp_id}"));
    assert_eq!(record["outcome"], "deny");
    assert_eq!(record["target"], "record:record-1");
    assert_eq!(record["details"]["subject"]["id"], "bob");
    assert!(!records.text.contains("not logged"));
    assert_eq!(h.get("/v1/audit/verify").await.expect(200)["ok"], true);
}

#[tokio::test]
async fn metadata_lists_absolute_endpoints() {
    let h = Harness::new().await;
    let req = Request::builder()
        .uri("/.well-known/authzen-configuration")
        .header(header::HOST, "pdp.example:8443")
        .header("x-forwarded-proto", "https")
        .body(Body::empty())
        .unwrap();
    let r = h.send(req).await;
    let v = r.expect(200);
    assert_eq!(v["policy_decision_point"], "https://pdp.example:8443");
    assert_eq!(
        v["access_evaluation_endpoint"],
        "https://pdp.example:8443/access/v1/evaluation"
    );
    assert_eq!(
        v["access_evaluations_endpoint"],
        "https://pdp.example:8443/access/v1/evaluations"
    );
    for kind in ["subject", "resource", "action"] {
        assert_eq!(
            v[format!("search_{kind}_endpoint")],
            format!("https://pdp.example:8443/access/v1/search/{kind}")
        );
    }
    let req = Request::builder()
        .uri("/.well-known/authzen-configuration")
        .header(header::HOST, "bad host/")
        .body(Body::empty())
        .unwrap();
    h.send(req).await.assert_problem(400, "invalid-request");

    let configured =
        app(AppState::new(h.engine.clone()).with_public_url(Some("https://pdp.example/".into())));
    let req = Request::builder()
        .uri("/.well-known/authzen-configuration")
        .body(Body::empty())
        .unwrap();
    let res = configured.oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        v["search_action_endpoint"],
        "https://pdp.example/access/v1/search/action"
    );
    // A server that terminates TLS itself advertises https when the request
    // does not say otherwise.
    let tls = app(AppState::new(h.engine.clone()).with_tls(true));
    let req = Request::builder()
        .uri("/.well-known/authzen-configuration")
        .header(header::HOST, "pdp.example:8443")
        .body(Body::empty())
        .unwrap();
    let res = tls.oneshot(req).await.unwrap();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["policy_decision_point"], "https://pdp.example:8443");
}

#[tokio::test]
async fn without_an_active_pack_everything_is_denied_and_nothing_found() {
    let h = Harness::new().await;
    let body = json!({"subject": {"type": "user", "id": "alice"}, "action": {"name": "read"},
                      "resource": {"type": "record", "id": "record-1"}});
    let r = ask(&h, "/access/v1/evaluation", Some(&h.token), body).await;
    assert_eq!(r.expect(200), &json!({"decision": false}));
    let r = ask(
        &h,
        "/access/v1/search/action",
        Some(&h.token),
        json!({"subject": {"type": "user", "id": "alice"}, "resource": {"type": "record", "id": "record-1"}}),
    )
    .await;
    assert_eq!(
        r.expect(200),
        &json!({"results": [], "page": {"next_token": "", "count": 0, "total": 0}})
    );
}
