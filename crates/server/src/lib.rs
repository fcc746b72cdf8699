//! The HTTP surface: one axum router per contract surface, bearer auth, error envelopes.
//!
//! [`serve`] is the whole lifecycle of `garrison serve`: check the listen
//! address against the token policy, open the ledger, bind, report readiness,
//! serve until shutdown, drain in-flight requests, then close the ledger so
//! every acknowledged append is on disk.

pub mod admin;
pub mod appleseed;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod events_api;
pub mod jobs;
pub mod learning;
pub mod ledger_routes;
pub mod metrics;
pub mod milestones;
pub mod openapi;
pub mod orchestration;
pub mod route_table;
pub mod v1;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use std::collections::BTreeSet;

use axum::Router;
use axum::serve::ListenerExt;
use garrison_appleseed::learning::appleseed_feed::Feed;
use garrison_ledger::{Ledger, LedgerError};
use garrison_lifecycle::Services;
use garrison_milestones::OutboxService;
use garrison_orchestration::{Follower, Pool};
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

pub use auth::{ApiToken, TokenError, TokenSource};
pub use garrison_milestones::MilestoneSettings;
pub use garrison_milestones::{OutboxConfig, Target as MilestoneTarget};
pub use garrison_orchestration::{Orchestrator, Settings as OrchestrationSettings};
pub use garrison_runtime::{
    EnvProvider, MASTER_KEY_ENV, MasterKey, Openclawssy, Settings as OpenclawssySettings,
    publish_stored_secrets,
};
pub use garrison_scheduler::{RunLauncher, Scheduler};
pub use route_table::{Route, Routes};

/// Default request body limit: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// Default for [`ServeConfig::drain_timeout`].
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What every handler can reach. Extractors and middleware clone the state
/// for every request, so it is one `Arc` (one atomic increment) rather than
/// a struct of handles, a watch receiver and the token's string.
#[derive(Clone)]
pub struct AppState(Arc<AppStateInner>);

impl std::ops::Deref for AppState {
    type Target = AppStateInner;
    fn deref(&self) -> &AppStateInner {
        &self.0
    }
}

/// The fields behind [`AppState`].
#[derive(Clone)]
pub struct AppStateInner {
    pub ledger: Arc<dyn Ledger>,
    pub token: ApiToken,
    pub milestones: Arc<MilestoneSettings>,
    /// The data dir; Appleseed state lives in its `appleseed/`. `None`: the
    /// Appleseed routes answer 500.
    pub data_dir: Option<Arc<PathBuf>>,
    /// The orchestration services; `None` on a node that does not run them
    /// (their routes answer 503).
    pub orchestrator: Option<Arc<Orchestrator>>,
    /// The `/v1` run service and admin API; `None`: those routes answer 503.
    pub openclawssy: Option<Openclawssy>,
    /// Scheduler jobs; `None`: the jobs routes answer 503.
    pub scheduler: Option<Arc<Scheduler>>,
    /// Flips to `true` when shutdown starts, so endless responses (SSE) end
    /// and the graceful drain can finish. `None`: never shut down.
    shutdown: Option<watch::Receiver<bool>>,
}

impl AppState {
    /// State for a router that is never told to shut down (tests, embedding).
    pub fn new(ledger: Arc<dyn Ledger>, token: ApiToken) -> Self {
        AppState(Arc::new(AppStateInner {
            ledger,
            token,
            milestones: Arc::new(MilestoneSettings::default()),
            data_dir: None,
            orchestrator: None,
            openclawssy: None,
            scheduler: None,
            shutdown: None,
        }))
    }

    /// The fields, to change while the state is being built (copied first
    /// if a router already shares it).
    fn fields(&mut self) -> &mut AppStateInner {
        Arc::make_mut(&mut self.0)
    }

    /// The same state with the `/v1` run service and admin API.
    pub fn with_openclawssy(mut self, service: Openclawssy) -> Self {
        self.fields().openclawssy = Some(service);
        self
    }

    /// The same state with scheduler jobs.
    pub fn with_scheduler(mut self, scheduler: Arc<Scheduler>) -> Self {
        self.fields().scheduler = Some(scheduler);
        self
    }

    /// The same state with the orchestration services.
    pub fn with_orchestrator(mut self, orchestrator: Arc<Orchestrator>) -> Self {
        self.fields().orchestrator = Some(orchestrator);
        self
    }

