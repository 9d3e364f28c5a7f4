//! Who may see what: the owner sees everything of theirs; nobody sees across
//! a block (either way); others see ready images only, `followers` ones when
//! they follow the owner (approved), and a private account's images only
//! when they follow it.

use std::collections::{HashMap, HashSet};

use pinhole_http::ApiError;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, Query, SimpleExpr};
use sea_orm::{Condition, ConnectionTrait};

use crate::ImagesError;
use crate::domain::Visibility;
use crate::entity::{account, account_purge, block, follow, image};

/// How a viewer stands to an owner.
#[derive(Debug, Clone, Copy, Default)]
pub struct Relation {
    pub is_owner: bool,
    /// One of them blocks the other.
    pub blocked: bool,
    /// The viewer is an approved follower.
    pub follows: bool,
}

/// An owner whose card has not reached this role's read model yet (a new
/// account, within the users role's event lag), as its owner sees it:
/// nobody else is shown its images until the card arrives.
pub fn card_not_yet_known(id: Uuid) -> account::Model {
    account::Model {
        id,
        username: String::new(),
        display_name: None,
        avatar_image_id: None,
        is_private: true,
    }
}

pub fn image_not_found() -> ApiError {
    ApiError::not_found(ImagesError::ImageNotFound, "there is no such image")
}

pub async fn relation<C: ConnectionTrait>(
    conn: &C,
    viewer: Option<Uuid>,
    owner: Uuid,
) -> Result<Relation, ApiError> {
    let Some(viewer) = viewer else {
        return Ok(Relation::default());
    };
    if viewer == owner {
        return Ok(Relation {
            is_owner: true,
            ..Relation::default()
        });
    }
    let blocked = block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    block::Column::BlockerId
                        .eq(owner)
                        .and(block::Column::BlockedId.eq(viewer)),
                )
                .add(
                    block::Column::BlockerId
                        .eq(viewer)
                        .and(block::Column::BlockedId.eq(owner)),
                ),
        )
        .count(conn)
        .await?
        > 0;
    let follows = follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(viewer))
        .filter(follow::Column::FolloweeId.eq(owner))
        .filter(follow::Column::Status.eq(follow::Status::Active))
        .count(conn)
        .await?
        > 0;
    Ok(Relation {
        is_owner: false,
        blocked,
        follows,
    })
}

/// How `viewer` stands to each of `owners`, as [`relation`] finds it one
/// by one, in two queries.
pub async fn relations<C: ConnectionTrait>(
    conn: &C,
    viewer: Option<Uuid>,
    owners: &HashSet<Uuid>,
) -> Result<HashMap<Uuid, Relation>, ApiError> {
    let Some(viewer) = viewer else {
        return Ok(HashMap::new());
    };
    let others: Vec<Uuid> = owners.iter().copied().filter(|o| *o != viewer).collect();
    let mut out: HashMap<Uuid, Relation> = HashMap::new();
    if owners.contains(&viewer) {
        out.insert(
            viewer,
            Relation {
                is_owner: true,
                ..Relation::default()
            },
        );
    }
    if others.is_empty() {
        return Ok(out);
    }
    for b in block::Entity::find()
        .filter(
            Condition::any()
                .add(
                    block::Column::BlockerId
                        .is_in(others.iter().copied())
                        .and(block::Column::BlockedId.eq(viewer)),
                )
                .add(
                    block::Column::BlockerId
                        .eq(viewer)
                        .and(block::Column::BlockedId.is_in(others.iter().copied())),
                ),
        )
        .all(conn)
        .await?
    {
        let other = if b.blocker_id == viewer {
            b.blocked_id
        } else {
            b.blocker_id
        };
        out.entry(other).or_default().blocked = true;
    }
    for f in follow::Entity::find()
        .filter(follow::Column::FollowerId.eq(viewer))
        .filter(follow::Column::FolloweeId.is_in(others.iter().copied()))
        .filter(follow::Column::Status.eq(follow::Status::Active))
        .all(conn)
        .await?
    {
        out.entry(f.followee_id).or_default().follows = true;
    }
    Ok(out)
}

/// Whether the viewer related by `rel` may see `img` of `owner`.
pub fn can_see(img: &image::Model, owner: &account::Model, rel: Relation) -> bool {
    if rel.is_owner {
        return true;
    }
    if rel.blocked || img.status != image::READY {
        return false;
    }
    match img.visibility {
        Visibility::Public => !owner.is_private || rel.follows,
        Visibility::Followers => rel.follows,
        Visibility::Private => false,
    }
}

