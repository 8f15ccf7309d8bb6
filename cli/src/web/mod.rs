//! `zrq dashboard` and `zrq metrics`: a web server over one zrq server (or cluster).
//!
//! Everything it shows is read from the queues' own keys through zrq commands (and a few reads of
//! documented keys: the consumer groups, the lease index), each view bounded by what it shows. The
//! live feed follows the queues' event channels (`zrq:{Q}:events`). Pages and assets are compiled
//! into the binary. It writes only through actions, and only when started with actions enabled
//! and a password; every action is one zrq command.

mod actions;
mod auth;
mod live;
mod metrics;
mod views;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use zrq::{Client, DirectoryOptions, QueueDirectory};

pub use auth::Auth;

/// What the server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The dashboard (pages, JSON views, live feed, actions) and `/metrics`.
    Dashboard,
    /// `/metrics` only.
    MetricsOnly,
}

/// Shared by every request.
struct App {
    client: Client,
    /// The queue list, kept by a background listing (bounded `ZRQ.QUEUES` steps, paced): a view
    /// never lists a large server's queues itself.
    queues: QueueDirectory,
    auth: Auth,
    /// The live feed (the dashboard only).
    live: Option<live::Live>,
}

type Shared = Arc<App>;

/// A failed request: its status and a message for the page (JSON `{"error": …}`).
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<zrq::Error> for ApiError {
    fn from(e: zrq::Error) -> ApiError {
        // A command the server refused is the request's fault; anything else is the server's.
        let status = if e.code().is_some() {
            StatusCode::BAD_REQUEST
        } else {
            StatusCode::BAD_GATEWAY
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Serves `mode` on `listen` until Ctrl-C. `events_url` is the server whose Pub/Sub the live feed
/// follows (in a cluster any node: `PUBLISH` reaches every node).
pub async fn serve(
    client: Client,
    auth: Auth,
    mode: Mode,
    listen: SocketAddr,
    events_url: &str,
) -> Result<(), String> {
    let (router, live) = match mode {
        Mode::Dashboard => (
            dashboard_routes(),
            Some(live::Live::start(events_url).map_err(|e| e.to_string())?),
        ),
        Mode::MetricsOnly => (Router::new(), None),
    };
    let queues = QueueDirectory::start(client.clone(), DirectoryOptions::default());
    let app = Arc::new(App {
        client,
        queues,
        auth,
        live,
    });
    let router = router
        .route("/metrics", get(metrics::metrics))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(address = %bound, ?mode, "serving");
    // Tests and scripts read the address (the port may be 0, "any") from this line.
    println!("listening on http://{bound}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| e.to_string())
}

fn dashboard_routes() -> Router<Shared> {
    Router::new()
        .route("/", get(|| async { asset("index.html") }))
        .route("/assets/{name}", get(asset_route))
        .route("/api/session", get(auth::session))
        .route("/api/login", post(auth::login))
        .route("/api/overview", get(views::overview))
        .route("/api/live", get(live::feed))
        .route("/api/find/{id}", get(views::find))
        .route("/api/workers", get(views::workers))
        .route("/api/schedules", get(views::schedules))
        .route("/api/queues/{queue}/jobs", get(views::jobs))
        .route("/api/queues/{queue}/jobs/{id}", get(views::job))
        .route("/api/queues/{queue}/{action}", post(actions::queue_action))
        .route(
            "/api/queues/{queue}/jobs/{id}/{action}",
            post(actions::job_action),
        )
}

/// The files compiled into the binary: name, content type, text.
const ASSETS: [(&str, &str, &str); 3] = [
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("assets/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
];

async fn asset_route(Path(name): Path<String>) -> Response {
    asset(&name)
}

fn asset(name: &str) -> Response {
    match ASSETS.iter().find(|(file, _, _)| *file == name) {
        Some((_, content_type, text)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                // The page is not to be framed by another site (clickjacking of the actions).
                (header::X_FRAME_OPTIONS, "DENY"),
                (
                    header::CONTENT_SECURITY_POLICY,
                    "default-src 'self'; frame-ancestors 'none'",
                ),
            ],
            *text,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
