//! The route table: every router module registers its routes through
//! [`Routes`], which records each (method, path) beside the axum router, so
//! the set of routes the server answers is known at runtime and can be
//! compared with the OpenAPI document (see [`crate::openapi::coverage`]).

use std::collections::BTreeSet;
use std::fmt;

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodFilter, on};

use crate::AppState;

/// One registered route: an upper-case HTTP method and an axum path template.
/// `GET` routes answer `HEAD` too; only `GET` is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
}

impl Route {
    /// The path as OpenAPI writes it. Axum's `{id}` already is; a catch-all
    /// `{*rest}` becomes `{rest}` (OpenAPI has no multi-segment parameter,
    /// the operation's description says the value may contain `/`).
    pub fn openapi_path(&self) -> String {
        self.path.replace("{*", "{")
    }
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// An axum router that remembers what it registers.
#[must_use]
pub struct Routes {
    router: Router<AppState>,
    table: BTreeSet<Route>,
}

impl Default for Routes {
    fn default() -> Self {
        Self::new()
    }
}

impl Routes {
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            table: BTreeSet::new(),
        }
    }

    /// `GET path` (and `HEAD`) answered by `handler`.
    pub fn get<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.on("GET", MethodFilter::GET, path, handler)
    }

    /// `POST path` answered by `handler`.
    pub fn post<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.on("POST", MethodFilter::POST, path, handler)
    }

    /// `PUT path` answered by `handler`.
    pub fn put<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.on("PUT", MethodFilter::PUT, path, handler)
    }

    /// `PATCH path` answered by `handler`.
    pub fn patch<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.on("PATCH", MethodFilter::PATCH, path, handler)
    }

    /// `DELETE path` answered by `handler`.
    pub fn delete<H, T>(self, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.on("DELETE", MethodFilter::DELETE, path, handler)
    }

    /// Axum merges method routers registered on the same path, so one path
    /// may carry several methods.
    fn on<H, T>(
        mut self,
        method: &'static str,
        filter: MethodFilter,
        path: &'static str,
        handler: H,
    ) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.router = self.router.route(path, on(filter, handler));
        self.table.insert(Route { method, path });
        self
    }

    /// Adds every route of `other`.
    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Applies `f` (layers, a fallback) to the router; the table is unchanged,
    /// so `f` must not add routes.
    pub fn map_router(mut self, f: impl FnOnce(Router<AppState>) -> Router<AppState>) -> Self {
        self.router = f(self.router);
        self
    }

    /// Every route registered so far.
    pub fn table(&self) -> &BTreeSet<Route> {
        &self.table
    }

    pub fn into_router(self) -> Router<AppState> {
        self.router
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn nothing() {}

    #[test]
    fn records_each_method_and_path_once() {
        let a = Routes::new()
            .get("/a/{id}", nothing)
            .post("/a/{id}", nothing);
        let b = Routes::new()
            .delete("/b", nothing)
            .get("/c/{*rest}", nothing);
        let all = a.merge(b).map_router(|r| r.fallback(nothing));
        let got: Vec<String> = all.table().iter().map(Route::to_string).collect();
        assert_eq!(
            got,
            ["DELETE /b", "GET /a/{id}", "GET /c/{*rest}", "POST /a/{id}"]
        );
        let rest = all.table().iter().find(|r| r.path == "/c/{*rest}");
        assert_eq!(rest.map(Route::openapi_path).as_deref(), Some("/c/{rest}"));
    }
}