    /// The same state with this data dir (for the Appleseed routes).
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.fields().data_dir = Some(Arc::new(dir.into()));
        self
    }

    /// The same state with these milestone settings.
    pub fn with_milestones(mut self, settings: MilestoneSettings) -> Self {
        self.fields().milestones = Arc::new(settings);
        self
    }

    /// Whether shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.shutdown.as_ref().is_some_and(|rx| *rx.borrow())
    }

    /// Resolves once the server starts shutting down.
    pub fn shutdown_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let rx = self.shutdown.clone();
        async move {
            match rx {
                // A dropped sender also means shutdown.
                Some(mut rx) => {
                    let _ = rx.wait_for(|down| *down).await;
                }
                None => std::future::pending().await,
            }
        }
    }
}

/// Every route of every surface, recorded in the route table: the routers
/// without state, auth or the outer layers.
pub fn routes(body_limit: usize) -> Routes {
    let limited = Routes::new()
        .merge(ledger_routes::routes())
        .merge(events_api::routes())
        .merge(milestones::read_routes())
        .merge(appleseed::routes())
        .merge(learning::routes())
        .merge(orchestration::routes())
        .merge(jobs::routes())
        .merge(metrics::routes())
        .merge(openapi::routes())
        .merge(dashboard::routes())
        .merge(v1::routes())
        .merge(admin::routes())
        .map_router(|r| {
            r.fallback(error::not_found)
                .layer(RequestBodyLimitLayer::new(body_limit))
        });
    // The milestone ingest enforces its own (smaller) limit so an oversized
    // body is answered in the milestone shape and recorded in the dead letter.
    Routes::new()
        .merge(limited)
        .merge(milestones::ingest_routes())
}

/// Every (method, path) the server answers (`GET` implies `HEAD`).
pub fn route_table() -> BTreeSet<Route> {
    routes(DEFAULT_BODY_LIMIT).table().clone()
}

/// The full router: every surface, auth, body limit, envelopes for errors
/// that axum or tower produce themselves, and request tracing.
pub fn router(state: AppState, body_limit: usize) -> Router {
    routes(body_limit)
        .into_router()
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn(error::envelope_errors))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// How to run `garrison serve`.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// `host:port`; port 0 picks a free one.
    pub listen: String,
    pub data_dir: PathBuf,
    /// PostgreSQL URL; the embedded SQLite ledger under `data_dir` when `None`.
    pub database_url: Option<String>,
    /// A token set explicitly (environment or configuration). Without one the
    /// server uses `<data_dir>/api-token`, generating it on first start.
    pub token: Option<String>,
    pub body_limit: usize,
    pub milestones: MilestoneSettings,
    /// Where the milestone outbox delivers; it runs only when targets are set.
    pub outbox: OutboxConfig,
    /// How long shutdown waits for in-flight requests before dropping them.
    pub drain_timeout: Duration,
    /// The orchestration services (CO, queue, workers, patrols); `None`
    /// leaves them off this node.
    pub orchestration: Option<OrchestrationSettings>,
    /// The `/v1` run service and admin API over `data_dir/agents`; `None`
    /// leaves them off this node.
    pub openclawssy: Option<OpenclawssySettings>,
    /// Whether this node fires scheduler jobs (it needs a launcher too).
    /// The jobs API is served either way.
    pub fire_jobs: bool,
    /// What starts the runs that scheduler jobs fire; `None`: this node's
    /// `/v1` run service, and without that, jobs are stored and shown but
    /// this node fires none.
    pub run_launcher: Option<LauncherRef>,
}

/// A shared [`RunLauncher`] (`Debug` for [`ServeConfig`]).
#[derive(Clone)]
pub struct LauncherRef(pub Arc<dyn RunLauncher>);

impl std::fmt::Debug for LauncherRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RunLauncher")
    }
}

impl ServeConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServeConfig {
            listen: "127.0.0.1:7878".into(),
            data_dir: data_dir.into(),
            database_url: None,
            token: None,
            body_limit: DEFAULT_BODY_LIMIT,
            milestones: MilestoneSettings::default(),
            outbox: OutboxConfig::default(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            orchestration: None,
            openclawssy: Some(OpenclawssySettings::default()),
            fire_jobs: true,
            run_launcher: None,
        }
    }

    /// The same config with `launcher` starting the runs of scheduler jobs.
    pub fn with_launcher(mut self, launcher: Arc<dyn RunLauncher>) -> Self {
        self.run_launcher = Some(LauncherRef(launcher));
        self
    }
}

