//! Extractors that answer bad input with the API's JSON errors.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use pinhole_auth::Principal;
use serde::de::DeserializeOwned;

use crate::{ApiError, AppContext, Common};

/// A JSON body; a missing content type is 415, broken JSON 400, and a body
/// of the wrong shape 422 naming the field.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Common::UnsupportedMediaType,
            "send the body as JSON with Content-Type: application/json",
        ),
        JsonRejection::JsonDataError(e) => {
            let text = e.body_text();
            let detail = text
                .split_once("target type: ")
                .map_or(text.as_str(), |(_, d)| d);
            let field = match detail.split_once("missing field `") {
                Some((_, rest)) => rest.split('`').next().unwrap_or("body").to_owned(),
                None => match detail.split_once(": ") {
                    Some((path, _)) if !path.contains(' ') && path != "." => path.to_owned(),
                    _ => "body".to_owned(),
                },
            };
            let problem = if detail.contains("missing field") {
                "is required".to_owned()
            } else {
                detail
                    .rsplit_once(": ")
                    .map_or(detail, |(_, m)| m)
                    .to_owned()
            };
            ApiError::invalid(BTreeMap::from([(field, problem)]))
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            StatusCode::BAD_REQUEST,
            Common::InvalidJson,
            "the body is not valid JSON",
        ),
        other => ApiError::new(other.status(), Common::InvalidBody, other.body_text()),
    }
}

/// Query parameters; ones of the wrong shape are 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str::<T>(query)
            .map(Self)
            .map_err(|e| {
                let text = e.to_string();
                ApiError::invalid(BTreeMap::from([(query_field(&text).to_owned(), text)]))
            })
    }
}

/// The parameter a serde_urlencoded error names (``missing field `limit` ``,
/// ``duplicate field `viewer` ``), or `query` when it names none: other
/// messages quote the bad value, not the parameter.
fn query_field(message: &str) -> &str {
    message
        .split_once("field `")
        .and_then(|(_, rest)| rest.split_once('`'))
        .map_or("query", |(name, _)| name)
}

fn bearer(parts: &Parts) -> Result<Option<&str>, ApiError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty());
    match token {
        Some(token) => Ok(Some(token)),
        None => Err(invalid_token()),
    }
}

/// 401 for a token that is expired, revoked or not one of ours.
pub fn invalid_token() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        Common::InvalidToken,
        "the access token is expired, revoked or not valid",
    )
    .with_header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")
}

/// Asks the users role (in process or over HTTP) whom `token` speaks for.
async fn verify(ctx: &AppContext, token: &str) -> Result<Principal, ApiError> {
    match ctx.clients.users.verify_token(token).await {
        Ok(Some(principal)) => Ok(principal),
        Ok(None) => Err(invalid_token()),
        Err(e) => Err(e.into()),
    }
}

/// The caller, who must send a valid `Authorization: Bearer` access token.
pub struct Auth(pub Principal);

impl<S: Send + Sync> FromRequestParts<S> for Auth
where
    AppContext: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ctx = AppContext::from_ref(state);
        let Some(token) = bearer(parts)? else {
            return Err(ApiError::unauthorized(
                "log in and send Authorization: Bearer <access token>",
            )
            .with_header(header::WWW_AUTHENTICATE, "Bearer"));
        };
        verify(&ctx, token).await.map(Self)
    }
}

/// The caller when a token is sent (a bad token is still 401), or nobody.
pub struct MaybeAuth(pub Option<Principal>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeAuth
where
    AppContext: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ctx = AppContext::from_ref(state);
        match bearer(parts)? {
            Some(token) => verify(&ctx, token).await.map(|p| Self(Some(p))),
            None => Ok(Self(None)),
        }
    }
}

/// Guards `/internal` routes: when `internal_token` is set, requests must
/// carry it in `X-Pinhole-Internal-Token`.
pub async fn internal_only(
    axum::extract::State(ctx): axum::extract::State<AppContext>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use secrecy::ExposeSecret;
    if let Some(expected) = &ctx.settings.internal_token {
        let given = request
            .headers()
            .get(crate::clients::INTERNAL_TOKEN_HEADER)
            .map(axum::http::HeaderValue::as_bytes)
            .unwrap_or_default();
        if !constant_time_eq(given, expected.expose_secret().as_bytes()) {
            return ApiError::new(
                StatusCode::UNAUTHORIZED,
                Common::InternalTokenRequired,
                "this route is for Pinhole's own roles",
            )
            .into_response();
        }
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The client's address: the connection's peer, or, when the peer is a
/// trusted proxy, the nearest address in `X-Forwarded-For` that is not one.
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp
where
    AppContext: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let ctx = AppContext::from_ref(state);
        Ok(Self::of(
            &parts.headers,
            &parts.extensions,
            &ctx.settings.trusted_proxies,
        ))
    }
}

impl ClientIp {
    /// The client's address of a request with `headers` and `extensions`,
    /// trusting the proxies in `trusted`.
    pub fn of(
        headers: &axum::http::HeaderMap,
        extensions: &axum::http::Extensions,
        trusted: &[ipnet::IpNet],
    ) -> Self {
        let peer = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Self(client_ip(peer, &forwarded, trusted))
    }
}

/// Walks `X-Forwarded-For` from the nearest hop while each hop is trusted.
pub fn client_ip(peer: IpAddr, forwarded: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded
        .iter()
        .flat_map(|header| header.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else {
            // A hop we cannot read: stop at the last one we trust to be true.
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// Whether `If-None-Match` in `headers` names `etag` (weakly or not), or
/// is `*`.
pub fn etag_matches(headers: &axum::http::HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use std::net::IpAddr;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn query_errors_name_the_parameter_only_when_the_message_does() {
        assert_eq!(super::query_field("missing field `expires`"), "expires");
        assert_eq!(super::query_field("duplicate field `viewer`"), "viewer");
        assert_eq!(
            super::query_field("UUID parsing failed: invalid character: found `n` at 0"),
            "query"
        );
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted = ["10.0.0.0/8".parse().expect("net")];
        // Not through a trusted proxy: the header is anyone's to forge.
        assert_eq!(
            client_ip(ip("203.0.113.9"), &["1.2.3.4"], &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the address it saw.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &["198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // A client that sends its own header cannot hide behind it.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &["1.2.3.4, 198.51.100.7"], &trusted),
            ip("198.51.100.7")
        );
        // Chains of trusted proxies are walked.
        assert_eq!(
            client_ip(ip("10.0.0.5"), &["198.51.100.7", "10.0.0.9"], &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("10.0.0.5"), &[], &trusted), ip("10.0.0.5"));
        assert_eq!(client_ip(ip("10.0.0.5"), &[], &[]), ip("10.0.0.5"));
    }
}
