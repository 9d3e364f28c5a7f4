//! What one role asks another, typed: one trait per called role, answered
//! in process when that role is hosted here, over HTTP (its `/internal/v1`
//! routes) when another process serves it, or not at all when nothing says
//! where it is (every call then fails, saying to set `PINHOLE_ROLE_URLS`).
//!
//! The in-process implementations live in the roles' crates
//! (`pinhole_users::InProcessUsers`, `pinhole_images::InProcessImages`); the
//! binary picks one implementation per role at start-up into [`Clients`].

use std::sync::Arc;

use async_trait::async_trait;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use pinhole_auth::{Principal, Verified};
use pinhole_cache::SharedCache;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
pub use crate::client_error::{CALL_TIMEOUT, CONNECT_TIMEOUT, ClientError};

pub use pinhole_events::images::{ExportedComment, ImageExport};
pub use pinhole_events::users::AccountCard;

/// The header that carries `PINHOLE_INTERNAL_TOKEN` on `/internal` calls.
pub const INTERNAL_TOKEN_HEADER: &str = "x-pinhole-internal-token";
/// Ids sent per `/internal/v1/users/lookup` call (the route takes 500).
const LOOKUP_CHUNK: usize = 500;
/// Ids per `POST /internal/v1/images/views` call (more is a 422).
pub const MAX_VIEWS: usize = 100;
/// Rows per `/internal/v1/export/...` page when `limit` is absent.
pub const EXPORT_LIMIT_DEFAULT: u32 = 500;
/// Rows per `/internal/v1/export/...` page at most (more is a 422).
pub const EXPORT_LIMIT_MAX: u32 = 1000;

/// What the images role tells others of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageStatus {
    Processing,
    Ready,
    Failed,
}

/// Who may see an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImageVisibility {
    Public,
    Followers,
    Private,
}

/// An image as other roles may know it: whose, how far along, for whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ImageFacts {
    pub image_id: Uuid,
    pub owner_id: Uuid,
    pub status: ImageStatus,
    pub visibility: ImageVisibility,
}

/// The body of `POST /internal/v1/tokens/verify`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VerifyTokenRequest {
    pub token: String,
}

/// A live access token, as `POST /internal/v1/tokens/verify` answers it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TokenVerification {
    pub user_id: Uuid,
    /// The log-in the token descends from.
    pub family_id: Uuid,
    /// Past this, the answer must not be trusted (nor cached).
    pub expires_at: DateTime<Utc>,
}

impl From<&Verified> for TokenVerification {
    fn from(v: &Verified) -> Self {
        Self {
            user_id: v.principal.user_id,
            family_id: v.principal.family_id,
            expires_at: v.expires_at,
        }
    }
}

/// The body of `POST /internal/v1/images/views`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ViewsRequest {
    /// At most [`MAX_VIEWS`].
    #[schema(max_items = 100)]
    pub ids: Vec<Uuid>,
    /// Whom the images are shown to; none for a signed-out visitor.
    #[serde(default)]
    pub viewer: Option<Uuid>,
}

/// `?after=…&limit=…` of the `/internal/v1/export/...` routes (documented
/// as it is for records; [`EdgeExportParams`] for edges).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// The id of the last record of the previous page; from the start when
    /// absent.
    #[param(value_type = Option<Uuid>)]
    pub after: Option<String>,
    /// 1 to 1000; 500 when absent.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

/// How the export routes of edges (follows, blocks) take [`ExportQuery`].
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EdgeExportParams {
    /// `FROM,TO`, the ids of the last edge of the previous page; from the
    /// start when absent.
    #[param(
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12},[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )]
    pub after: Option<String>,
    /// 1 to 1000; 500 when absent.
    #[param(value_type = Option<i32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
}