/// What the server tells its caller once it accepts connections.
#[derive(Debug, Clone)]
pub struct Ready {
    pub addr: SocketAddr,
    /// The orchestration services when this node runs them.
    pub orchestrator: Option<Arc<Orchestrator>>,
    pub token_source: TokenSource,
    pub backend: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot resolve listen address `{addr}`: {reason}")]
    Listen { addr: String, reason: String },
    #[error(
        "refusing to listen on non-loopback address {0} without an explicitly set API token; \
         set GARRISON_API_TOKEN (or listen on 127.0.0.1)"
    )]
    NonLoopbackWithoutToken(SocketAddr),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("cannot open the ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start orchestration: {0}")]
    Orchestration(String),
    #[error("cannot start the /v1 run service: {0}")]
    Openclawssy(String),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
}

/// Runs the server until `shutdown` resolves. `on_ready` is called once, after
/// the listener is bound and the ledger open. On shutdown: stop accepting,
/// finish in-flight requests (and end event streams), then close the ledger.
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&Ready),
) -> Result<(), ServeError> {
    if config.token.as_deref().is_some_and(|t| t.trim().is_empty()) {
        return Err(TokenError::Empty.into());
    }
    let addr = resolve_listen(&config.listen).await?;
    // Checked before anything touches the disk, so a refused start leaves nothing behind.
    if !addr.ip().is_loopback() && config.token.is_none() {
        return Err(ServeError::NonLoopbackWithoutToken(addr));
    }
    let ledger = garrison_ledger::open(&config.data_dir, config.database_url.as_deref()).await?;
    // Every append in this process is counted for `/metrics`.
    let ledger = garrison_metrics::Metered::wrap(ledger);
    let result = run(config, addr, ledger.clone(), shutdown, on_ready).await;
    // Close even when serving failed, so acknowledged appends are flushed.
    let closed = ledger.close().await;
    result?;
    closed?;
    Ok(())
}

/// A server running in the background (the demo, embedding, tests).
pub struct Spawned {
    /// What the server reported once it accepted connections.
    pub ready: Ready,
    /// Send (or drop) to start the graceful shutdown.
    pub stop: tokio::sync::oneshot::Sender<()>,
    /// Ends when the server has stopped and closed its ledger.
    pub task: tokio::task::JoinHandle<Result<(), ServeError>>,
}

/// Starts [`serve`] on a task and waits until it is ready; a server that
/// fails before that returns its error.
pub async fn spawn(config: ServeConfig) -> Result<Spawned, ServeError> {
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<Ready>();
    let task = tokio::spawn(serve(
        config,
        async move {
            let _ = stop_rx.await;
        },
        move |r: &Ready| {
            let _ = ready_tx.send(r.clone());
        },
    ));
    match ready_rx.await {
        Ok(ready) => Ok(Spawned { ready, stop, task }),
        Err(_) => Err(match task.await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => ServeError::Serve(std::io::Error::other(
                "the server stopped before it was ready",
            )),
            Err(e) => ServeError::Serve(std::io::Error::other(format!("server task: {e}"))),
        }),
    }
}

