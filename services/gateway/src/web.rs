//! Logging in on the web, and acting from plain HTML forms (no script).
//!
//! The log-in form asks the users role for a session exactly as the app
//! does (`POST /api/v1/sessions`) and keeps its two tokens in cookies,
//! `pinhole_session` (the access token) and `pinhole_refresh`: `HttpOnly`,
//! `SameSite=Lax`, `Path=/`, and `Secure` when the public URL is https.
//! Every page request reads them ([`sessions`]); an access token that has
//! expired is refreshed on the way, and cookies that no longer work are
//! cleared.
//!
//! Forms (like, comment, follow, upload, log out) post to the gateway, which
//! checks them against CSRF and then makes the request the app would make,
//! with the visitor's token, to the role that owns the data
//! ([`pinhole_http::forward`]); that role checks and limits it as it does
//! for the app. The answer is a redirect (303) back to the page, or the form
//! again with what was wrong.
//!
//! CSRF: a form carries a token, the HMAC under the signing key of the
//! log-in it belongs to (its token family, which no other site can learn);
//! the log-in and sign-up forms, before there is a session, that of a random
//! `pinhole_csrf` cookie (double submit). A request whose `Origin` is
//! another site is refused as well.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{FromRef, FromRequestParts, Path, RawQuery, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pinhole_http::forward::{ApiAnswer, ApiRequest, Refusal};
use pinhole_http::{AppContext, ClientIp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::caching::html_response;
use crate::forms;
pub use crate::visitor::{Standing, Visitor};

/// The cookie holding the access token.
pub const SESSION_COOKIE: &str = "pinhole_session";
/// The cookie holding the refresh token.
pub const REFRESH_COOKIE: &str = "pinhole_refresh";
/// The random value the log-in and sign-up forms' CSRF token is made from.
pub const CSRF_COOKIE: &str = "pinhole_csrf";

/// The cookies of a request.
struct Cookies<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Cookies<'a> {
    fn of(headers: &'a HeaderMap) -> Self {
        Self(
            headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .map(|(k, v)| (k.trim(), v.trim()))
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&'a str> {
        self.0
            .iter()
            .find(|(k, v)| *k == name && !v.is_empty())
            .map(|(_, v)| *v)
    }
}

/// Whether cookies get `Secure`: when the site's public URL is https.
fn secure(ctx: &AppContext) -> bool {
    ctx.settings
        .public_url
        .as_ref()
        .is_some_and(|u| u.scheme() == "https")
}

/// `Set-Cookie` for `name`, living `max_age` seconds (0 removes it).
fn cookie(ctx: &AppContext, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if secure(ctx) { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("x=; Max-Age=0"))
}

/// The cookies that end the web session.
fn cleared(ctx: &AppContext) -> Vec<HeaderValue> {
    vec![
        cookie(ctx, SESSION_COOKIE, "", 0),
        cookie(ctx, REFRESH_COOKIE, "", 0),
    ]
}

/// A session the users role handed out (log-in or refresh).
#[derive(Debug, Deserialize)]
struct Session {
    access_token: String,
    refresh_token: String,
    refresh_expires_in: i64,
}

impl Session {
    /// The cookies that keep it. Both live as long as the refresh token:
    /// an expired access token is then refreshed rather than forgotten.
    fn cookies(&self, ctx: &AppContext) -> Vec<HeaderValue> {
        vec![
            cookie(
                ctx,
                SESSION_COOKIE,
                &self.access_token,
                self.refresh_expires_in,
            ),
            cookie(
                ctx,
                REFRESH_COOKIE,
                &self.refresh_token,
                self.refresh_expires_in,
            ),
        ]
    }
}

/// The CSRF token of forms of the log-in `family`.
fn session_csrf(ctx: &AppContext, family: Uuid) -> String {
    ctx.signer
        .sign_message(format!("pinhole-csrf:{family}").as_bytes())
}

/// The CSRF token of the log-in and sign-up forms of a browser whose
/// `pinhole_csrf` cookie is `seed`.
fn seed_csrf(ctx: &AppContext, seed: &str) -> String {
    ctx.signer
        .sign_message(format!("pinhole-login-csrf:{seed}").as_bytes())
}

/// Compares without leaking where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The bearer token of `Authorization`, when there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Whom `token` speaks for, as a visitor; `None` when it is not a live
/// access token or the users role cannot say.
async fn visitor(ctx: &AppContext, token: &str) -> Option<Visitor> {
    let principal = ctx.clients.users.verify_token(token).await.ok()??;
    let username = ctx
        .clients
        .users
        .cards(&[principal.user_id])
        .await
        .ok()
        .and_then(|cards| cards.into_iter().next())
        .map(|card| card.username)
        .unwrap_or_default();
    Some(Visitor {
        user_id: principal.user_id,
        username,
        token: token.to_owned(),
        csrf: session_csrf(ctx, principal.family_id),
    })
}

/// What a session's cookies came to.
enum Resolved {
    /// Logged in, perhaps with refreshed cookies to set.
    In(Visitor, Vec<HeaderValue>),
    /// The cookies no longer work: clear them.
    Out,
}

async fn resolve(ctx: &AppContext, access: &str, refresh: Option<&str>, ip: IpAddr) -> Resolved {
    if let Some(visitor) = visitor(ctx, access).await {
        return Resolved::In(visitor, Vec::new());
    }
    let Some(refresh) = refresh else {
        return Resolved::Out;
    };
    #[derive(Serialize)]
    struct Refresh<'a> {
        refresh_token: &'a str,
    }
    let request = ApiRequest::new(Method::POST, "/api/v1/sessions/refresh", ip).json(&Refresh {
        refresh_token: refresh,
    });
    let Ok(answer) = ctx.clients.api.send("users", request).await else {
        return Resolved::Out;
    };
    let Ok(session) = answer.read::<Session>() else {
        return Resolved::Out;
    };
    match visitor(ctx, &session.access_token).await {
        Some(visitor) => Resolved::In(visitor, session.cookies(ctx)),
        None => Resolved::Out,
    }
}