impl ExportQuery {
    /// `limit`, checked: 422 naming it when it is not 1 to
    /// [`EXPORT_LIMIT_MAX`].
    pub fn limit(&self) -> Result<u32, ApiError> {
        match self.limit.as_deref() {
            None => Ok(EXPORT_LIMIT_DEFAULT),
            Some(l) => l
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=EXPORT_LIMIT_MAX).contains(l))
                .ok_or_else(|| {
                    ApiError::field(
                        "limit",
                        format!("must be a number from 1 to {EXPORT_LIMIT_MAX}"),
                    )
                }),
        }
    }

    /// `after` as an id; 422 naming it when it is not one.
    pub fn after_id(&self) -> Result<Option<Uuid>, ApiError> {
        self.after
            .as_deref()
            .map(|a| {
                a.parse::<Uuid>()
                    .map_err(|_| ApiError::field("after", "must be an id"))
            })
            .transpose()
    }

    /// `after` as `FROM,TO`; 422 naming it when it is not two ids.
    pub fn after_edge(&self) -> Result<Option<(Uuid, Uuid)>, ApiError> {
        self.after
            .as_deref()
            .map(|a| {
                a.split_once(',')
                    .and_then(|(from, to)| Some((from.parse().ok()?, to.parse().ok()?)))
                    .ok_or_else(|| ApiError::field("after", "must be two ids: FROM,TO"))
            })
            .transpose()
    }
}

/// `ids` without repeats, in the order of their first appearance.
pub fn distinct(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = std::collections::HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// A page limit as the export routes take it: 1 to [`EXPORT_LIMIT_MAX`].
pub fn clamp_export_limit(limit: u32) -> u32 {
    limit.clamp(1, EXPORT_LIMIT_MAX)
}

/// Which edges of the social graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// Follows, and requests to follow private accounts.
    Follows,
    Blocks,
}

impl EdgeKind {
    /// `follows` or `blocks`, as in `/internal/v1/export/{kind}`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Follows => "follows",
            Self::Blocks => "blocks",
        }
    }
}

/// One edge: `from` follows (or asked to follow) or blocks `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Edge {
    pub from: Uuid,
    pub to: Uuid,
    /// False for a request to follow a private account that it has not
    /// approved yet; blocks are always approved.
    pub approved: bool,
}

/// A page of `/internal/v1/export/follows` or `/blocks`, ordered by
/// (`from`, `to`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportedEdges {
    pub edges: Vec<Edge>,
}

/// A page of `/internal/v1/export/images`, ordered by image id.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportedImages {
    /// `pinhole_events::images::ImageExport`: the image's record (as in
    /// `image.updated`), its like count and its comments, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub images: Vec<ImageExport>,
}

