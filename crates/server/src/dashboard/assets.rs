//! The dashboard's script and stylesheet, embedded in the binary (no build
//! step, nothing fetched from elsewhere).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const SCRIPT: &str = include_str!("../../assets/dashboard.js");
const STYLE: &str = include_str!("../../assets/dashboard.css");

/// `GET /dashboard/assets/{name}`.
#[utoipa::path(
    get,
    path = "/dashboard/assets/{name}",
    operation_id = "dashboard_asset",
    tag = "dashboard",
    summary = "The dashboard's script and stylesheet (public)",
    params(("name" = String, Path, description = "`dashboard.js` or `dashboard.css`.")),
    responses(
        (status = 200, description = "The asset (`text/javascript` or `text/css`).", content_type = "text/plain", body = String),
        (status = 404, description = "No such asset.", content_type = "text/html", body = String),
    ),
)]
pub async fn asset(Path(name): Path<String>) -> Response {
    let (body, kind) = match name.as_str() {
        "dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "dashboard.css" => (STYLE, "text/css; charset=utf-8"),
        _ => return super::html(StatusCode::NOT_FOUND, "<p>No such asset.</p>".into()),
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}
