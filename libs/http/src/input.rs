//! Small parsers every role's handlers share.

use serde::{Deserialize, Deserializer};

use crate::ApiError;

/// For `Option<Option<T>>` fields of a PATCH body, with `#[serde(default,
/// deserialize_with = "pinhole_http::nullable")]`: absent is `None` (leave
/// as is), `null` is `Some(None)` (clear), a value is `Some(Some(v))`.
pub fn nullable<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// A page size from `?limit=`: 1 to 100, 20 when absent.
pub fn page_limit(raw: Option<&str>) -> Result<u64, ApiError> {
    match raw {
        None => Ok(20),
        Some(l) => l
            .parse::<u64>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| ApiError::field("limit", "must be a number from 1 to 100")),
    }
}
