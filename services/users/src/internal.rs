//! What other roles ask the users role: many users at once, and whose a
//! token is. Under `/internal/v1`, which a public proxy should not expose;
//! neither answers anything private (no emails).

use axum::Json;
use axum::extract::State;
use pinhole_http::{ApiError, ApiJson, AppContext};
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::entity::user;
use crate::views::UserSummary;

/// Ids asked for at most per call.
const MAX_LOOKUP: usize = 500;

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct Lookup {
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
    let users = user::Entity::find()
        .filter(user::Column::Id.is_in(body.ids.clone()))
        .all(&ctx.backends.db)
        .await?;
    let ordered = body
        .ids
        .iter()
        .filter_map(|id| users.iter().find(|u| u.id == *id).map(UserSummary::from))
        .collect();
    Ok(Json(Found { users: ordered }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct VerifyToken {
    token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Verified {
    user_id: Uuid,
}

/// Whose an access token is, for roles that do not share the database.
#[utoipa::path(post, path = "/internal/v1/tokens/verify", tag = "internal", request_body = VerifyToken,
    responses(
        (status = 200, body = Verified),
        (status = 401, description = "Not a live access token", body = pinhole_http::ErrorBody),
    ))]
pub(crate) async fn verify_token(
    State(ctx): State<AppContext>,
    ApiJson(body): ApiJson<VerifyToken>,
) -> Result<Json<Verified>, ApiError> {
    match ctx.tokens.verify(body.token.trim()).await {
        Ok(Some(principal)) => Ok(Json(Verified {
            user_id: principal.user_id,
        })),
        Ok(None) => Err(pinhole_http::invalid_token()),
        Err(e) => Err(ApiError::unavailable(e)),
    }
}
