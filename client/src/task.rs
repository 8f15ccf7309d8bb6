//! Typed tasks: a task's name and types declared once, shared by producers and workers.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A task: its name on the wire, its argument type and its result type. Declare it once in code
/// that both the producer and the worker use, and they cannot disagree on either.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// pub struct Resize { pub url: String, pub width: u32 }
///
/// pub struct ResizeImage;
///
/// impl zrq::Task for ResizeImage {
///     const NAME: &'static str = "resize_image";
///     type Args = Resize;
///     type Output = String;
/// }
/// ```
pub trait Task: Send + Sync + 'static {
    /// The task name jobs carry and workers dispatch on.
    const NAME: &'static str;
    /// The arguments, sent as the job's JSON payload.
    type Args: Serialize + DeserializeOwned + Send + 'static;
    /// The result, stored as JSON by `ZRQ.ACK … RESULT`.
    type Output: Serialize + DeserializeOwned + Send + 'static;
}