/// What other roles ask the users role.
#[async_trait]
pub trait UsersClient: Send + Sync + 'static {
    /// Whom a bearer access token speaks for; `None` when it is not a live
    /// access token.
    async fn verify_token(&self, token: &str) -> Result<Option<Principal>, ClientError>;
    /// The accounts of `ids` that exist, in the order asked (unknown ids
    /// left out).
    async fn cards(&self, ids: &[Uuid]) -> Result<Vec<AccountCard>, ClientError>;
    /// A page of every account, ordered by id, after `after`: at most
    /// `limit` (taken as 1 to [`EXPORT_LIMIT_MAX`]); fewer on the last page.
    async fn export_accounts(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AccountCard>, ClientError>;
    /// A page of every edge of `kind`, ordered by (`from`, `to`), after
    /// `after`: at most `limit` (taken as 1 to [`EXPORT_LIMIT_MAX`]).
    async fn export_edges(
        &self,
        kind: EdgeKind,
        after: Option<(Uuid, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Edge>, ClientError>;
}

/// What other roles ask the images role.
#[async_trait]
pub trait ImagesClient: Send + Sync + 'static {
    /// An image, or `None` when there is no such image.
    async fn image(&self, id: Uuid) -> Result<Option<ImageFacts>, ClientError>;
    /// The images of `ids` as `GET /api/v1/images/{id}` shows them to
    /// `viewer`, in the order asked; those that do not exist or that
    /// `viewer` may not see are left out.
    async fn views(
        &self,
        ids: &[Uuid],
        viewer: Option<Uuid>,
    ) -> Result<Vec<serde_json::Value>, ClientError>;
    /// A page of every ready image, ordered by id, after `after`: at most
    /// `limit` (taken as 1 to [`EXPORT_LIMIT_MAX`]); fewer on the last page.
    async fn export(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ImageExport>, ClientError>;
    /// The first `limit` comments (taken as 1 to [`MAX_COMMENTS`]) of the
    /// image `id`, oldest first, as `GET /api/v1/images/{id}/comments`
    /// shows them to `viewer`; `None` when there is no such image or
    /// `viewer` may not see it.
    async fn comments(
        &self,
        id: Uuid,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Option<Vec<serde_json::Value>>, ClientError>;
    /// Explore's first `limit` images (taken as 1 to [`MAX_VIEWS`]) as
    /// `GET /api/v1/explore` shows them to `viewer`.
    async fn explore(
        &self,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, ClientError>;
    /// The newest `limit` images (taken as 1 to [`MAX_VIEWS`]) of
    /// `username` as `GET /api/v1/users/{username}/images` shows them to
    /// `viewer`.
    async fn user_images(
        &self,
        username: &str,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<UserImages, ClientError>;
}

/// A person's images as a viewer may see them.
#[derive(Debug, Clone, PartialEq)]
pub enum UserImages {
    /// Newest first.
    Shown(Vec<serde_json::Value>),
    /// A private account the viewer does not follow.
    Private,
    /// No such account (or one of them blocks the other).
    NotFound,
}

/// Comments per `/internal/v1/images/{id}/comments` call at most.
pub const MAX_COMMENTS: u32 = 100;
/// Related images per `/internal/v1/search/related/{id}` call at most.
pub const MAX_RELATED: u32 = 100;

/// `?viewer=…&limit=…` of the internal routes that show a viewer a list.
#[derive(Debug, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ViewerQuery {
    /// Whom the list is shown to; none for a signed-out visitor.
    pub viewer: Option<Uuid>,
    /// How many at most (taken as 1 to 100).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4294967295.0)]
    pub limit: Option<u32>,
}

impl ViewerQuery {
    fn path(base: &str, viewer: Option<Uuid>, limit: u32) -> String {
        match viewer {
            Some(v) => format!("{base}?viewer={v}&limit={limit}"),
            None => format!("{base}?limit={limit}"),
        }
    }
}

/// A related image, and why: `visual` (near-identical picture), `text`
/// (similar words and tags) or `place` (taken nearby).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RelatedRef {
    pub image_id: Uuid,
    pub reason: String,
}

/// `/internal/v1/search/related/{id}`'s answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RelatedRefs {
    pub items: Vec<RelatedRef>,
}

/// The ids an image search found, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SearchIds {
    /// Best first (or in the order asked), only what the viewer may see.
    pub ids: Vec<Uuid>,
    /// Matches in all.
    pub total: u64,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// What an image search answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Searched {
    Found(SearchIds),
    /// A parameter that is not right: its name and what is wrong.
    Invalid {
        field: String,
        message: String,
    },
}

/// What other roles ask the search role.
#[async_trait]
pub trait SearchClient: Send + Sync + 'static {
    /// The images `params` (those of `GET /api/v1/search/images`, as
    /// given) finds for `viewer`: ids in order.
    async fn search(
        &self,
        params: &[(String, String)],
        viewer: Option<Uuid>,
    ) -> Result<Searched, ClientError>;
    /// Images like `id` that `viewer` may see, best first, at most `limit`
    /// (taken as 1 to [`MAX_RELATED`]); empty when there is no such image
    /// or `viewer` may not see it.
    async fn related(
        &self,
        id: Uuid,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<RelatedRef>, ClientError>;
}

/// One client per called role, whichever implementation each is.
#[derive(Clone)]
pub struct Clients {
    pub users: Arc<dyn UsersClient>,
    pub images: Arc<dyn ImagesClient>,
    pub search: Arc<dyn SearchClient>,
    /// The public API, for requests made on a web visitor's behalf.
    pub api: Arc<crate::forward::PublicApi>,
}

/// The stand-in for a role that is neither hosted here nor given an address:
/// every call fails, saying so.
#[derive(Debug, Clone, Copy)]
pub struct NotConfigured {
    pub role: &'static str,
}

#[async_trait]
impl UsersClient for NotConfigured {
    async fn verify_token(&self, _: &str) -> Result<Option<Principal>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn cards(&self, _: &[Uuid]) -> Result<Vec<AccountCard>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn export_accounts(
        &self,
        _: Option<Uuid>,
        _: u32,
    ) -> Result<Vec<AccountCard>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn export_edges(
        &self,
        _: EdgeKind,
        _: Option<(Uuid, Uuid)>,
        _: u32,
    ) -> Result<Vec<Edge>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }
}

