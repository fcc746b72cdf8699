//! The OpenAPI document against what the server really does: every
//! registered route is documented (and nothing else), every route docs/interface.md
//! names is there, and the public/secured split matches the auth middleware.

use std::collections::BTreeSet;

use axum::http::Method;
use garrison_server::openapi::{self, coverage, documented};
use garrison_server::{Route, auth, route_table};
use serde_json::Value;

use super::common::{self, Server, TOKEN, request};

/// The routes docs/interface.md's "HTTP routes" section names (all five contracts
/// plus the public probes), in OpenAPI path form.
const DESIGN_ROUTES: &[(&str, &str)] = &[
    // gateway
    ("POST", "/chat"),
    ("GET", "/runs/{id}"),
    ("GET", "/orders/{id}"),
    // CO
    ("POST", "/runs"),
    ("POST", "/runs/{id}/plan"),
    ("POST", "/runs/{id}/dispatch"),
    ("POST", "/runs/{id}/synthesize"),
    // ledger
    ("POST", "/events"),
    ("POST", "/events/batch"),
    ("GET", "/health"),
    // vault
    ("POST", "/theaters"),
    ("POST", "/worktrees"),
    ("POST", "/worktrees/{order_id}/prepare"),
    ("POST", "/worktrees/{order_id}/archive"),
    ("DELETE", "/worktrees/{order_id}"),
    // worker, observer, integration, duty officer, sentinel, learning
    ("POST", "/jobs"),
    ("POST", "/theaters/{id}/patrol"),
    ("POST", "/integrate"),
    ("POST", "/patrol"),
    ("POST", "/audit"),
    ("POST", "/learn/tick"),
    // milestones
    ("POST", "/internal/milestones/ingest"),
    ("GET", "/api/milestones/latest"),
    ("GET", "/api/milestones/dead-letter"),
    // Openclawssy (the document names the run parameter `run_id`)
    ("GET", "/healthz"),
    ("POST", "/v1/runs"),
    ("GET", "/v1/runs/{run_id}"),
    ("POST", "/v1/chat/messages"),
    ("GET", "/api/admin/status"),
    ("GET", "/api/admin/config"),
    ("POST", "/api/admin/config"),
    ("GET", "/api/admin/secrets"),
    ("POST", "/api/admin/secrets"),
    ("GET", "/api/admin/chat/sessions"),
    ("GET", "/api/admin/chat/sessions/{session_id}/messages"),
    // Garrison's own additions docs/interface.md lists: remote workers, event
    // streaming, Appleseed ingest, scheduler jobs, metrics.
    ("POST", "/api/workers/claim"),
    ("POST", "/api/workers/heartbeat"),
    ("POST", "/api/workers/report"),
    ("GET", "/api/events"),
    ("GET", "/api/events/stream"),
    ("POST", "/api/appleseed/events"),
    ("POST", "/api/appleseed/openclaw-import"),
    ("GET", "/api/admin/jobs"),
    ("POST", "/api/admin/jobs"),
    ("GET", "/api/admin/jobs/{job_id}"),
    ("PUT", "/api/admin/jobs/{job_id}"),
    ("PATCH", "/api/admin/jobs/{job_id}"),
    ("DELETE", "/api/admin/jobs/{job_id}"),
    ("GET", "/api/admin/jobs/{job_id}/fires"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
];

/// A concrete path for a template: every `{param}` (or `{*rest}`) becomes `x`.
fn concrete(template: &str) -> String {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push('x');
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The document as JSON, the way a client sees it.
fn doc_json() -> Value {
    serde_json::from_str(&openapi::document().to_json().unwrap()).unwrap()
}

/// Each documented operation with whether it carries a security requirement.
fn operations(doc: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let secured = op
                .get("security")
                .and_then(Value::as_array)
                .is_some_and(|reqs| {
                    reqs.iter()
                        .any(|r| r.as_object().is_some_and(|o| !o.is_empty()))
                });
            out.push((method.to_uppercase(), path.clone(), secured));
        }
    }
    out
}

