//! Keeps the fragment cache (`crate::fragments`) true to the images and
//! users roles' events: each event about an image or an account that
//! changes what anonymous visitors see makes a new generation of it, so
//! every fragment and page showing it is stale, and deletes the fragments
//! keyed by it.
//!
//! | event | stale |
//! |---|---|
//! | `image.updated`, `.published`, `.deleted`, `.processed`, `.processing_failed`, `.edited` | the image |
//! | `comment.created`, `.deleted`, `like.created`, `.removed` (counts, comments) | the image |
//! | `user.updated`, `user.deleted` | the account (its card, its images' records, its comments) |
//!
//! Follows and blocks change only what signed-in viewers see, which is
//! never cached. The consumer group is the role's own ([`GROUP`]):
//! gateway processes sharing a cache share the work. (Gateways with
//! in-process caches each keep their own cache; with several of them, use
//! Redis, or accept the TTLs.)

use std::time::Duration;

use chrono::Utc;
use pinhole_bus::{HandleError, Record};
use pinhole_events::images::{
    CommentCreated, CommentDeleted, Edited, ImageDeleted, ImagePublished, ImageUpdated,
    LikeCreated, LikeRemoved, Processed, ProcessingFailed,
};
use pinhole_events::users::{UserDeleted, UserUpdated};
use pinhole_events::{DecodeError, Envelope, Event, topics};
use pinhole_http::AppContext;
use tokio::task::JoinHandle;

use crate::fragments::{Dep, Fragments, LONGEST_TTL};

/// The gateway's consumer group.
pub const GROUP: &str = "gateway";
/// The images role shows an image's owner from its own copy of the
/// account, which it updates from the same event a moment later, maybe
/// after this role made the account stale and a page was made again from
/// the old copy: accounts are made stale once more this long after.
const SETTLE: Duration = Duration::from_secs(5);
/// How far the clocks of the machines may differ.
const CLOCK_SKEW: Duration = Duration::from_secs(300);
/// `pinhole_gateway_invalidations_total{kind}`.
const INVALIDATIONS_TOTAL: &str = "pinhole_gateway_invalidations_total";

/// The role's workers: the invalidation consumer.
pub fn background(ctx: &AppContext) -> Vec<JoinHandle<()>> {
    vec![tokio::spawn(run(ctx.clone()))]
}

async fn run(ctx: AppContext) {
    let fragments = Fragments::new(ctx.backends.cache.clone());
    pinhole_bus::consume(
        ctx.backends.bus.clone(),
        GROUP.to_owned(),
        vec![topics::IMAGES, topics::USERS],
        pinhole_db::dead_letters::parking(ctx.backends.db.clone(), ctx.settings.event_max_attempts),
        move |record| {
            let fragments = fragments.clone();
            async move { handle(&fragments, &record).await }
        },
    )
    .await;
}

/// The image or account `event` makes stale, if any.
pub fn stale(event: &Envelope) -> Result<Option<Dep>, DecodeError> {
    let image = |id| Ok(Some(Dep::Image(id)));
    match event.kind.as_str() {
        <ImageUpdated as Event>::TYPE => image(event.decode::<ImageUpdated>()?.image.image_id),
        <ImagePublished as Event>::TYPE => image(event.decode::<ImagePublished>()?.image.image_id),
        <ImageDeleted as Event>::TYPE => image(event.decode::<ImageDeleted>()?.image_id),
        <Processed as Event>::TYPE => image(event.decode::<Processed>()?.image_id),
        <ProcessingFailed as Event>::TYPE => image(event.decode::<ProcessingFailed>()?.image_id),
        <Edited as Event>::TYPE => image(event.decode::<Edited>()?.image_id),
        <CommentCreated as Event>::TYPE => image(event.decode::<CommentCreated>()?.image_id),
        <CommentDeleted as Event>::TYPE => image(event.decode::<CommentDeleted>()?.image_id),
        <LikeCreated as Event>::TYPE => image(event.decode::<LikeCreated>()?.image_id),
        <LikeRemoved as Event>::TYPE => image(event.decode::<LikeRemoved>()?.image_id),
        <UserUpdated as Event>::TYPE => Ok(Some(Dep::User(
            event.decode::<UserUpdated>()?.account.user_id,
        ))),
        <UserDeleted as Event>::TYPE => Ok(Some(Dep::User(event.decode::<UserDeleted>()?.user_id))),
        _ => Ok(None),
    }
}

/// Makes stale what one event changed. Replays only make new generations
/// again: harmless.
#[tracing::instrument(skip_all, fields(topic = %record.topic, partition = record.partition, offset = record.offset))]
async fn handle(fragments: &Fragments, record: &Record) -> Result<(), HandleError> {
    let event = Envelope::from_json(&record.payload)
        .map_err(|e| HandleError::Skip(format!("not an event envelope: {e}")))?;
    let Some(dep) = stale(&event).map_err(|e| HandleError::Skip(e.to_string()))? else {
        return Ok(());
    };
    let age = (Utc::now() - event.time).to_std().unwrap_or_default();
    if age > LONGEST_TTL + CLOCK_SKEW {
        // Whatever was cached before it has expired since.
        return Ok(());
    }
    fragments.bump(dep).await?;
    tracing::debug!(event_id = %event.id, kind = %event.kind, ?dep, "made stale");
    metrics::counter!(INVALIDATIONS_TOTAL, "kind" => match dep {
        Dep::Image(_) => "image",
        Dep::User(_) => "user",
    })
    .increment(1);
    if matches!(dep, Dep::User(_)) && age < SETTLE {
        let fragments = fragments.clone();
        let event_id = event.id;
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE.saturating_sub(age)).await;
            if let Err(e) = fragments.bump(dep).await {
                tracing::warn!(%event_id, ?dep, error = %e, "an account could not be made stale again");
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pinhole_events::OutgoingEvent;
    use pinhole_events::users::AccountCard;
    use uuid::Uuid;

    #[test]
    fn events_name_what_they_make_stale() {
        let id = Uuid::now_v7();
        let like = OutgoingEvent::of(&LikeCreated {
            image_id: id,
            user_id: Uuid::now_v7(),
        })
        .envelope;
        assert_eq!(stale(&like).expect("decodes"), Some(Dep::Image(id)));
        let updated = OutgoingEvent::of(&UserUpdated {
            account: AccountCard {
                user_id: id,
                username: "ann".into(),
                display_name: None,
                avatar_image_id: None,
                is_private: false,
            },
            changed: vec!["display_name".into()],
        })
        .envelope;
        assert_eq!(stale(&updated).expect("decodes"), Some(Dep::User(id)));
        let follow = OutgoingEvent::of(&pinhole_events::users::FollowCreated {
            follower_id: id,
            followee_id: Uuid::now_v7(),
        })
        .envelope;
        assert_eq!(stale(&follow).expect("decodes"), None);
    }
}
