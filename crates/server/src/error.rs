//! The error shapes of this listener, one error type and one set of
//! extractors per wire shape, so a handler returns `Result<_, ApiError>` or
//! `Result<_, V1Error>` and every rejection axum makes itself leaves in the
//! same shape:
//!
//! - IronClaw (contract §0): `{"ok":false,"data":null,"error":{code,message}}`
//!   — [`ApiError`], [`ApiJson`], [`ApiQuery`]; successes through [`ok`].
//! - Openclawssy, every path under `/v1/` and `/api/admin/`:
//!   `{"error":{"code","message"}}` — [`V1Error`], [`V1Json`], [`V1Query`].
//!
//! The milestone ingest keeps the milestone contract's own `{ok,status,…}`
//! replies in `milestones`. [`not_found`] and [`envelope_errors`] wrap what
//! the router and tower produce.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use garrison_contracts::openclawssy::ErrorBody as V1ErrorBody;
use garrison_ledger::LedgerError;
use garrison_orchestration::OrchestrationError;
use garrison_runtime::OpenclawssyError;
use garrison_scheduler::SchedulerError;
use serde::Serialize;
use serde::de::DeserializeOwned;

// ---- The IronClaw shape.

/// A success envelope: `{"ok":true,"data":…,"error":null}` with `status`.
pub fn ok<T: Serialize>(status: StatusCode, data: T) -> Response {
    // Straight to bytes: a job or a run is not built as a `Value` first.
    let envelope = Success {
        ok: true,
        data,
        error: Null,
    };
    match serde_json::to_vec(&envelope) {
        Ok(body) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::internal(format!("cannot serialise response: {e}")).into_response(),
    }
}

/// JSON `null`: the `error` of a success and the `data` of a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Null;

impl Serialize for Null {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_unit()
    }
}

impl utoipa::PartialSchema for Null {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Null)
            .into()
    }
}

impl utoipa::ToSchema for Null {}

/// A successful IronClaw reply: `{"ok":true,"data":…,"error":null}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Success<T> {
    /// Always `true`.
    pub ok: bool,
    pub data: T,
    pub error: Null,
}

/// A failed IronClaw reply: `{"ok":false,"data":null,"error":{code,message}}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"ok": false, "data": null, "error": {"code": "NOT_FOUND", "message": "no run `x`"}}))]
pub struct Failure {
    /// Always `false`.
    pub ok: bool,
    pub data: Null,
    pub error: ErrorBody,
}

/// `error` of a failed IronClaw reply.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// An operator-workflow code (`BAD_REQUEST`, `UNAUTHORIZED`, `NOT_FOUND`,
    /// `SCHEMA_INVALID`, `CONCURRENCY_CONFLICT`, `INVALID_TRANSITION`,
    /// `LEDGER_UNAVAILABLE`, `SERVICE_UNAVAILABLE`, `INTERNAL`, …).
    pub code: String,
    pub message: String,
}

/// An error as the IronClaw surface reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    pub fn schema_invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "SCHEMA_INVALID", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "SERVICE_UNAVAILABLE",
            message,
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", message)
    }

    /// The envelope this error is sent as.
    pub fn envelope(&self) -> Failure {
        Failure {
            ok: false,
            data: Null,
            error: ErrorBody {
                code: self.code.to_string(),
                message: self.message.clone(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error_reply(self.status, self.envelope())
    }
}

/// An error body of either shape with its status; a 401 also names the
/// scheme it wants.
fn error_reply(status: StatusCode, body: impl Serialize) -> Response {
    let mut resp = (status, axum::Json(body)).into_response();
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut()
            .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    }
    resp
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        let code = e.code();
        let status = match code {
            "CONCURRENCY_CONFLICT" | "INVALID_TRANSITION" | "LOCK_CONFLICT" => StatusCode::CONFLICT,
            "SCHEMA_INVALID" => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tracing::error!(error = %e, "ledger failure");
        }
        ApiError::new(status, code, e.to_string())
    }
}

impl From<OrchestrationError> for ApiError {
    fn from(e: OrchestrationError) -> Self {
        if let OrchestrationError::Ledger(le) = e {
            return le.into();
        }
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(error = %e, "orchestration failure");
        }
        ApiError::new(status, e.code(), e.to_string())
    }
}