/// Middleware of the pages: the visitor of the session cookies (refreshed
/// when needed) in the request's extensions. A request with an
/// `Authorization` header is left to it.
pub async fn sessions(
    State(ctx): State<Arc<AppContext>>,
    mut request: Request,
    next: Next,
) -> Response {
    let mut set = Vec::new();
    if bearer(request.headers()).is_none() {
        let cookies = Cookies::of(request.headers());
        if let Some(access) = cookies.get(SESSION_COOKIE) {
            let refresh = cookies.get(REFRESH_COOKIE);
            let ClientIp(ip) = ClientIp::of(
                request.headers(),
                request.extensions(),
                &ctx.settings.trusted_proxies,
            );
            match resolve(&ctx, access, refresh, ip).await {
                Resolved::In(visitor, cookies) => {
                    request.extensions_mut().insert(visitor);
                    set = cookies;
                }
                Resolved::Out => set = cleared(&ctx),
            }
        }
    }
    let mut response = next.run(request).await;
    for value in set {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// The visitor of a page: the session cookie's, or the bearer token's.
pub struct Viewer(pub Option<Visitor>);

impl<S: Send + Sync> FromRequestParts<S> for Viewer
where
    AppContext: FromRef<S>,
{
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        if let Some(visitor) = parts.extensions.get::<Visitor>() {
            return Ok(Self(Some(visitor.clone())));
        }
        let Some(token) = bearer(&parts.headers) else {
            return Ok(Self(None));
        };
        let ctx = AppContext::from_ref(state);
        match visitor(&ctx, token).await {
            Some(visitor) => Ok(Self(Some(visitor))),
            None => Err(pinhole_http::invalid_token().into_response()),
        }
    }
}

impl Viewer {
    pub fn id(&self) -> Option<Uuid> {
        self.0.as_ref().map(|v| v.user_id)
    }
}

/// A local path to go back to: `/…`, never another site (`//host`).
pub fn local_path(next: Option<&str>) -> Option<String> {
    let next = next?.trim();
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control);
    ok.then(|| next.to_owned())
}