#[async_trait]
impl ImagesClient for NotConfigured {
    async fn image(&self, _: Uuid) -> Result<Option<ImageFacts>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn views(
        &self,
        _: &[Uuid],
        _: Option<Uuid>,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn export(&self, _: Option<Uuid>, _: u32) -> Result<Vec<ImageExport>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn comments(
        &self,
        _: Uuid,
        _: Option<Uuid>,
        _: u32,
    ) -> Result<Option<Vec<serde_json::Value>>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn explore(
        &self,
        _: Option<Uuid>,
        _: u32,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn user_images(
        &self,
        _: &str,
        _: Option<Uuid>,
        _: u32,
    ) -> Result<UserImages, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }
}

#[async_trait]
impl SearchClient for NotConfigured {
    async fn search(
        &self,
        _: &[(String, String)],
        _: Option<Uuid>,
    ) -> Result<Searched, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }

    async fn related(
        &self,
        _: Uuid,
        _: Option<Uuid>,
        _: u32,
    ) -> Result<Vec<RelatedRef>, ClientError> {
        Err(ClientError::NotConfigured { role: self.role })
    }
}

/// How this process calls other roles: one connection pool, connecting
/// within [`CONNECT_TIMEOUT`] and done within [`CALL_TIMEOUT`], sending
/// `PINHOLE_INTERNAL_TOKEN` when it is set.
#[derive(Clone)]
pub struct InternalHttp {
    http: reqwest::Client,
    internal_token: Option<SecretString>,
}

impl InternalHttp {
    pub fn new(internal_token: Option<SecretString>) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .user_agent(concat!("pinhole/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            internal_token,
        })
    }
}

/// Where one role is served, and how to call it.
#[derive(Clone)]
struct Remote {
    role: &'static str,
    base: String,
    http: InternalHttp,
}

/// An error body's `code`.
#[derive(Deserialize)]
struct ErrorCode {
    code: String,
}

impl Remote {
    fn new(role: &'static str, base: &url::Url, http: &InternalHttp) -> Self {
        Self {
            role,
            base: base.as_str().trim_end_matches('/').to_owned(),
            http: http.clone(),
        }
    }

    /// Sends `method path` (with `body` as JSON); the status, and the body
    /// when it is 2xx or the error `code` otherwise.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.http.request(method, &url);
        if let Some(token) = &self.http.internal_token {
            request = request.header(INTERNAL_TOKEN_HEADER, token.expose_secret());
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let unreachable = |source| ClientError::Unreachable {
            role: self.role,
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        let code = if status.is_success() {
            String::new()
        } else {
            serde_json::from_slice::<ErrorCode>(&bytes)
                .map(|e| e.code)
                .unwrap_or_default()
        };
        Ok(Answer {
            role: self.role,
            url,
            status: status.as_u16(),
            code,
            bytes,
        })
    }
}

/// What another role answered.
struct Answer {
    role: &'static str,
    url: String,
    status: u16,
    /// The error body's `code` (empty on 2xx, or when there is none).
    code: String,
    bytes: bytes::Bytes,
}

impl Answer {
    fn is(&self, status: StatusCode, code: impl crate::ErrorCode) -> bool {
        self.status == status.as_u16() && self.code == code.code()
    }