#[test]
fn every_registered_route_is_documented_and_nothing_else() {
    let table = route_table();
    assert!(
        table.len() > 40,
        "the route table looks incomplete: {table:?}"
    );
    let c = coverage(&table, &openapi::document());
    assert!(c.is_complete(), "\n{c}");

    // The same comparison, done independently of `coverage`, on the JSON.
    let registered: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_string(), r.openapi_path()))
        .collect();
    let in_json: BTreeSet<(String, String)> = operations(&doc_json())
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let missing: Vec<_> = registered.difference(&in_json).collect();
    let extra: Vec<_> = in_json.difference(&registered).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "registered but undocumented: {missing:?}; documented but unregistered: {extra:?}"
    );
    assert_eq!(documented(&openapi::document()), in_json);
}

#[test]
fn an_undocumented_route_is_reported_by_name() {
    async fn nothing() {}
    let routes = garrison_server::routes(garrison_server::DEFAULT_BODY_LIMIT)
        .put("/runs/{id}", nothing)
        .get("/api/secret-extra", nothing);
    let c = coverage(routes.table(), &openapi::document());
    assert!(!c.is_complete());
    assert_eq!(c.undocumented, ["GET /api/secret-extra", "PUT /runs/{id}"]);
    let message = c.to_string();
    assert!(message.contains("PUT /runs/{id}"), "{message}");
    assert!(message.contains("GET /api/secret-extra"), "{message}");
}

#[test]
fn every_route_design_names_is_documented() {
    let ops: BTreeSet<(String, String)> = operations(&doc_json())
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let missing: Vec<_> = DESIGN_ROUTES
        .iter()
        .filter(|(m, p)| !ops.contains(&(m.to_string(), p.to_string())))
        .collect();
    assert!(missing.is_empty(), "missing from the document: {missing:?}");
}

#[test]
fn document_metadata() {
    let doc = doc_json();
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc["openapi"], "3.1.0");
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    // Operation ids are unique (clients generate method names from them).
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_default();
            assert!(
                ids.insert(id.to_string()),
                "duplicate operationId {id} ({method} {path})"
            );
        }
    }
    // Every secured JSON operation documents the 401 in its surface's shape.
    let run = &doc["paths"]["/runs/{id}"]["get"]["responses"];
    assert_eq!(
        run["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/Failure"
    );
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !(path.starts_with("/v1/") || path.starts_with("/api/admin/")) {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                if status.starts_with('2') {
                    continue;
                }
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/OpenclawssyError",
                    "{method} {path} {status} is not in the Openclawssy error shape"
                );
            }
            assert!(
                op["responses"].get("401").is_some(),
                "{method} {path} does not document its 401"
            );
        }
    }
    assert!(
        doc["paths"]["/health"]["get"]["responses"]
            .get("401")
            .is_none()
    );
}

#[test]
fn public_operations_are_exactly_the_ones_auth_lets_through() {
    let mut public = Vec::new();
    for (method, path, secured) in operations(&doc_json()) {
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let open = auth::is_public(&m, &concrete(&path));
        assert_eq!(
            open, !secured,
            "{method} {path}: the middleware says public={open}, the document says secured={secured}"
        );
        if open {
            public.push(format!("{method} {path}"));
        }
    }
    public.sort();
    assert_eq!(
        public,
        [
            "GET /dashboard/assets/{name}",
            "GET /health",
            "GET /healthz",
            "POST /dashboard/login",
            "POST /internal/milestones/ingest",
        ]
    );
}

/// Whether a response is the auth middleware turning the request away.
fn turned_away(route: &Route, r: &common::Resp) -> bool {
    let is_page = garrison_server::dashboard::is_dashboard_path(&concrete(route.path));
    if garrison_server::error::is_openclawssy_path(route.path) {
        return r.status == 401
            && r.header("www-authenticate") == Some("Bearer")
            && r.json()["error"]["code"] == "unauthorized";
    }
    if !is_page {
        return r.status == 401
            && r.header("www-authenticate") == Some("Bearer")
            && r.json()["error"]["code"] == "UNAUTHORIZED";
    }
    let body = String::from_utf8_lossy(&r.body);
    match r.status {
        // Pages redirect to the sign-in form…
        303 => r.header("location") == Some("/"),
        // …what a browser does not navigate to is refused…
        401 => body.contains("Sign in at"),
        // …and `/` (or `/dashboard`) shows the form itself.
        200 => body.contains("name=\"token\""),
        _ => false,
    }
}

