//! Request extractors that turn every malformed input into an
//! [`ApiError`] naming what is wrong, instead of axum's plain-text
//! rejections: a client mistake is always a JSON 4xx.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use faultline_client::api::ErrorCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// A JSON body of type `T`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(ErrorCode::MessageTooLarge, "the request body exceeds socket.request.max.bytes")
            } else {
                ApiError::invalid(format!("unreadable request body: {e}"))
            }
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." || path.is_empty() {
                ApiError::invalid(format!("invalid JSON body: {inner}"))
            } else {
                ApiError::invalid(format!("invalid JSON body: field `{path}`: {inner}"))
            }
        })?;
        Ok(JsonBody(value))
    }
}

/// Path segments `{topic}` and `{partition}`. The partition is parsed here
/// so that a non-number is `INVALID_REQUEST` and a number that no partition
/// has is `UNKNOWN_TOPIC_OR_PARTITION`, as Kafka answers a negative one.
/// The documented bounds are Kafka's (an int32 partition), narrower than
/// what is accepted.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct PartitionPath {
    /// A topic name: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
    #[param(pattern = r"^(?!\.\.?$)[a-zA-Z0-9._-]{1,249}$", min_length = 1, max_length = 249, example = "events")]
    pub topic: String,
    /// The partition's index.
    #[param(minimum = 0, maximum = 2147483647, example = 0)]
    pub partition: i64,
}

/// The `{topic}` path segment.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TopicParam {
    /// A topic name: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
    #[param(pattern = r"^(?!\.\.?$)[a-zA-Z0-9._-]{1,249}$", min_length = 1, max_length = 249, example = "events")]
    pub topic: String,
}

/// The `{group}` path segment.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct GroupParam {
    /// A consumer group id: 1 to 255 bytes, no control characters.
    #[param(
        pattern = r"^[^\u0000-\u001f\u007f-\u009f]{1,255}$",
        min_length = 1,
        max_length = 255,
        example = "readers"
    )]
    pub group: String,
}

impl<S: Send + Sync> FromRequestParts<S> for PartitionPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path((topic, partition)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
        let partition = partition.parse::<i64>().map_err(|_| {
            ApiError::invalid(format!("partition must be an integer, got `{}`", partition.escape_debug()))
        })?;
        Ok(PartitionPath { topic, partition })
    }
}

/// The one path segment of a route, e.g. `{topic}`.
async fn segment<S: Send + Sync>(parts: &mut Parts, state: &S) -> Result<String, ApiError> {
    let axum::extract::Path(name) = axum::extract::Path::<String>::from_request_parts(parts, state)
        .await
        .map_err(|e| ApiError::invalid(format!("bad path: {e}")))?;
    Ok(name)
}

impl<S: Send + Sync> FromRequestParts<S> for TopicParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(TopicParam { topic: segment(parts, state).await? })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for GroupParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Ok(GroupParam { group: segment(parts, state).await? })
    }
}
