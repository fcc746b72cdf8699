//! The OpenAPI document of every surface, built from the handlers'
//! `#[utoipa::path]` annotations and served at `GET /openapi.json` (behind
//! the bearer token, like every route but the public ones).
//!
//! [`coverage`] compares it with the route table the routers record, so a
//! route registered without being documented (or documented without being
//! registered) is caught by the tests.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use garrison_contracts::openclawssy::ErrorBody;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::error::is_openclawssy_path;
use crate::error::{ApiError, Failure};
use crate::route_table::{Route, Routes};
use crate::{
    admin, appleseed, dashboard, events_api, jobs, learning, ledger_routes, metrics, milestones,
    orchestration, v1,
};

/// The name of the bearer-token security scheme.
pub const BEARER: &str = "bearer";
/// The name of the dashboard session-cookie security scheme.
pub const SESSION: &str = "session";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Garrison",
        description = "Every HTTP route of one Garrison listener: the IronClaw services, the \
            milestone surface, Appleseed ingest, the learning service, the Openclawssy `/v1` and \
            admin APIs, Garrison's own additions (event log and stream, remote workers, scheduler \
            jobs, metrics, this document) and the dashboard. \
            Every route needs `Authorization: Bearer <token>` except those listed without a \
            security requirement: `GET /health`, `GET /healthz`, the HMAC-signed \
            `POST /internal/milestones/ingest`, the dashboard sign-in and its static assets.",
    ),
    paths(
        ledger_routes::append,
        ledger_routes::append_batch,
        ledger_routes::run,
        ledger_routes::order,
        ledger_routes::health,
        ledger_routes::healthz,
        events_api::list,
        events_api::stream,
        milestones::ingest,
        milestones::latest,
        milestones::dead_letter,
        milestones::deliveries,
        appleseed::events,
        appleseed::import,
        learning::tick,
        orchestration::chat,
        orchestration::create_run,
        orchestration::plan,
        orchestration::dispatch,
        orchestration::synthesize,
        orchestration::theater,
        orchestration::observer_patrol,
        orchestration::create_worktree,
        orchestration::prepare,
        orchestration::archive,
        orchestration::remove_worktree,
        orchestration::job,
        orchestration::integrate,
        orchestration::duty_patrol,
        orchestration::audit,
        orchestration::worker_claim,
        orchestration::worker_heartbeat,
        orchestration::worker_report,
        v1::create_run,
        v1::get_run,
        v1::chat_message,
        admin::status,
        admin::get_config,
        admin::set_config,
        admin::list_secrets,
        admin::put_secret,
        admin::list_sessions,
        admin::session_messages,
        jobs::list_jobs,
        jobs::create_job,
        jobs::get_job,
        jobs::replace_job,
        jobs::patch_job,
        jobs::delete_job,
        jobs::list_fires,
        metrics::scrape,
        openapi_json,
        dashboard::runs::list,
        dashboard::runs::dashboard_home,
        dashboard::runs::detail,
        dashboard::runs::events,
        dashboard::orders::detail,
        dashboard::feeds::patrols,
        dashboard::feeds::milestones,
        dashboard::appleseed::page,
        dashboard::scheduler::page,
        dashboard::session::login,
        dashboard::session::logout,
        dashboard::assets::asset,
        dashboard::unknown_page,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "ironclaw", description = "IronClaw services (ironclaw-service-contracts.md): \
            `{ok,data,error}` envelopes."),
        (name = "milestones", description = "Signed milestone ingest, feed and dead letter \
            (milestone-ingest.md): `{ok,status,…}` replies."),
        (name = "appleseed", description = "Appleseed event ingest and OpenClaw import \
            (appleseed-event-contract.md) over HTTP."),
        (name = "learning", description = "The learning service's routing-policy tick."),
        (name = "openclawssy", description = "Openclawssy surface (openclawssy-contracts.md): \
            `/v1` runs and chat, the admin API. Errors are `{error:{code,message}}`."),
        (name = "garrison", description = "Garrison's own additions, at paths no contract uses."),
        (name = "dashboard", description = "Operator pages (HTML); bearer token or session cookie."),
    )
)]
pub struct ApiDoc;

