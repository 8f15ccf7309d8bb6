//! The dashboard's actions: each one zrq command, allowed only as [`super::Auth::check_action`]
//! says (actions enabled, signed in, CSRF token).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use zrq::{CancelOutcome, EnqueueOptions};

use super::{ApiError, ApiResult, Shared};

/// The body of `POST /api/queues/{queue}/enqueue` (the other actions take `{}`).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NewJob {
    /// The task name.
    task: String,
    /// The payload, a JSON document as text (default `{}`).
    payload: Option<String>,
}

/// `POST /api/queues/{queue}/{action}`: `pause` (`ZRQ.PAUSE`), `resume` (`ZRQ.RESUME`),
/// `requeue-dead` (`ZRQ.REQUEUE <queue> ALL`, page by page to the end), `enqueue` (`ZRQ.ENQUEUE`, body [`NewJob`]).
pub async fn queue_action(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((queue, action)): Path<(String, String)>,
    body: Option<Json<NewJob>>,
) -> ApiResult<Value> {
    app.auth.check_action(&headers)?;
    let queue = app.client.queue(&queue);
    let reply = match action.as_str() {
        "pause" => queue.pause().await.map(|()| json!({ "paused": true }))?,
        "resume" => queue.resume().await.map(|()| json!({ "paused": false }))?,
        "requeue-dead" => json!({ "requeued": queue.requeue_all().await? }),
        "enqueue" => {
            let Json(new) = body.unwrap_or_default();
            if new.task.is_empty() {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "a task name is needed",
                ));
            }
            let payload: Value = serde_json::from_str(new.payload.as_deref().unwrap_or("{}"))
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::BAD_REQUEST,
                        format!("payload is not valid JSON: {e}"),
                    )
                })?;
            let job = queue
                .enqueue_with(&new.task, &payload, &EnqueueOptions::new())
                .await?;
            json!({ "id": job.id() })
        }
        other => return Err(unknown(other)),
    };
    tracing::info!(queue = queue.name(), action, "action");
    Ok(Json(reply))
}

/// `POST /api/queues/{queue}/jobs/{id}/{action}`: `cancel` (`ZRQ.CANCEL`), `requeue`
/// (`ZRQ.REQUEUE`), `delete` (`ZRQ.DELETE`).
pub async fn job_action(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path((queue, id, action)): Path<(String, String, String)>,
) -> ApiResult<Value> {
    app.auth.check_action(&headers)?;
    let queue = app.client.queue(&queue);
    let reply = match action.as_str() {
        "cancel" => {
            let outcome = queue.job(&id).cancel().await?;
            if outcome == CancelOutcome::NotCancellable {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("job {id} is not cancellable (finished or unknown)"),
                ));
            }
            json!({ "outcome": outcome })
        }
        "requeue" => {
            if !queue.requeue(&id).await? {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("job {id} is not dead"),
                ));
            }
            json!({ "requeued": 1 })
        }
        "delete" => {
            if !queue.delete(&id).await? {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    format!("no job '{id}' in queue '{}'", queue.name()),
                ));
            }
            json!({ "deleted": 1 })
        }
        other => return Err(unknown(other)),
    };
    tracing::info!(queue = queue.name(), id, action, "action");
    Ok(Json(reply))
}

fn unknown(action: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, format!("no action '{action}'"))
}
