//! What other roles ask the users role: many users at once, whose a token
//! is, and every account, follow and block page by page ([`export`], for a
//! role that rebuilds what it keeps of them). Over HTTP under
//! `/internal/v1` (which a public proxy should not expose;
//! `PINHOLE_INTERNAL_TOKEN` guards it) for roles in other processes, and
//! through [`InProcessUsers`] for roles in this one. Neither answers
//! anything private (no emails).

mod export;

pub(crate) use export::{
    __path_export_accounts, __path_export_blocks, __path_export_follows, export_accounts,
    export_blocks, export_follows,
};

use axum::Json;
use axum::extract::State;
use pinhole_auth::{Principal, Tokens};
use pinhole_http::clients::{
    AccountCard, ClientError, Edge, EdgeKind, TokenVerification, VerifyTokenRequest,
    clamp_export_limit,
};
use pinhole_http::{ApiError, ApiJson, AppContext, UsersClient};
use sea_orm::DatabaseConnection;
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::entity::user;
use crate::views::UserSummary;

/// Ids asked for at most per call.
const MAX_LOOKUP: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct Lookup {
    /// At most 500.
    #[schema(max_items = 500)]
    ids: Vec<Uuid>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Found {
    /// The users that exist, in the order asked; unknown ids are left out.
    users: Vec<UserSummary>,
}

/// Many users by id in one call (for the gateway and other roles).
#[utoipa::path(post, path = "/internal/v1/users/lookup", tag = "internal", request_body = Lookup,
    responses(
        (status = 200, body = Found),
        (status = 422, description = "Too many ids", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn lookup(
    State(ctx): State<AppContext>,
    ApiJson(body): ApiJson<Lookup>,
) -> Result<Json<Found>, ApiError> {
    if body.ids.len() > MAX_LOOKUP {
        return Err(ApiError::field(
            "ids",
            format!("at most {MAX_LOOKUP} ids per call"),
        ));
    }
    let users = in_order(&ctx.backends.db, &body.ids).await?;
    Ok(Json(Found {
        users: users.iter().map(UserSummary::from).collect(),
    }))
}

/// The users of `ids` that exist, in the order asked.
async fn in_order(db: &DatabaseConnection, ids: &[Uuid]) -> Result<Vec<user::Model>, DbErr> {
    let mut users = user::Entity::find()
        .filter(user::Column::Id.is_in(ids.to_vec()))
        .all(db)
        .await?;
    Ok(ids
        .iter()
        .filter_map(|id| {
            let at = users.iter().position(|u| u.id == *id)?;
            Some(users.swap_remove(at))
        })
        .collect())
}

/// Whose an access token is (and until when), for roles in other
/// processes; they may cache the answer until then.
#[utoipa::path(post, path = "/internal/v1/tokens/verify", tag = "internal", request_body = VerifyTokenRequest,
    responses(
        (status = 200, body = TokenVerification),
        (status = 401, description = "Not a live access token (`invalid-token`)", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn verify_token(
    State(ctx): State<AppContext>,
    ApiJson(body): ApiJson<VerifyTokenRequest>,
) -> Result<Json<TokenVerification>, ApiError> {
    match ctx.tokens.verify_live(body.token.trim()).await {
        Ok(Some(verified)) => Ok(Json(TokenVerification::from(&verified))),
        Ok(None) => Err(pinhole_http::invalid_token()),
        Err(e) => Err(ApiError::unavailable(e)),
    }
}

/// The users role, asked by roles hosted in the same process.
#[derive(Clone)]
pub struct InProcessUsers {
    tokens: Tokens,
    db: DatabaseConnection,
}

impl InProcessUsers {
    /// Over the role's token store and database.
    pub fn new(tokens: Tokens, db: DatabaseConnection) -> Self {
        Self { tokens, db }
    }
}

#[async_trait::async_trait]
impl UsersClient for InProcessUsers {
    async fn verify_token(&self, token: &str) -> Result<Option<Principal>, ClientError> {
        self.tokens
            .verify(token)
            .await
            .map_err(|e| ClientError::failed(crate::ROLE, e))
    }

    async fn cards(&self, ids: &[Uuid]) -> Result<Vec<AccountCard>, ClientError> {
        let users = in_order(&self.db, ids)
            .await
            .map_err(|e| ClientError::failed(crate::ROLE, e))?;
        Ok(users.iter().map(crate::card).collect())
    }

    async fn export_accounts(
        &self,
        after: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<AccountCard>, ClientError> {
        let users = export::accounts(&self.db, after, clamp_export_limit(limit))
            .await
            .map_err(|e| ClientError::failed(crate::ROLE, e))?;
        Ok(users.iter().map(crate::card).collect())
    }

    async fn export_edges(
        &self,
        kind: EdgeKind,
        after: Option<(Uuid, Uuid)>,
        limit: u32,
    ) -> Result<Vec<Edge>, ClientError> {
        export::edges(&self.db, kind, after, clamp_export_limit(limit))
            .await
            .map_err(|e| ClientError::failed(crate::ROLE, e))
    }
}