    /// The body as `T` when the answer is 2xx; any other answer is refused.
    fn read<T: DeserializeOwned>(self) -> Result<T, ClientError> {
        if !(200..300).contains(&self.status) {
            return Err(ClientError::Refused {
                role: self.role,
                url: self.url,
                status: self.status,
                code: self.code,
            });
        }
        serde_json::from_slice(&self.bytes).map_err(|source| ClientError::Unreadable {
            role: self.role,
            url: self.url,
            source,
        })
    }
}

/// The users role in another process, over `/internal/v1`. Token
/// verifications are kept in this process's cache under the key the users
/// role uses (`auth:token:{sha256}`), for at most a minute and never past the
/// token's expiry: when both share Redis, a log-out clears them at once.
#[derive(Clone)]
pub struct HttpUsers {
    remote: Remote,
    cache: SharedCache,
}

impl HttpUsers {
    /// The users role at `base`; token verifications kept in `cache`.
    pub fn new(base: &url::Url, http: &InternalHttp, cache: SharedCache) -> Self {
        Self {
            remote: Remote::new("users", base, http),
            cache,
        }
    }
}

/// An account in `/internal/v1/users/lookup`'s answer.
#[derive(Deserialize)]
struct LookedUp {
    id: Uuid,
    username: String,
    display_name: Option<String>,
    avatar_image_id: Option<Uuid>,
    is_private: bool,
}

impl LookedUp {
    fn card(self) -> AccountCard {
        AccountCard {
            user_id: self.id,
            username: self.username,
            display_name: self.display_name,
            avatar_image_id: self.avatar_image_id,
            is_private: self.is_private,
        }
    }
}

/// `/internal/v1/users/lookup`'s and `/internal/v1/export/accounts`' answer.
#[derive(Deserialize)]
struct Found {
    users: Vec<LookedUp>,
}

/// `/internal/v1/images/views`' and `/internal/v1/images/explore`'s answer.
#[derive(Deserialize)]
struct Viewed {
    images: Vec<serde_json::Value>,
}

/// `/internal/v1/images/{id}/comments`' answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CommentList {
    /// As `GET /api/v1/images/{id}/comments` shows them, oldest first.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<serde_json::Value>,
}

#[async_trait]
impl UsersClient for HttpUsers {
    #[tracing::instrument(skip_all, fields(role = "users"))]
    async fn verify_token(&self, token: &str) -> Result<Option<Principal>, ClientError> {
        if !pinhole_auth::is_access_token(token) {
            return Ok(None);
        }
        if let Some(cached) = pinhole_auth::cached_verification(&self.cache, token).await {
            return Ok(cached.map(|v| v.principal));
        }
        let body = serde_json::json!({ "token": token });
        let answer = self
            .remote
            .call(
                reqwest::Method::POST,
                "/internal/v1/tokens/verify",
                Some(body),
            )
            .await?;
        if answer.is(StatusCode::UNAUTHORIZED, crate::Common::InvalidToken) {
            return Ok(None);
        }
        let answered: TokenVerification = answer.read()?;
        if answered.expires_at <= Utc::now() {
            return Ok(None);
        }
        let verified = Verified {
            principal: Principal {
                user_id: answered.user_id,
                family_id: answered.family_id,
            },
            expires_at: answered.expires_at,
        };
        // A log-out landing between the users role's answer and this fill
        // is noticed when the entry expires (a minute at most), as where a
        // cache could not be cleared.
        pinhole_auth::cache_verification(&self.cache, token, &verified).await;
        Ok(Some(verified.principal))
    }

