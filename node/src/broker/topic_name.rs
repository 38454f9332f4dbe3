//! Kafka's topic-name rules: 1 to 249 characters from `[a-zA-Z0-9._-]`,
//! and not `.` or `..`.

use faultline_client::api::ErrorCode;

use crate::error::ApiError;

/// Kafka's limit, so that `<topic>-<partition>` fits a 255-byte file name.
pub const TOPIC_NAME_LEN_MAX: usize = 249;

pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let bad = |why: String| Err(ApiError::new(ErrorCode::InvalidTopicException, why));
    if name.is_empty() {
        return bad("topic name is empty".into());
    }
    if name.len() > TOPIC_NAME_LEN_MAX {
        return bad(format!("topic name is {} characters; at most {TOPIC_NAME_LEN_MAX} are allowed", name.len()));
    }
    if name == "." || name == ".." {
        return bad(format!("topic name `{name}` is not allowed"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return bad(format!("topic name `{}` contains {c:?}; only [a-zA-Z0-9._-] are allowed", name.escape_debug()));
    }
    Ok(())
}

/// A valid name that is not reserved for internal topics (`__` prefix):
/// what a client may create.
pub fn validate_user_topic_name(name: &str) -> Result<(), ApiError> {
    validate_topic_name(name)?;
    if name.starts_with("__") {
        return Err(ApiError::new(
            ErrorCode::InvalidTopicException,
            format!("topic name `{name}` is reserved for internal topics"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_rules() {
        for ok in ["events", "a.b_c-D9", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "a b", "ü", &"x".repeat(250)] {
            assert_eq!(validate_topic_name(bad).unwrap_err().code, ErrorCode::InvalidTopicException, "{bad}");
        }
    }
}