/// Declares the two ways in, and answers 401 for every secured operation in
/// its surface's shape (Openclawssy's under `/v1/` and `/api/admin/`,
/// IronClaw's elsewhere, a redirect for pages), so no handler has to repeat
/// it.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The API token: `GARRISON_API_TOKEN`, else `<data-dir>/api-token`.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            SESSION,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::dashboard::session::COOKIE,
                "Dashboard session cookie set by `POST /dashboard/login`; opens dashboard \
                 pages only.",
            ))),
        );
        let unauthorized_json = |code: &str, schema: std::borrow::Cow<'static, str>| {
            ResponseBuilder::new()
                .description(format!("Missing or wrong bearer token (`{code}`)."))
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(schema)))
                        .build(),
                )
                .build()
        };
        let unauthorized_ironclaw = unauthorized_json("UNAUTHORIZED", Failure::name());
        let unauthorized_openclawssy = unauthorized_json("unauthorized", ErrorBody::name());
        let unauthorized_page = ResponseBuilder::new()
            .description(
                "Neither the bearer token nor a session cookie: pages redirect (303) to the \
                 sign-in form at `/`; the event stream and sign-out answer 401.",
            )
            .build();
        for (path, item) in doc.paths.paths.iter_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                if op.security.as_ref().is_none_or(Vec::is_empty) {
                    continue;
                }
                let page = op
                    .tags
                    .as_ref()
                    .is_some_and(|t| t.iter().any(|t| t == "dashboard"));
                let response = if page {
                    unauthorized_page.clone()
                } else if is_openclawssy_path(path) {
                    unauthorized_openclawssy.clone()
                } else {
                    unauthorized_ironclaw.clone()
                };
                op.responses
                    .responses
                    .entry("401".to_string())
                    .or_insert_with(|| response.into());
            }
        }
    }
}

/// The document, with `info.version` the crate's version.
pub fn document() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_string();
    doc
}

/// Every (method, path) the document describes, paths in OpenAPI form.
pub fn documented(doc: &Document) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("OPTIONS", &item.options),
            ("HEAD", &item.head),
            ("PATCH", &item.patch),
            ("TRACE", &item.trace),
        ];
        for (method, op) in ops {
            if op.is_some() {
                out.insert((method.to_string(), path.clone()));
            }
        }
    }
    out
}

/// Where the route table and the document disagree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    /// Registered routes the document does not describe.
    pub undocumented: Vec<String>,
    /// Documented operations no router registers.
    pub unregistered: Vec<String>,
}

impl Coverage {
    pub fn is_complete(&self) -> bool {
        self.undocumented.is_empty() && self.unregistered.is_empty()
    }
}

impl std::fmt::Display for Coverage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.undocumented.is_empty() {
            writeln!(
                f,
                "registered but missing from the OpenAPI document (annotate the handler with \
                 #[utoipa::path] and list it in ApiDoc):"
            )?;
            for r in &self.undocumented {
                writeln!(f, "  {r}")?;
            }
        }
        if !self.unregistered.is_empty() {
            writeln!(f, "documented but not registered in any router:")?;
            for r in &self.unregistered {
                writeln!(f, "  {r}")?;
            }
        }
        Ok(())
    }
}

/// Compares the registered routes with the documented operations.
pub fn coverage(table: &BTreeSet<Route>, doc: &Document) -> Coverage {
    let registered: BTreeSet<(String, String)> = table
        .iter()
        .map(|r| (r.method.to_string(), r.openapi_path()))
        .collect();
    let documented = documented(doc);
    let show = |(m, p): &(String, String)| format!("{m} {p}");
    Coverage {
        undocumented: registered.difference(&documented).map(show).collect(),
        unregistered: documented.difference(&registered).map(show).collect(),
    }
}

pub fn routes() -> Routes {
    Routes::new().get("/openapi.json", openapi_json)
}

/// The document as served, rendered once.
fn rendered() -> Result<&'static str, ApiError> {
    static JSON: OnceLock<Result<String, String>> = OnceLock::new();
    JSON.get_or_init(|| document().to_json().map_err(|e| e.to_string()))
        .as_deref()
        .map_err(|e| ApiError::internal(format!("cannot render the OpenAPI document: {e}")))
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "garrison",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of every route.", content_type = "application/json", body = Object),
    ),
    security(("bearer" = [])),
)]
async fn openapi_json() -> Response {
    match rendered() {
        Ok(json) => (StatusCode::OK, [(CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn nothing() {}

    #[test]
    fn coverage_names_undocumented_and_unregistered_routes() {
        let doc = document();
        let full = crate::route_table();
        let c = coverage(&full, &doc);
        assert!(c.is_complete(), "{c}");

        // A route nobody documented is reported, by method and path.
        let extra = crate::routes(crate::DEFAULT_BODY_LIMIT)
            .get("/api/undocumented/{id}", nothing)
            .post("/health", nothing);
        let c = coverage(extra.table(), &doc);
        assert_eq!(
            c.undocumented,
            ["GET /api/undocumented/{id}", "POST /health"]
        );
        assert!(c.unregistered.is_empty());
        assert!(c.to_string().contains("GET /api/undocumented/{id}"));

        // A documented route missing from the routers is reported too.
        let partial: BTreeSet<Route> = full
            .iter()
            .copied()
            .filter(|r| r.path != "/learn/tick")
            .collect();
        let c = coverage(&partial, &doc);
        assert!(c.undocumented.is_empty());
        assert_eq!(c.unregistered, ["POST /learn/tick"]);
    }

    #[test]
    fn version_is_the_crate_version() {
        assert_eq!(document().info.version, env!("CARGO_PKG_VERSION"));
    }
}