/// `axum::Json` whose rejections use the envelope: syntax → 400 `BAD_REQUEST`,
/// well-formed JSON of the wrong shape → 422 `SCHEMA_INVALID`, wrong content
/// type → 415, body over the limit → 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => ApiError::schema_invalid(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(e.body_text()),
        JsonRejection::MissingJsonContentType(e) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            e.body_text(),
        ),
        other => from_status(other.status(), other.body_text()),
    }
}

/// `axum::extract::Query` with a 400 `BAD_REQUEST` envelope on bad parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(r @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                Err(ApiError::bad_request(r.body_text()))
            }
            Err(r) => Err(from_status(r.status(), r.body_text())),
        }
    }
}

/// The envelope code for a bare HTTP status.
fn code_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "BAD_REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT_FOUND",
        405 => "METHOD_NOT_ALLOWED",
        408 => "REQUEST_TIMEOUT",
        413 => "PAYLOAD_TOO_LARGE",
        415 => "UNSUPPORTED_MEDIA_TYPE",
        422 => "SCHEMA_INVALID",
        503 => "LEDGER_UNAVAILABLE",
        s if s >= 500 => "INTERNAL",
        _ => "BAD_REQUEST",
    }
}

fn from_status(status: StatusCode, message: String) -> ApiError {
    ApiError::new(status, code_for(status), message)
}

/// Router fallback: unknown routes answer 404 in the envelope (in the
/// Openclawssy shape under its paths).
pub async fn not_found(req: Request) -> Response {
    let message = format!("no route for {} {}", req.method(), req.uri().path());
    if is_openclawssy_path(req.uri().path()) {
        V1Error::not_found(message).into_response()
    } else {
        ApiError::not_found(message).into_response()
    }
}

/// Error responses produced outside our handlers (axum's 405, tower-http's
/// 413 for an oversized `Content-Length`, …) come with plain-text bodies;
/// rewrap them so every error on this listener has the envelope shape.
pub async fn envelope_errors(req: Request, next: Next) -> Response {
    let openclawssy = is_openclawssy_path(req.uri().path());
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        // JSON is already an envelope; HTML is a dashboard page.
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"));
    if is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    // These bodies are short canned texts; cap what we read anyway.
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status
            .canonical_reason()
            .unwrap_or("request failed")
            .to_string(),
    };
    let mut out = if openclawssy {
        V1Error::from_status(status, text).into_response()
    } else {
        from_status(status, text).into_response()
    };
    // Keep headers such as `Allow` on a 405.
    for (name, value) in parts.headers.iter() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

// ---- The Openclawssy shape.

