//! View counts: the gateway's `page.viewed` events of detail pages, counted
//! per image into `image_views`. Each view counts once: the topic is read
//! from the positions stored in `image_view_offsets`, which are written in
//! the same transaction as the counts they cover (so a crash before the
//! commit counts the batch again from scratch, and after it, never).

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use pinhole_bus::{Offsets, Record};
use pinhole_events::pageviews::PageViewed;
use pinhole_events::{Event, topics};
use pinhole_http::AppContext;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, EntityTrait};
use uuid::Uuid;

use crate::entity::{image_view, image_view_offset};

/// Whose positions these are, for lag monitoring.
const GROUP: &str = "images-views";
/// Records per transaction at most.
const BATCH: usize = 1000;

/// Counts views until the process ends, starting again (from the stored
/// positions) after a failure.
pub async fn run(ctx: AppContext) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match follow(&ctx).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "view counting stopped; starting again from its stored positions");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum Failed {
    #[error("database: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("event bus: {0}")]
    Bus(#[from] pinhole_bus::BusError),
}

async fn stored(ctx: &AppContext) -> Result<Offsets, Failed> {
    Ok(image_view_offset::Entity::find()
        .all(&ctx.backends.db)
        .await?
        .into_iter()
        .map(|o| ((o.topic, o.partition), o.next_offset))
        .collect())
}

async fn follow(ctx: &AppContext) -> Result<(), Failed> {
    let offsets = stored(ctx).await?;
    let mut sub = ctx
        .backends
        .bus
        .assign(GROUP, &[topics::PAGE_VIEWS], &offsets)
        .await?;
    loop {
        let Some(first) = sub.next(Duration::from_secs(1)).await? else {
            continue;
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match sub.next(Duration::from_millis(20)).await? {
                Some(r) => batch.push(r),
                None => break,
            }
        }
        apply(ctx, &batch).await?;
        if let Some(last) = batch.last() {
            // Positions for lag monitoring only; the stored ones decide.
            let _ = sub.commit(last).await;
        }
    }
}

/// Of a `page.viewed` envelope, what counting reads (the rest is skipped,
/// not decoded: views come by the thousand).
#[derive(serde::Deserialize)]
struct Counted<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    data: CountedView<'a>,
}

#[derive(serde::Deserialize)]
struct CountedView<'a> {
    #[serde(borrow)]
    page: Cow<'a, str>,
    image_id: Option<Uuid>,
}

/// The image a record counts a view of, if it does.
fn viewed(record: &Record) -> Option<Uuid> {
    let counted: Counted<'_> = serde_json::from_slice(&record.payload).ok()?;
    (counted.kind == <PageViewed as Event>::TYPE && counted.data.page == "image")
        .then_some(counted.data.image_id)
        .flatten()
}

/// Adds `batch`'s views to the counts and moves the positions past it, in
/// one transaction.
async fn apply(ctx: &AppContext, batch: &[Record]) -> Result<(), Failed> {
    let mut counts: HashMap<Uuid, i64> = HashMap::new();
    let mut next: HashMap<(String, i32), i64> = HashMap::new();
    for record in batch {
        if let Some(id) = viewed(record) {
            *counts.entry(id).or_default() += 1;
        }
        next.insert((record.topic.clone(), record.partition), record.offset + 1);
    }
    let txn = pinhole_db::begin_write(&ctx.backends.db).await?;
    if !counts.is_empty() {
        let rows = counts
            .into_iter()
            .map(|(image_id, views)| image_view::ActiveModel {
                image_id: Set(image_id),
                views: Set(views),
            });
        image_view::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(image_view::Column::ImageId)
                    .value(
                        image_view::Column::Views,
                        Expr::col((image_view::Entity, image_view::Column::Views))
                            .add(Expr::cust("excluded.views")),
                    )
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
    }
    let positions =
        next.into_iter().map(
            |((topic, partition), offset)| image_view_offset::ActiveModel {
                topic: Set(topic),
                partition: Set(partition),
                next_offset: Set(offset),
            },
        );
    image_view_offset::Entity::insert_many(positions)
        .on_conflict(
            OnConflict::columns([
                image_view_offset::Column::Topic,
                image_view_offset::Column::Partition,
            ])
            .update_column(image_view_offset::Column::NextOffset)
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// The view counts of `ids` (those never viewed left out).
pub async fn of<C: sea_orm::ConnectionTrait>(
    conn: &C,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, u64>, sea_orm::DbErr> {
    use sea_orm::{ColumnTrait, QueryFilter};
    Ok(image_view::Entity::find()
        .filter(image_view::Column::ImageId.is_in(ids.iter().copied()))
        .all(conn)
        .await?
        .into_iter()
        .map(|v| (v.image_id, u64::try_from(v.views).unwrap_or(0)))
        .collect())
}