    #[tracing::instrument(skip_all, fields(role = "users", ids = ids.len()))]
    async fn cards(&self, ids: &[Uuid]) -> Result<Vec<AccountCard>, ClientError> {
        let mut cards = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOOKUP_CHUNK) {
            let body = serde_json::json!({ "ids": chunk });
            let found: Found = self
                .remote
                .call(
                    reqwest::Method::POST,
                    "/internal/v1/users/lookup",
                    Some(body),
                )
                .await?
                .read()?;
            cards.extend(found.users.into_iter().map(LookedUp::card));
        }
        Ok(cards)
    }

    #[tracing::instrument(skip_all, fields(role = "users", limit))]
    async fn export_accounts(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AccountCard>, ClientError> {
        let mut path = format!(
            "/internal/v1/export/accounts?limit={}",
            clamp_export_limit(limit)
        );
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        let found: Found = self
            .remote
            .call(reqwest::Method::GET, &path, None)
            .await?
            .read()?;
        Ok(found.users.into_iter().map(LookedUp::card).collect())
    }

    #[tracing::instrument(skip_all, fields(role = "users", kind = kind.as_str(), limit))]
    async fn export_edges(
        &self,
        kind: EdgeKind,
        after: Option<(Uuid, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Edge>, ClientError> {
        let mut path = format!(
            "/internal/v1/export/{}?limit={}",
            kind.as_str(),
            clamp_export_limit(limit)
        );
        if let Some((from, to)) = after {
            path.push_str(&format!("&after={from},{to}"));
        }
        let page: ExportedEdges = self
            .remote
            .call(reqwest::Method::GET, &path, None)
            .await?
            .read()?;
        Ok(page.edges)
    }
}

/// The images role in another process, over `/internal/v1`.
#[derive(Clone)]
pub struct HttpImages {
    remote: Remote,
}

impl HttpImages {
    /// The images role at `base`.
    pub fn new(base: &url::Url, http: &InternalHttp) -> Self {
        Self {
            remote: Remote::new("images", base, http),
        }
    }
}

#[async_trait]
impl ImagesClient for HttpImages {
    #[tracing::instrument(skip_all, fields(role = "images", image_id = %id))]
    async fn image(&self, id: Uuid) -> Result<Option<ImageFacts>, ClientError> {
        let answer = self
            .remote
            .call(
                reqwest::Method::GET,
                &format!("/internal/v1/images/{id}"),
                None,
            )
            .await?;
        if answer.is(StatusCode::NOT_FOUND, crate::Common::ImageNotFound) {
            return Ok(None);
        }
        answer.read().map(Some)
    }

    #[tracing::instrument(skip_all, fields(role = "images", ids = ids.len()))]
    async fn views(
        &self,
        ids: &[Uuid],
        viewer: Option<Uuid>,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        let ids = distinct(ids);
        let mut images = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(MAX_VIEWS) {
            let body = serde_json::json!({ "ids": chunk, "viewer": viewer });
            let viewed: Viewed = self
                .remote
                .call(
                    reqwest::Method::POST,
                    "/internal/v1/images/views",
                    Some(body),
                )
                .await?
                .read()?;
            images.extend(viewed.images);
        }
        Ok(images)
    }

    #[tracing::instrument(skip_all, fields(role = "images", limit))]
    async fn export(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ImageExport>, ClientError> {
        let mut path = format!(
            "/internal/v1/export/images?limit={}",
            clamp_export_limit(limit)
        );
        if let Some(after) = after {
            path.push_str(&format!("&after={after}"));
        }
        let page: ExportedImages = self
            .remote
            .call(reqwest::Method::GET, &path, None)
            .await?
            .read()?;
        Ok(page.images)
    }

    #[tracing::instrument(skip_all, fields(role = "images", image_id = %id))]
    async fn comments(
        &self,
        id: Uuid,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Option<Vec<serde_json::Value>>, ClientError> {
        let limit = limit.clamp(1, MAX_COMMENTS);
        let path = ViewerQuery::path(&format!("/internal/v1/images/{id}/comments"), viewer, limit);
        let answer = self.remote.call(reqwest::Method::GET, &path, None).await?;
        if answer.is(StatusCode::NOT_FOUND, crate::Common::ImageNotFound) {
            return Ok(None);
        }
        let list: CommentList = answer.read()?;
        Ok(Some(list.items))
    }

    #[tracing::instrument(skip_all, fields(role = "images", limit))]
    async fn explore(
        &self,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<serde_json::Value>, ClientError> {
        let limit = limit.clamp(1, MAX_VIEWS as u32);
        let path = ViewerQuery::path("/internal/v1/images/explore", viewer, limit);
        let viewed: Viewed = self
            .remote
            .call(reqwest::Method::GET, &path, None)
            .await?
            .read()?;
        Ok(viewed.images)
    }

    #[tracing::instrument(skip_all, fields(role = "images", limit))]
    async fn user_images(
        &self,
        username: &str,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<UserImages, ClientError> {
        let limit = limit.clamp(1, MAX_VIEWS as u32);
        let name: String = url::form_urlencoded::byte_serialize(username.as_bytes()).collect();
        let path = ViewerQuery::path(
            &format!("/internal/v1/images/by-user/{name}"),
            viewer,
            limit,
        );
        let answer = self.remote.call(reqwest::Method::GET, &path, None).await?;
        if answer.is(StatusCode::NOT_FOUND, crate::Common::UserNotFound) {
            return Ok(UserImages::NotFound);
        }
        if answer.status == StatusCode::FORBIDDEN.as_u16() && answer.code == "account-private" {
            return Ok(UserImages::Private);
        }
        let viewed: Viewed = answer.read()?;
        Ok(UserImages::Shown(viewed.images))
    }
}

/// The search role in another process, over `/internal/v1`.
#[derive(Clone)]
pub struct HttpSearch {
    remote: Remote,
}

impl HttpSearch {
    /// The search role at `base`.
    pub fn new(base: &url::Url, http: &InternalHttp) -> Self {
        Self {
            remote: Remote::new("search", base, http),
        }
    }
}

/// A 422 body's offending fields.
#[derive(Deserialize)]
struct Invalid {
    message: String,
    #[serde(default)]
    fields: std::collections::BTreeMap<String, String>,
}

#[async_trait]
impl SearchClient for HttpSearch {
    #[tracing::instrument(skip_all, fields(role = "search"))]
    async fn search(
        &self,
        params: &[(String, String)],
        viewer: Option<Uuid>,
    ) -> Result<Searched, ClientError> {
        let mut pairs: Vec<(&str, String)> = params
            .iter()
            .filter(|(k, _)| k != "viewer")
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        if let Some(v) = viewer {
            pairs.push(("viewer", v.to_string()));
        }
        let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        let answer = self
            .remote
            .call(
                reqwest::Method::GET,
                &format!("/internal/v1/search/images?{query}"),
                None,
            )
            .await?;
        if answer.is(
            StatusCode::UNPROCESSABLE_ENTITY,
            crate::Common::ValidationFailed,
        ) && let Ok(invalid) = serde_json::from_slice::<Invalid>(&answer.bytes)
        {
            let (field, message) = invalid
                .fields
                .into_iter()
                .next()
                .unwrap_or_else(|| ("query".to_owned(), invalid.message));
            return Ok(Searched::Invalid { field, message });
        }
        answer.read().map(Searched::Found)
    }

    #[tracing::instrument(skip_all, fields(role = "search", image_id = %id))]
    async fn related(
        &self,
        id: Uuid,
        viewer: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<RelatedRef>, ClientError> {
        let limit = limit.clamp(1, MAX_RELATED);
        let path = ViewerQuery::path(&format!("/internal/v1/search/related/{id}"), viewer, limit);
        let answer = self.remote.call(reqwest::Method::GET, &path, None).await?;
        if answer.is(StatusCode::NOT_FOUND, crate::Common::ImageNotFound) {
            return Ok(Vec::new());
        }
        let refs: RelatedRefs = answer.read()?;
        Ok(refs.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unplaced_role_fails_every_call_saying_where_to_place_it() {
        let users = NotConfigured { role: "users" };
        let err = UsersClient::verify_token(&users, "pha_x")
            .await
            .expect_err("nowhere to ask");
        assert!(
            err.to_string().contains("PINHOLE_ROLE_URLS=users="),
            "{err}"
        );
        let api = ApiError::from(err);
        assert_eq!(api.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(api.code, "role-unavailable");
        assert!(api.message.contains("users role"), "{}", api.message);
        assert!(!api.message.contains("PINHOLE"), "nothing internal");
    }

    #[tokio::test]
    async fn an_unplaced_role_fails_the_search_role_s_calls_too() {
        let (users, images) = (
            NotConfigured { role: "users" },
            NotConfigured { role: "images" },
        );
        let unplaced = |e: ClientError, role: &str| matches!(e, ClientError::NotConfigured { role: r } if r == role);
        let id = Uuid::nil();
        assert!(unplaced(
            users.export_accounts(None, 10).await.expect_err("accounts"),
            "users"
        ));
        for kind in [EdgeKind::Follows, EdgeKind::Blocks] {
            let err = users
                .export_edges(kind, Some((id, id)), 10)
                .await
                .expect_err("edges");
            assert!(unplaced(err, "users"));
        }
        assert!(unplaced(
            images.views(&[id], None).await.expect_err("views"),
            "images"
        ));
        assert!(unplaced(
            images.export(Some(id), 10).await.expect_err("export"),
            "images"
        ));
    }

    #[test]
    fn export_queries_are_checked_at_the_edge() {
        let query = |after: Option<&str>, limit: Option<&str>| ExportQuery {
            after: after.map(str::to_owned),
            limit: limit.map(str::to_owned),
        };
        assert_eq!(query(None, None).limit().expect("default"), 500);
        assert_eq!(query(None, Some("1000")).limit().expect("max"), 1000);
        for bad in ["0", "1001", "-1", "many"] {
            let err = query(None, Some(bad)).limit().expect_err(bad);
            assert_eq!(err.status, StatusCode::UNPROCESSABLE_ENTITY);
        }
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let edge = query(Some(&format!("{a},{b}")), None);
        assert_eq!(edge.after_edge().expect("edge"), Some((a, b)));
        assert!(edge.after_id().is_err());
        assert!(query(Some(&a.to_string()), None).after_edge().is_err());
        assert_eq!(
            query(Some(&a.to_string()), None).after_id().expect("id"),
            Some(a)
        );
        assert_eq!(clamp_export_limit(0), 1);
        assert_eq!(clamp_export_limit(5000), EXPORT_LIMIT_MAX);
        assert_eq!(distinct(&[b, a, b, a]), vec![b, a]);
    }

    #[tokio::test]
    async fn a_role_that_does_not_answer_is_unavailable_at_once() {
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let base: url::Url = format!("http://127.0.0.1:{port}").parse().expect("url");
        let images = HttpImages::new(&base, &InternalHttp::new(None).expect("client"));
        let started = std::time::Instant::now();
        let err = images.image(Uuid::nil()).await.expect_err("refused");
        assert!(started.elapsed() < CALL_TIMEOUT);
        assert!(
            matches!(&err, ClientError::Unreachable { role: "images", .. }),
            "{err:?}"
        );
        assert!(
            crate::client_error::chain(&err)
                .contains(&base.to_string().trim_end_matches('/').to_owned())
        );
        assert_eq!(ApiError::from(err).code, "role-unavailable");
    }

    #[test]
    fn image_facts_read_as_the_route_writes_them() {
        let facts: ImageFacts = serde_json::from_value(serde_json::json!({
            "image_id": Uuid::nil(), "owner_id": Uuid::nil(),
            "status": "ready", "visibility": "followers",
        }))
        .expect("facts");
        assert_eq!(facts.status, ImageStatus::Ready);
        assert_eq!(facts.visibility, ImageVisibility::Followers);
    }
}