/// Whether `path` belongs to the Openclawssy surface (`/v1/…`,
/// `/api/admin/…`), whose errors use its own shape.
pub fn is_openclawssy_path(path: &str) -> bool {
    ["/v1", "/api/admin"]
        .iter()
        .any(|p| path == *p || path.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// An error as the Openclawssy surface reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct V1Error {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl V1Error {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> V1Error {
        V1Error {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> V1Error {
        V1Error::new(StatusCode::BAD_REQUEST, "invalid.request", message)
    }

    pub fn not_found(message: impl Into<String>) -> V1Error {
        V1Error::new(StatusCode::NOT_FOUND, "not.found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> V1Error {
        V1Error::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// The shape's code for a bare HTTP status (errors axum or tower made).
    pub fn from_status(status: StatusCode, message: impl Into<String>) -> V1Error {
        let code = match status.as_u16() {
            401 => "unauthorized",
            404 => "not.found",
            503 => "unavailable",
            s if s >= 500 => "internal.error",
            _ => "invalid.request",
        };
        V1Error::new(status, code, message)
    }
}

impl IntoResponse for V1Error {
    fn into_response(self) -> Response {
        error_reply(self.status, V1ErrorBody::new(self.code, self.message))
    }
}

impl From<OpenclawssyError> for V1Error {
    fn from(e: OpenclawssyError) -> V1Error {
        let status = match &e {
            OpenclawssyError::Invalid(_) => StatusCode::BAD_REQUEST,
            OpenclawssyError::NotFound(_) => StatusCode::NOT_FOUND,
            OpenclawssyError::Internal(_) => {
                tracing::error!(error = %e, "openclawssy service failure");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            OpenclawssyError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        V1Error::new(status, e.code(), e.to_string())
    }
}

/// A JSON body whose rejections use the Openclawssy shape: not JSON, not an
/// object, or of the wrong shape → 400 `invalid.request`; too large → 413.
#[derive(Debug, Clone, Copy, Default)]
pub struct V1Json<T>(pub T);

impl<T, S> FromRequest<S> for V1Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = V1Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_object(req, state).await?;
        serde_json::from_value(bytes)
            .map(V1Json)
            .map_err(|e| V1Error::invalid(field_message(&e.to_string())))
    }
}

/// The body as a JSON object.
pub(crate) async fn json_object<S: Send + Sync>(
    req: Request,
    state: &S,
) -> Result<serde_json::Value, V1Error> {
    let bytes = Bytes::from_request(req, state)
        .await
        .map_err(|r| V1Error::from_status(r.status(), r.body_text()))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| V1Error::invalid(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(V1Error::invalid("the body must be a JSON object"));
    }
    Ok(value)
}

/// serde's `missing field `x`` as the contract words it: `x is required`.
fn field_message(serde_msg: &str) -> String {
    serde_msg
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
        .map(|(field, _)| format!("{field} is required"))
        .unwrap_or_else(|| serde_msg.to_string())
}

/// Query parameters whose rejections use the Openclawssy shape.
#[derive(Debug, Clone, Copy, Default)]
pub struct V1Query<T>(pub T);

impl<T, S> FromRequestParts<S> for V1Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = V1Error;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| V1Query(q.0))
            .map_err(|r| V1Error::invalid(r.body_text()))
    }
}

impl From<SchedulerError> for V1Error {
    fn from(e: SchedulerError) -> V1Error {
        let (status, code) = match &e {
            SchedulerError::Invalid(_) => (StatusCode::BAD_REQUEST, "invalid.request"),
            SchedulerError::NotFound(_) => (StatusCode::NOT_FOUND, "not.found"),
            SchedulerError::Exists(_) | SchedulerError::Contended(_) => {
                (StatusCode::CONFLICT, "conflict")
            }
            SchedulerError::Ledger(err) => {
                tracing::error!(error = %err, "scheduler cannot use the ledger");
                (StatusCode::SERVICE_UNAVAILABLE, "internal.error")
            }
        };
        V1Error::new(status, code, e.to_string())
    }
}

// ---- Response sets shared by the OpenAPI annotations of many routes.

/// 503 of an orchestration route.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 503,
    description = "Orchestration is not running on this node, or the ledger is unavailable."
)]
pub struct OrchestrationUnavailable(pub Failure);

/// 503 of an IronClaw route that only reads or appends to the ledger.
#[derive(utoipa::IntoResponses)]
#[response(status = 503, description = "The ledger is unavailable.")]
pub struct LedgerUnavailable(pub Failure);

/// 503 of a scheduler jobs route.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 503,
    description = "The scheduler is not running on this node, or the ledger failed (`internal.error`)."
)]
pub struct SchedulerUnavailable(pub V1ErrorBody);

/// 503 of an Openclawssy admin route.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 503,
    description = "The admin service is not running on this node (`unavailable`)."
)]
pub struct AdminUnavailable(pub V1ErrorBody);

/// 503 of a dashboard page: an HTML error page.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 503,
    description = "The ledger could not be read: an error page.",
    content_type = "text/html"
)]
pub struct ErrorPage(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surface_paths() {
        for p in ["/v1", "/v1/runs", "/api/admin/status", "/api/admin"] {
            assert!(is_openclawssy_path(p), "{p}");
        }
        for p in ["/v10", "/runs", "/api/adminx", "/api/appleseed/events"] {
            assert!(!is_openclawssy_path(p), "{p}");
        }
        assert_eq!(
            field_message("missing field `agent_id` at line 1"),
            "agent_id is required"
        );
        assert_eq!(field_message("invalid type"), "invalid type");
    }
}
