//! The public API called on a web visitor's behalf: the gateway's forms
//! (log in, like, comment, follow, upload) become the same requests a
//! mobile app sends, with the visitor's own access token, to the role that
//! owns the data. That role checks, limits and answers exactly as it does
//! for the app; the gateway only turns the answer into a page.
//!
//! A role hosted in this process is called through this process's own
//! router (no socket), one served elsewhere over HTTP at its
//! `PINHOLE_ROLE_URLS` address, with the visitor's address in
//! `X-Forwarded-For` (that role trusts it when the gateway's address is in
//! its `PINHOLE_TRUSTED_PROXIES`).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tower::ServiceExt;

use crate::client_error::{CALL_TIMEOUT, CONNECT_TIMEOUT, ClientError};

/// Largest answer read back (answers are small JSON records).
const ANSWER_LIMIT: usize = 4 << 20;

/// One request of the public API.
pub struct ApiRequest {
    pub method: Method,
    /// Path and query, e.g. `/api/v1/images/ID/like`.
    pub path: String,
    /// The visitor's access token, when logged in.
    pub token: Option<String>,
    /// The visitor's address, for the role's per-address limits.
    pub client_ip: IpAddr,
    /// The body's `Content-Type` (`application/json`, or the visitor's own
    /// `multipart/form-data; boundary=…` for an upload passed through).
    pub content_type: Option<String>,
    pub body: Body,
}

impl ApiRequest {
    /// A request without a body.
    pub fn new(method: Method, path: impl Into<String>, client_ip: IpAddr) -> Self {
        Self {
            method,
            path: path.into(),
            token: None,
            client_ip,
            content_type: None,
            body: Body::empty(),
        }
    }

    /// Sent with `token` as its bearer access token.
    #[must_use]
    pub fn token(mut self, token: Option<&str>) -> Self {
        self.token = token.map(str::to_owned);
        self
    }

    /// With `value` as its JSON body.
    #[must_use]
    pub fn json(mut self, value: &impl serde::Serialize) -> Self {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        self.content_type = Some("application/json".to_owned());
        self.body = Body::from(bytes);
        self
    }
}

fn retry_after(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The application of this process is not (or no longer) serving.
#[derive(Debug, thiserror::Error)]
#[error("this process has stopped serving")]
struct Stopped;

/// What the role answered.
#[derive(Debug)]
pub struct ApiAnswer {
    pub status: StatusCode,
    /// `Retry-After` of a 429 or 503, to pass on.
    pub retry_after: Option<String>,
    pub body: Bytes,
}

/// An error answer's body (see [`crate::ErrorBody`]).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Refusal {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

impl ApiAnswer {
    /// The body as `T` on 2xx; the role's error (code, message, fields)
    /// otherwise.
    pub fn read<T: DeserializeOwned>(&self) -> Result<T, Refusal> {
        if self.status.is_success() {
            return serde_json::from_slice(&self.body).map_err(|e| Refusal {
                code: String::new(),
                message: format!("the answer does not read: {e}"),
                fields: BTreeMap::new(),
            });
        }
        Err(self.refusal())
    }

    /// The error body, or one made from the status when there is none.
    pub fn refusal(&self) -> Refusal {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Refusal {
            code: String::new(),
            message: format!("the server answered {}", self.status),
            fields: BTreeMap::new(),
        })
    }
}

/// Where each role's public API is: this process's router for the roles it
/// hosts, an address for the others.
pub struct PublicApi {
    hosted: Vec<String>,
    /// Holds the application, which holds this: [`Self::stop_serving`]
    /// breaks the cycle when the server stops.
    local: RwLock<Option<axum::Router>>,
    remote: BTreeMap<String, String>,
    http: reqwest::Client,
}

impl PublicApi {
    /// `hosted` served here (once [`Self::serve_locally`] is given the
    /// router), the others at `remote` (role name to base URL).
    pub fn new(
        hosted: &[&str],
        remote: BTreeMap<String, String>,
    ) -> Result<Arc<Self>, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT * 6)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pinhole-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Arc::new(Self {
            hosted: hosted.iter().map(|r| (*r).to_owned()).collect(),
            local: RwLock::new(None),
            remote,
            http,
        }))
    }

    /// The whole application of this process, which answers the hosted
    /// roles' requests, when it is built.
    pub fn serve_locally(&self, router: axum::Router) {
        if let Ok(mut local) = self.local.write() {
            *local = Some(router);
        }
    }

    /// Forgets the application (when the server stops).
    pub fn stop_serving(&self) {
        if let Ok(mut local) = self.local.write() {
            *local = None;
        }
    }

    fn local(&self) -> Option<axum::Router> {
        self.local.read().ok().and_then(|l| l.clone())
    }

    /// Sends `request` to `role`.
    pub async fn send(
        &self,
        role: &'static str,
        request: ApiRequest,
    ) -> Result<ApiAnswer, ClientError> {
        if self.hosted.iter().any(|r| r == role) {
            return match self.local() {
                Some(router) => Self::send_locally(router, request).await,
                None => Err(ClientError::failed("gateway", Stopped)),
            };
        }
        match self.remote.get(role) {
            Some(base) => self.send_remote(role, base, request).await,
            None => Err(ClientError::NotConfigured { role }),
        }
    }

    async fn send_locally(
        router: axum::Router,
        request: ApiRequest,
    ) -> Result<ApiAnswer, ClientError> {
        let mut builder = Request::builder().method(request.method).uri(&request.path);
        if let Some(token) = &request.token
            && let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}"))
        {
            builder = builder.header(header::AUTHORIZATION, value);
        }
        if let Some(kind) = &request.content_type {
            builder = builder.header(header::CONTENT_TYPE, kind);
        }
        let mut http_request = builder
            .body(request.body)
            .map_err(|e| ClientError::failed("gateway", e))?;
        http_request
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::new(request.client_ip, 0)));
        let response = match router.oneshot(http_request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = axum::body::to_bytes(response.into_body(), ANSWER_LIMIT)
            .await
            .map_err(|e| ClientError::failed("gateway", e))?;
        Ok(ApiAnswer {
            status,
            retry_after,
            body,
        })
    }

    async fn send_remote(
        &self,
        role: &'static str,
        base: &str,
        request: ApiRequest,
    ) -> Result<ApiAnswer, ClientError> {
        let url = format!("{}{}", base.trim_end_matches('/'), request.path);
        let mut call = self
            .http
            .request(request.method, &url)
            .header("x-forwarded-for", request.client_ip.to_string())
            .body(reqwest::Body::wrap_stream(request.body.into_data_stream()));
        if let Some(token) = &request.token {
            call = call.bearer_auth(token);
        }
        if let Some(kind) = &request.content_type {
            call = call.header(reqwest::header::CONTENT_TYPE, kind);
        }
        let unreachable = |source| ClientError::Unreachable {
            role,
            url: url.clone(),
            source,
        };
        let response = call.send().await.map_err(unreachable)?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.bytes().await.map_err(unreachable)?;
        Ok(ApiAnswer {
            status,
            retry_after,
            body,
        })
    }
}