#[tokio::test]
async fn secured_routes_answer_401_without_a_token_and_public_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    for route in route_table() {
        let path = concrete(route.path);
        let m = Method::from_bytes(route.method.as_bytes()).unwrap();
        let r = request(s.addr, route.method, &path, &[], Some(b""))
            .await
            .unwrap();
        if auth::is_public(&m, &path) {
            assert!(
                !turned_away(&route, &r),
                "{route} is public but was turned away: {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        } else {
            assert!(
                turned_away(&route, &r),
                "{route} needs credentials but answered {} {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    s.stop().await;
}

#[tokio::test]
async fn the_document_is_served_behind_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let r = s.get("/openapi.json").await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json"))
    );
    assert_eq!(r.json(), doc_json());
    request(s.addr, "GET", "/openapi.json", &[], None)
        .await
        .unwrap()
        .assert_error(401, "UNAUTHORIZED");
    let wrong = format!("Bearer {TOKEN}x");
    request(
        s.addr,
        "GET",
        "/openapi.json",
        &[("Authorization", &wrong)],
        None,
    )
    .await
    .unwrap()
    .assert_error(401, "UNAUTHORIZED");
    s.stop().await;
}

#[test]
fn openclawssy_bodies_and_statuses_are_described() {
    let doc = doc_json();
    let schemas = &doc["components"]["schemas"];
    // The Openclawssy error has its own schema beside IronClaw's envelope.
    let err = &schemas["OpenclawssyError"];
    assert_eq!(
        err["properties"]["error"]["$ref"],
        "#/components/schemas/OpenclawssyErrorDetail"
    );
    let detail = &schemas["OpenclawssyErrorDetail"]["required"];
    assert_eq!(detail, &serde_json::json!(["code", "message"]));
    assert!(schemas["Failure"]["properties"]["ok"].is_object());

    let paths = &doc["paths"];
    let status_ref = |path: &str, method: &str, status: &str| {
        paths[path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(str::to_string)
    };
    assert_eq!(
        status_ref("/v1/runs", "post", "202").as_deref(),
        Some("#/components/schemas/V1CreateRunResponse")
    );
    for status in ["200", "202"] {
        assert_eq!(
            status_ref("/v1/chat/messages", "post", status).as_deref(),
            Some("#/components/schemas/ChatMessageResponse"),
            "chat {status}"
        );
    }
    assert_eq!(
        status_ref("/api/admin/jobs", "post", "201").as_deref(),
        Some("#/components/schemas/JobView")
    );
    let body_ref = |path: &str, method: &str| {
        paths[path][method]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .map(str::to_string)
    };
    // Same-named bodies of the two surfaces keep their own schemas.
    assert_eq!(
        body_ref("/v1/runs", "post").as_deref(),
        Some("#/components/schemas/V1CreateRunRequest")
    );
    assert_eq!(
        body_ref("/runs", "post").as_deref(),
        Some("#/components/schemas/CreateRunRequest")
    );
    assert!(schemas["CreateRunRequest"]["properties"]["objective"].is_object());
    assert!(schemas["V1CreateRunRequest"]["properties"]["agent_id"].is_object());
    assert!(schemas["ErrorBody"]["properties"]["code"].is_object());
    assert_eq!(
        body_ref("/api/admin/config", "post").as_deref(),
        Some("#/components/schemas/AgentConfig")
    );
    assert_eq!(
        body_ref("/api/admin/jobs/{job_id}", "patch").as_deref(),
        Some("#/components/schemas/JobInput")
    );

    // The secret's value is write-only and never part of an answer.
    assert_eq!(
        body_ref("/api/admin/secrets", "post").as_deref(),
        Some("#/components/schemas/SecretInput")
    );
    let value = &schemas["SecretInput"]["properties"]["value"];
    assert_eq!(value["writeOnly"], true);
    assert!(
        value["description"]
            .as_str()
            .is_some_and(|d| d.contains("never returned")),
        "{value}"
    );
    for (path, item) in paths.as_object().unwrap() {
        if !path.starts_with("/api/admin/") {
            continue;
        }
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_ne!(
                    schema, "#/components/schemas/SecretInput",
                    "{method} {path} {status} answers with the secret input"
                );
            }
        }
    }

    // Query parameters of the admin lists.
    let names = |path: &str| -> Vec<String> {
        paths[path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        names("/api/admin/chat/sessions"),
        ["agent_id", "user_id", "room_id", "channel"]
    );
    assert_eq!(names("/api/admin/jobs/{job_id}/fires"), ["job_id", "limit"]);
}