/// 303 to `to`, with `cookies` set.
fn see_other(to: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut response = (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, to.to_owned()),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
    )
        .into_response();
    for value in cookies {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// To the log-in page, to come back to `next` after.
fn log_in_first(next: &str) -> Response {
    let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    see_other(&format!("/login?next={next}"), Vec::new())
}

/// Whether the request's `Origin`, when it has one, is this site.
fn same_origin(ctx: &AppContext, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    let origin_host = match (origin.host_str(), origin.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return false,
    };
    if let Some(public) = &ctx.settings.public_url
        && public.host_str() == origin.host_str()
        && public.port_or_known_default() == origin.port_or_known_default()
    {
        return true;
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|host| host.eq_ignore_ascii_case(&origin_host))
}

/// 403: a form that did not come from one of our pages (or is too old).
fn forged() -> Response {
    html_response(
        StatusCode::FORBIDDEN,
        forms::problem(
            "Form expired",
            "This form could not be checked: it expired or came from another site. Go back, reload the page and try again.",
        )
        .into_string(),
    )
}

/// The fields of a form body.
fn fields(body: &Bytes) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The visitor of an action, checked: logged in and the form's CSRF token
/// theirs. Otherwise the answer to give.
fn acting(
    ctx: &AppContext,
    viewer: Viewer,
    headers: &HeaderMap,
    csrf: Option<&str>,
    back: &str,
) -> Result<Visitor, Box<Response>> {
    let Some(visitor) = viewer.0 else {
        return Err(Box::new(log_in_first(back)));
    };
    if !same_origin(ctx, headers) || !csrf.is_some_and(|c| same(c, &visitor.csrf)) {
        return Err(Box::new(forged()));
    }
    Ok(visitor)
}

/// The answer to an action the role refused: the reason, with a way back.
fn refused(answer: &ApiAnswer, what: &str, back: &str) -> Response {
    let refusal = answer.refusal();
    let response = html_response(
        answer.status,
        forms::failed(what, &refusal, back).into_string(),
    );
    with_retry_after(response, answer)
}

fn unavailable(what: &str, back: &str) -> Response {
    let refusal = Refusal {
        message: "the service is unavailable right now; try again shortly".to_owned(),
        ..Refusal::default()
    };
    html_response(
        StatusCode::SERVICE_UNAVAILABLE,
        forms::failed(what, &refusal, back).into_string(),
    )
}

// Log in, sign up, log out.

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// The seed of the log-in forms' CSRF token: the browser's, or a new one to
/// set.
fn seed(ctx: &AppContext, headers: &HeaderMap) -> (String, Vec<HeaderValue>) {
    if let Some(seed) = Cookies::of(headers).get(CSRF_COOKIE) {
        return (seed.to_owned(), Vec::new());
    }
    let seed = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let set = vec![cookie(ctx, CSRF_COOKIE, &seed, 7 * 24 * 3600)];
    (seed, set)
}

/// A page that is not to be stored, with `cookies` set.
fn fresh(status: StatusCode, body: String, cookies: Vec<HeaderValue>) -> Response {
    let mut response = html_response(status, body);
    for value in cookies {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Whether a log-in form's token matches the browser's seed cookie.
fn seeded(ctx: &AppContext, headers: &HeaderMap, csrf: Option<&str>) -> bool {
    let Some(seed) = Cookies::of(headers).get(CSRF_COOKIE) else {
        return false;
    };
    same_origin(ctx, headers) && csrf.is_some_and(|c| same(c, &seed_csrf(ctx, seed)))
}

/// `GET /login`.
pub async fn login_page(
    State(ctx): State<AppContext>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query: NextQuery =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
    let next = local_path(query.next.as_deref()).unwrap_or_else(|| "/".to_owned());
    if viewer.0.is_some() {
        return see_other(&next, Vec::new());
    }
    let (seed, set) = seed(&ctx, &headers);
    let form = forms::LogInForm {
        csrf: &seed_csrf(&ctx, &seed),
        next: &next,
        username: "",
        problem: None,
    };
    fresh(StatusCode::OK, forms::log_in(&form).into_string(), set)
}

#[derive(Serialize)]
struct Credentials<'a> {
    login: &'a str,
    password: &'a str,
}

/// Logs in to the users role; the session, or the answer that refused it.
async fn open_session(
    ctx: &AppContext,
    ip: IpAddr,
    login: &str,
    password: &str,
) -> Result<Result<Session, ApiAnswer>, pinhole_http::ClientError> {
    let request = ApiRequest::new(Method::POST, "/api/v1/sessions", ip)
        .json(&Credentials { login, password });
    let answer = ctx.clients.api.send("users", request).await?;
    Ok(match answer.read::<Session>() {
        Ok(session) => Ok(session),
        Err(_) => Err(answer),
    })
}

/// The status of a form shown again after the role refused it: the
/// role's own when the request was at fault, 503 when the role was.
fn form_status(role: StatusCode) -> StatusCode {
    if role.is_client_error() {
        role
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    }
}

/// `response` with the `Retry-After` of the role's answer, if any.
fn with_retry_after(mut response: Response, answer: &ApiAnswer) -> Response {
    if let Some(value) = answer
        .retry_after
        .as_deref()
        .and_then(|v| HeaderValue::from_str(v).ok())
    {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `POST /login`: `username` (or email), `password`, `csrf`, `next`.
pub async fn log_in(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = fields(&body);
    let csrf = field(&fields, "csrf");
    if !seeded(&ctx, &headers, csrf) {
        return forged();
    }
    let next = local_path(field(&fields, "next")).unwrap_or_else(|| "/".to_owned());
    let username = field(&fields, "username").unwrap_or_default().trim();
    let password = field(&fields, "password").unwrap_or_default();
    let again = |status: StatusCode, problem: &str| {
        let form = forms::LogInForm {
            csrf: csrf.unwrap_or_default(),
            next: &next,
            username,
            problem: Some(problem),
        };
        html_response(status, forms::log_in(&form).into_string())
    };
    match open_session(&ctx, ip, username, password).await {
        Ok(Ok(session)) => see_other(&next, session.cookies(&ctx)),
        Ok(Err(answer)) => {
            let refusal = answer.refusal();
            let message = if answer.status == StatusCode::UNAUTHORIZED {
                "That username and password do not match an account.".to_owned()
            } else {
                refusal.message
            };
            // 401 is for `WWW-Authenticate` challenges; a form that did
            // not do is 422, as a form with a wrong field.
            let status = match answer.status {
                StatusCode::UNAUTHORIZED => StatusCode::UNPROCESSABLE_ENTITY,
                s => form_status(s),
            };
            with_retry_after(again(status, &message), &answer)
        }
        Err(e) => {
            tracing::error!(error = %crate::assemble::chain(&e), "log-in is unavailable");
            again(
                StatusCode::SERVICE_UNAVAILABLE,
                "Logging in is unavailable right now; try again shortly.",
            )
        }
    }
}

/// `GET /signup`.
pub async fn signup_page(
    State(ctx): State<AppContext>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query: NextQuery =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
    let next = local_path(query.next.as_deref()).unwrap_or_else(|| "/".to_owned());
    if viewer.0.is_some() {
        return see_other(&next, Vec::new());
    }
    let (seed, set) = seed(&ctx, &headers);
    let form = forms::SignUpForm {
        csrf: &seed_csrf(&ctx, &seed),
        next: &next,
        ..forms::SignUpForm::default()
    };
    fresh(StatusCode::OK, forms::sign_up(&form).into_string(), set)
}

#[derive(Serialize)]
struct NewAccount<'a> {
    username: &'a str,
    email: &'a str,
    password: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
}

/// `POST /signup`: `username`, `email`, `password`, `display_name`,
/// `csrf`, `next`. Creates the account, then logs in.
pub async fn sign_up(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = fields(&body);
    let csrf = field(&fields, "csrf");
    if !seeded(&ctx, &headers, csrf) {
        return forged();
    }
    let next = local_path(field(&fields, "next")).unwrap_or_else(|| "/".to_owned());
    let username = field(&fields, "username").unwrap_or_default().trim();
    let email = field(&fields, "email").unwrap_or_default().trim();
    let password = field(&fields, "password").unwrap_or_default();
    let display_name = field(&fields, "display_name")
        .map(str::trim)
        .filter(|d| !d.is_empty());
    let again = |status: StatusCode, refusal: Refusal| {
        let form = forms::SignUpForm {
            csrf: csrf.unwrap_or_default(),
            next: &next,
            username,
            email,
            display_name: display_name.unwrap_or_default(),
            problem: Some(refusal),
        };
        html_response(status, forms::sign_up(&form).into_string())
    };
    let request = ApiRequest::new(Method::POST, "/api/v1/accounts", ip).json(&NewAccount {
        username,
        email,
        password,
        display_name,
    });
    let down = || {
        again(
            StatusCode::SERVICE_UNAVAILABLE,
            Refusal {
                message: "Signing up is unavailable right now; try again shortly.".to_owned(),
                ..Refusal::default()
            },
        )
    };
    let answer = match ctx.clients.api.send("users", request).await {
        Ok(answer) => answer,
        Err(e) => {
            tracing::error!(error = %crate::assemble::chain(&e), "sign-up is unavailable");
            return down();
        }
    };
    if !answer.status.is_success() {
        let status = form_status(answer.status);
        return with_retry_after(again(status, answer.refusal()), &answer);
    }
    match open_session(&ctx, ip, username, password).await {
        Ok(Ok(session)) => see_other(&next, session.cookies(&ctx)),
        // The account exists; logging in can be tried on its own.
        _ => see_other(&format!("/login?next={}", encode(&next)), Vec::new()),
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `POST /logout`: ends the session (its refresh token too), clears the
/// cookies.
pub async fn log_out(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    viewer: Viewer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fields = fields(&body);
    let Some(visitor) = viewer.0 else {
        return see_other("/", cleared(&ctx));
    };
    if !same_origin(&ctx, &headers)
        || !field(&fields, "csrf").is_some_and(|c| same(c, &visitor.csrf))
    {
        return forged();
    }
    let request =
        ApiRequest::new(Method::DELETE, "/api/v1/sessions/current", ip).token(Some(&visitor.token));
    if let Err(e) = ctx.clients.api.send("users", request).await {
        tracing::warn!(error = %crate::assemble::chain(&e), "the session could not be ended; its cookies are cleared");
    }
    see_other("/", cleared(&ctx))
}

// Like, comment, follow.

/// `POST /p/{id}/like` and `/p/{id}/unlike`.
async fn like_or_unlike(
    ctx: AppContext,
    ip: IpAddr,
    viewer: Viewer,
    headers: HeaderMap,
    id: String,
    body: Bytes,
    method: Method,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return html_response(
            StatusCode::NOT_FOUND,
            crate::pages::not_found().into_string(),
        );
    };
    let back = format!("/p/{id}");
    let fields = fields(&body);
    let visitor = match acting(&ctx, viewer, &headers, field(&fields, "csrf"), &back) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let request = ApiRequest::new(method, format!("/api/v1/images/{id}/like"), ip)
        .token(Some(&visitor.token));
    match ctx.clients.api.send("images", request).await {
        Ok(answer) if answer.status.is_success() => {
            see_other(&format!("{back}#like-form"), Vec::new())
        }
        Ok(answer) => refused(&answer, "like this photo", &back),
        Err(_) => unavailable("like this photo", &back),
    }
}

pub async fn like(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    viewer: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    like_or_unlike(ctx, ip, viewer, headers, id, body, Method::POST).await
}

pub async fn unlike(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    viewer: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    like_or_unlike(ctx, ip, viewer, headers, id, body, Method::DELETE).await
}

#[derive(Serialize)]
struct NewComment<'a> {
    body: &'a str,
}

/// `POST /p/{id}/comments`: `text`, `csrf`.
pub async fn comment(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    viewer: Viewer,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(id) = id.parse::<Uuid>() else {
        return html_response(
            StatusCode::NOT_FOUND,
            crate::pages::not_found().into_string(),
        );
    };
    let back = format!("/p/{id}");
    let fields = fields(&body);
    let visitor = match acting(&ctx, viewer, &headers, field(&fields, "csrf"), &back) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let text = field(&fields, "text").unwrap_or_default();
    let request = ApiRequest::new(Method::POST, format!("/api/v1/images/{id}/comments"), ip)
        .token(Some(&visitor.token))
        .json(&NewComment { body: text });
    match ctx.clients.api.send("images", request).await {
        Ok(answer) if answer.status.is_success() => {
            see_other(&format!("{back}#comments-h"), Vec::new())
        }
        Ok(answer) => refused(&answer, "comment", &back),
        Err(_) => unavailable("comment", &back),
    }
}

/// `POST /u/{username}/follow` and `/u/{username}/unfollow`: `csrf`, and
/// `next`, the page to go back to (the profile by default).
async fn follow_or_unfollow(
    ctx: AppContext,
    ip: IpAddr,
    viewer: Viewer,
    headers: HeaderMap,
    username: String,
    body: Bytes,
    method: Method,
) -> Response {
    let fields = fields(&body);
    let profile = format!("/u/{}", encode(&username));
    let back = local_path(field(&fields, "next")).unwrap_or(profile);
    let visitor = match acting(&ctx, viewer, &headers, field(&fields, "csrf"), &back) {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let path = format!("/api/v1/users/{}/follow", encode(&username));
    let request = ApiRequest::new(method, path, ip).token(Some(&visitor.token));
    match ctx.clients.api.send("users", request).await {
        Ok(answer) if answer.status.is_success() => see_other(&back, Vec::new()),
        Ok(answer) => refused(&answer, "change whom you follow", &back),
        Err(_) => unavailable("change whom you follow", &back),
    }
}

pub async fn follow(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    viewer: Viewer,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    follow_or_unfollow(ctx, ip, viewer, headers, username, body, Method::POST).await
}

pub async fn unfollow(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    viewer: Viewer,
    Path(username): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    follow_or_unfollow(ctx, ip, viewer, headers, username, body, Method::DELETE).await
}

#[derive(Deserialize)]
struct Profile {
    relationship: Option<Standing>,
}

/// Where `visitor` stands with `username`, as the users role says
/// (`GET /api/v1/users/{username}` with their token).
pub async fn standing(
    ctx: &AppContext,
    visitor: &Visitor,
    username: &str,
    ip: IpAddr,
) -> Option<Standing> {
    let path = format!("/api/v1/users/{}", encode(username));
    let request = ApiRequest::new(Method::GET, path, ip).token(Some(&visitor.token));
    let answer = ctx.clients.api.send("users", request).await.ok()?;
    Some(
        answer
            .read::<Profile>()
            .ok()?
            .relationship
            .unwrap_or_default(),
    )
}

// Upload.

#[derive(Debug, Default, Deserialize)]
pub struct CsrfQuery {
    csrf: Option<String>,
}

/// `GET /upload`.
pub async fn upload_page(viewer: Viewer) -> Response {
    let Some(visitor) = viewer.0 else {
        return log_in_first("/upload");
    };
    html_response(StatusCode::OK, forms::upload(&visitor, None).into_string())
}

#[derive(Deserialize)]
struct Accepted {
    image_id: Uuid,
}

/// `POST /upload?csrf=…`: the form's `multipart/form-data` body (`file`,
/// `title`, `description`, `alt_text`, `visibility`, `location`) goes to
/// `POST /api/v1/images` as it came; then to the new image's page. The
/// token is in the query so that the body passes through unread.
pub async fn upload(
    State(ctx): State<AppContext>,
    ClientIp(ip): ClientIp,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let query: CsrfQuery =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or_default()).unwrap_or_default();
    let visitor = match acting(&ctx, viewer, &headers, query.csrf.as_deref(), "/upload") {
        Ok(v) => v,
        Err(response) => return *response,
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut request =
        ApiRequest::new(Method::POST, "/api/v1/images", ip).token(Some(&visitor.token));
    request.content_type = content_type;
    request.body = body;
    match ctx.clients.api.send("images", request).await {
        Ok(answer) => match answer.read::<Accepted>() {
            Ok(accepted) => see_other(&format!("/p/{}", accepted.image_id), Vec::new()),
            Err(refusal) => {
                let status = form_status(answer.status);
                html_response(
                    status,
                    forms::upload(&visitor, Some(&refusal)).into_string(),
                )
            }
        },
        Err(e) => {
            tracing::error!(error = %crate::assemble::chain(&e), "uploading is unavailable");
            let refusal = Refusal {
                message: "Uploading is unavailable right now; try again shortly.".to_owned(),
                ..Refusal::default()
            };
            html_response(
                StatusCode::SERVICE_UNAVAILABLE,
                forms::upload(&visitor, Some(&refusal)).into_string(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_gone_back_to() {
        assert_eq!(local_path(Some("/p/1?x=2")).as_deref(), Some("/p/1?x=2"));
        for bad in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "p/1",
            "",
        ] {
            assert_eq!(local_path(Some(bad)), None, "{bad}");
        }
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; pinhole_session=tok"),
        );
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("pinhole_refresh=r"),
        );
        let cookies = Cookies::of(&headers);
        assert_eq!(cookies.get(SESSION_COOKIE), Some("tok"));
        assert_eq!(cookies.get(REFRESH_COOKIE), Some("r"));
        assert_eq!(cookies.get(CSRF_COOKIE), None);
    }
}
