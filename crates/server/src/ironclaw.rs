//! The IronClaw response envelope `{ok, data, error}` (contract §0), the one
//! error type every IronClaw handler returns, and extractors whose rejections
//! come back in that envelope instead of axum's plain-text bodies.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use garrison_ledger::LedgerError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

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

    /// The envelope body, for callers that need it without a response.
    pub fn body(&self) -> Value {
        serde_json::to_value(self.envelope()).unwrap_or(Value::Null)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, axum::Json(self.envelope())).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
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
    if crate::v1::is_openclawssy_path(req.uri().path()) {
        crate::v1::V1Error::not_found(message).into_response()
    } else {
        ApiError::not_found(message).into_response()
    }
}

/// Error responses produced outside our handlers (axum's 405, tower-http's
/// 413 for an oversized `Content-Length`, …) come with plain-text bodies;
/// rewrap them so every error on this listener has the envelope shape.
pub async fn envelope_errors(req: Request, next: Next) -> Response {
    let openclawssy = crate::v1::is_openclawssy_path(req.uri().path());
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
        crate::v1::V1Error::from_status(status, text).into_response()
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