async fn run(
    config: ServeConfig,
    addr: SocketAddr,
    ledger: Arc<dyn Ledger>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_ready: impl FnOnce(&Ready),
) -> Result<(), ServeError> {
    let (token, token_source) = auth::resolve_token(&config.data_dir, config.token.as_deref())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    let bound = listener
        .local_addr()
        .map_err(|source| ServeError::Bind { addr, source })?;

    let mut background = Services::new();
    let backend = ledger.backend();
    if !config.outbox.targets.is_empty() {
        let outbox = OutboxService::new(ledger.clone(), config.outbox.clone());
        background.add(outbox.start(background.signal()));
    }
    // Garrison's own runs feed the Appleseed state: on the node that runs
    // the CO (nodes sharing a ledger may share the data dir too). Stopping
    // it saves its position before the ledger closes.
    if config.orchestration.as_ref().is_some_and(|o| o.roles.co) {
        let feed = Feed::new(ledger.clone(), config.data_dir.clone());
        background.add(feed.start(background.signal()));
    }
    // Where the follower starts: read before the restore, so nothing another
    // node appends meanwhile is missed (what the restore saw is skipped by version).
    let shared = backend == "postgres";
    let head = if shared && config.orchestration.is_some() {
        ledger.head().await?
    } else {
        0
    };
    let orchestrator = match config.orchestration.clone() {
        Some(settings) => {
            let orch = Orchestrator::new(ledger.clone(), settings);
            let restored = orch
                .restore()
                .await
                .map_err(|e| ServeError::Orchestration(e.to_string()))?;
            tracing::info!(?restored, roles = ?orch.settings.roles.names(), "orchestration restored from the ledger");
            Some(orch)
        }
        None => None,
    };
    let openclawssy = match config.openclawssy.clone() {
        Some(mut settings) => Some({
            // This node's units scrub the values the /v1 secret store holds.
            if let Some(o) = &orchestrator {
                settings.secrets = o.settings.secrets.clone();
            }
            Openclawssy::open(&config.data_dir, settings)
                .map_err(|e| ServeError::Openclawssy(e.to_string()))?
        }),
        None => None,
    };
    // Workers get the drain timeout to finish the attempt in hand, so its
    // report is appended before the ledger closes.
    if let Some(o) = &orchestrator {
        for worker in Pool::new(o.clone()).start(background.signal()) {
            background.add(worker);
        }
        // On a shared ledger other nodes enqueue, claim and settle orders
        // too: follow their appends into this node's queue.
        if shared {
            background.add(Follower::new(o.clone(), head).start(background.signal()));
        }
    }
    let scheduler = Scheduler::new(ledger.clone());
    // Jobs start /v1 runs on this node unless another launcher was given.
    let launcher: Option<Arc<dyn RunLauncher>> = match (&config.run_launcher, &openclawssy) {
        (Some(LauncherRef(l)), _) => Some(l.clone()),
        (None, Some(service)) => Some(Arc::new(service.clone())),
        (None, None) => None,
    };
    match (&launcher, config.fire_jobs) {
        (Some(launcher), true) => {
            // It records how interrupted fires ended before the ledger closes.
            let runner = scheduler.runner(launcher.clone());
            background.add(runner.start(background.signal(), garrison_scheduler::DEFAULT_POLL));
        }
        (None, true) => {
            tracing::info!(
                "no /v1 run service on this node: scheduler jobs are stored but not fired here"
            );
        }
        (_, false) => {}
    }
    let state = AppState(Arc::new(AppStateInner {
        ledger,
        token,
        milestones: Arc::new(config.milestones.clone()),
        data_dir: Some(Arc::new(config.data_dir.clone())),
        orchestrator: orchestrator.clone(),
        openclawssy: openclawssy.clone(),
        scheduler: Some(scheduler),
        shutdown: Some(background.signal()),
    }));
    let app = router(state, config.body_limit);
    let listener = listener.tap_io(|tcp| {
        // Small JSON responses should not wait on Nagle.
        let _ = tcp.set_nodelay(true);
    });
    on_ready(&Ready {
        addr: bound,
        orchestrator,
        token_source,
        backend,
    });
    let mut down_seen = background.signal();
    let stopper = background.stopper();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        tracing::info!("shutting down: draining in-flight requests");
        stopper.send_replace(true);
    });
    // A client that never finishes its request must not hold shutdown hostage:
    // after the drain timeout we stop waiting (the connection tasks end when
    // the process exits or the client leaves; a late append then fails with
    // LEDGER_UNAVAILABLE). Appends already handed to the ledger complete in `close`.
    let drain_deadline = async move {
        let _ = down_seen.wait_for(|down| *down).await;
        tokio::time::sleep(config.drain_timeout).await;
    };
    let result = tokio::select! {
        r = server => r.map_err(ServeError::Serve),
        () = drain_deadline => {
            tracing::warn!(
                timeout = ?config.drain_timeout,
                "drain timeout: no longer waiting for open connections"
            );
            Ok(())
        }
    };
    // Live `/v1` runs are cancelled and get the drain timeout to store
    // their records; one still running after that is recorded as
    // interrupted on the next start.
    if let Some(service) = &openclawssy {
        service.shutdown(config.drain_timeout).await;
    }
    // The outbox, feed and firing loop end their last appends; workers get
    // the drain timeout (see `garrison_lifecycle`).
    background.stop(config.drain_timeout).await;
    result
}

async fn resolve_listen(listen: &str) -> Result<SocketAddr, ServeError> {
    let err = |reason: String| ServeError::Listen {
        addr: listen.to_string(),
        reason,
    };
    let mut addrs = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| err(e.to_string()))?;
    addrs
        .next()
        .ok_or_else(|| err("it resolves to no address".into()))
}