/// The image with its owner, when `viewer` may see it; 404 otherwise.
pub async fn visible_image<C: ConnectionTrait>(
    conn: &C,
    viewer: Option<Uuid>,
    id: Uuid,
) -> Result<(image::Model, account::Model, Relation), ApiError> {
    let img = image::Entity::find_by_id(id)
        .one(conn)
        .await?
        .ok_or_else(image_not_found)?;
    let owner = match account::Entity::find_by_id(img.owner_id).one(conn).await? {
        Some(owner) => owner,
        None if viewer == Some(img.owner_id) => card_not_yet_known(img.owner_id),
        None => return Err(image_not_found()),
    };
    let rel = relation(conn, viewer, img.owner_id).await?;
    if !can_see(&img, &owner, rel) {
        return Err(image_not_found());
    }
    Ok((img, owner, rel))
}

/// The image when `user` owns it; 404 when it is absent or hidden, 403 when
/// it is visible but someone else's.
pub async fn owned_image<C: ConnectionTrait>(
    conn: &C,
    user: Uuid,
    id: Uuid,
) -> Result<image::Model, ApiError> {
    let (img, _, rel) = visible_image(conn, Some(user), id).await?;
    if !rel.is_owner {
        return Err(ApiError::forbidden("only the image's owner may do that"));
    }
    Ok(img)
}

/// Images whose owner `viewer` follows (approved).
pub fn followees(viewer: Uuid) -> SimpleExpr {
    Expr::col((image::Entity, image::Column::OwnerId)).in_subquery(
        Query::select()
            .column(follow::Column::FolloweeId)
            .from(follow::Entity)
            .and_where(follow::Column::FollowerId.eq(viewer))
            .and_where(follow::Column::Status.eq(follow::Status::Active))
            .to_owned(),
    )
}

fn public_accounts() -> SimpleExpr {
    Expr::col((image::Entity, image::Column::OwnerId)).in_subquery(
        Query::select()
            .column(account::Column::Id)
            .from(account::Entity)
            .and_where(account::Column::IsPrivate.eq(false))
            .to_owned(),
    )
}

/// Owners that block the viewer or that the viewer blocks are left out.
pub fn not_blocked(viewer: Uuid) -> Condition {
    not_blocked_by(viewer, (image::Entity, image::Column::OwnerId))
}

/// Rows whose `col` (a user id) is on either side of a block with `viewer`
/// are left out.
pub fn not_blocked_by<C: sea_orm::sea_query::IntoColumnRef + Clone>(
    viewer: Uuid,
    col: C,
) -> Condition {
    Condition::all()
        .add(
            Expr::col(col.clone()).not_in_subquery(
                Query::select()
                    .column(block::Column::BlockerId)
                    .from(block::Entity)
                    .and_where(block::Column::BlockedId.eq(viewer))
                    .to_owned(),
            ),
        )
        .add(
            Expr::col(col).not_in_subquery(
                Query::select()
                    .column(block::Column::BlockedId)
                    .from(block::Entity)
                    .and_where(block::Column::BlockerId.eq(viewer))
                    .to_owned(),
            ),
        )
}

/// The images of others that `viewer` may see, as a query condition (the
/// same rules as [`can_see`]).
pub fn others_visible(viewer: Option<Uuid>) -> Condition {
    let ready = image::Column::Status.eq(image::READY);
    let public = image::Column::Visibility.eq(Visibility::Public);
    match viewer {
        None => Condition::all()
            .add(ready)
            .add(public)
            .add(public_accounts()),
        Some(viewer) => Condition::all()
            .add(ready)
            .add(image::Column::OwnerId.ne(viewer))
            .add(not_blocked(viewer))
            .add(
                Condition::any()
                    .add(Condition::all().add(public.clone()).add(public_accounts()))
                    .add(
                        Condition::all()
                            .add(
                                image::Column::Visibility
                                    .is_in([Visibility::Public, Visibility::Followers]),
                            )
                            .add(followees(viewer)),
                    ),
            ),
    }
}

/// Whether `user_id` is a deleted account (its images go, nothing more is
/// taken for it).
pub async fn deleted<C: ConnectionTrait>(conn: &C, user_id: Uuid) -> Result<bool, DbErr> {
    Ok(account_purge::Entity::find_by_id(user_id)
        .one(conn)
        .await?
        .is_some())
}
