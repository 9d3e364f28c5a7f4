//! Keeps the index up to date from the images and users roles' events.
//!
//! Exactly once: the consumer reads every partition from the offsets
//! stored in the index's last commit (not from the group's committed
//! offsets), applies a batch of records to the read model, rewrites the
//! documents they touch (upserts by id: delete the id's term, add the new
//! document) and commits the index with the batch's offsets in the same
//! commit. A crash before that commit replays the batch onto a read model
//! whose changes are all upserts and deletes by key, and onto an index
//! that has none of it: nothing is lost or doubled. The group's offsets are
//! committed afterwards, for monitoring only.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use pinhole_bus::{Record, Subscription};
use pinhole_events::images::{
    CommentCreated, CommentDeleted, ImageDeleted, ImagePublished, ImageStatus, ImageUpdated,
    ImageUploaded, LikeCreated, LikeRemoved, Processed,
};
use pinhole_events::users::{
    BlockCreated, BlockRemoved, FollowCreated, FollowRemoved, FollowRequested, UserDeleted,
    UserRegistered, UserUpdated,
};
use pinhole_events::{Envelope, Event, topics};
use pinhole_http::AppContext;
use sea_orm::{ConnectionTrait, TransactionTrait};
use tantivy::{IndexWriter, Term};
use uuid::Uuid;

use crate::SearchError;
use crate::engine::{Engine, Generation};
use crate::index::{self, ImageDoc};
use crate::state::State;

/// The topics the index is made from.
pub const TOPICS: &[&str] = &[topics::IMAGES, topics::USERS];
/// Records applied in one commit at most.
const BATCH: usize = 1000;
/// Memory the index writer may buffer.
const WRITER_BUDGET: usize = 64 * 1024 * 1024;

/// Seconds from an image event's time to its commit in the index.
pub const LAG: &str = "pinhole_search_index_lag_seconds";
/// Records applied.
pub const APPLIED: &str = "pinhole_search_records_applied_total";

/// What a batch of records changed.
#[derive(Default)]
pub struct Touched {
    /// Images whose document is to be rebuilt (or removed).
    pub images: BTreeSet<Uuid>,
    /// Accounts whose card changed: their document and their images'.
    pub accounts: BTreeSet<Uuid>,
    /// Accounts gone: their document and their images' documents go.
    pub gone: BTreeSet<Uuid>,
}

/// Runs the indexer until the task is aborted, switching to a new
/// generation when a rebuild names one.
pub async fn run(ctx: AppContext, engine: Arc<Engine>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        let generation = if engine.replaced(&engine.current()) {
            match engine.switch().await {
                Ok(g) => g,
                Err(e) => {
                    tracing::error!(error = %e, "cannot open the new search index generation");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                    continue;
                }
            }
        } else {
            engine.current()
        };
        match follow(&ctx, &engine, &generation).await {
            Ok(()) => backoff = Duration::from_millis(200),
            Err(e) => {
                tracing::warn!(error = %e, generation = %generation.name, "search indexing stopped; starting again from the index's offsets");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Indexes into `generation` until it is replaced (Ok) or something fails.
async fn follow(
    ctx: &AppContext,
    engine: &Engine,
    generation: &Generation,
) -> Result<(), SearchError> {
    let mut writer: Option<IndexWriter> = Some(generation.index.writer(WRITER_BUDGET)?);
    let mut offsets = index::Payload::of(&generation.index)?.offsets();
    let mut sub = ctx
        .backends
        .bus
        .assign(&engine.group, TOPICS, &offsets)
        .await?;
    let result = async {
        loop {
            if engine.replaced(generation) {
                return Ok(());
            }
            let Some(first) = sub.next(Duration::from_millis(500)).await? else {
                continue;
            };
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match sub.next(Duration::from_millis(5)).await? {
                    Some(r) => batch.push(r),
                    None => break,
                }
            }
            let times = apply_batch(generation, &batch, writer.as_mut()).await?;
            for r in &batch {
                offsets.insert((r.topic.clone(), r.partition), r.offset + 1);
            }
            let mut w = writer.take().ok_or(SearchError::Closed)?;
            let to_commit = offsets.clone();
            let (w, committed) = tokio::task::spawn_blocking(move || {
                let r = index::commit(&mut w, &to_commit);
                (w, r)
            })
            .await
            .map_err(|e| SearchError::Internal(e.to_string()))?;
            writer = Some(w);
            committed?;
            generation.reader.reload()?;
            let now = chrono::Utc::now();
            for t in times {
                let lag = (now - t).num_milliseconds().max(0) as f64 / 1000.0;
                metrics::histogram!(LAG).record(lag);
            }
            metrics::counter!(APPLIED).increment(batch.len() as u64);
            commit_group(&mut sub, &batch).await;
        }
    }
    .await;
    let _ = sub.close().await;
    if let Some(w) = writer {
        let _ = tokio::task::spawn_blocking(move || w.wait_merging_threads()).await;
    }
    result
}

/// Records the group's position (for lag monitoring; never read back).
async fn commit_group(sub: &mut Box<dyn Subscription>, batch: &[Record]) {
    let mut last: std::collections::BTreeMap<(String, i32), &Record> = Default::default();
    for r in batch {
        last.insert((r.topic.clone(), r.partition), r);
    }
    for r in last.values() {
        if let Err(e) = sub.commit(r).await {
            tracing::debug!(error = %e, "cannot record the search group's position");
        }
    }
}

/// Applies `batch` to the read model, then rewrites the documents it
/// touched in `writer`. Answers the times of the image events in it.
pub async fn apply_batch(
    generation: &Generation,
    batch: &[Record],
    writer: Option<&mut IndexWriter>,
) -> Result<Vec<chrono::DateTime<chrono::Utc>>, SearchError> {
    let mut touched = Touched::default();
    let mut times = Vec::new();
    let txn = generation.state.db().begin().await?;
    for r in batch {
        let env = match Envelope::from_json(&r.payload) {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(topic = %r.topic, partition = r.partition, offset = r.offset, error = %e, "not an event; skipped");
                continue;
            }
        };
        match apply(&txn, &env, &mut touched).await {
            Ok(true) => {
                if env.kind == <ImagePublished as Event>::TYPE {
                    times.push(env.time);
                }
            }
            Ok(false) => {}
            Err(ApplyError::Db(e)) => return Err(e.into()),
            Err(ApplyError::Decode(e)) => {
                tracing::warn!(topic = %r.topic, partition = r.partition, offset = r.offset, error = %e, "an event that does not match its type; skipped");
                metrics::counter!("pinhole_search_records_skipped_total").increment(1);
            }
        }
    }
    txn.commit().await?;
    if let Some(writer) = writer {
        rewrite(generation, writer, &touched).await?;
    }
    Ok(times)
}

enum ApplyError {
    Db(sea_orm::DbErr),
    Decode(pinhole_events::DecodeError),
}

impl From<sea_orm::DbErr> for ApplyError {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Db(e)
    }
}

impl From<pinhole_events::DecodeError> for ApplyError {
    fn from(e: pinhole_events::DecodeError) -> Self {
        Self::Decode(e)
    }
}

/// Applies one event; whether it was one the index cares about.
async fn apply<C: ConnectionTrait>(
    c: &C,
    env: &Envelope,
    touched: &mut Touched,
) -> Result<bool, ApplyError> {
    match env.kind.as_str() {
        <ImageUploaded as Event>::TYPE => {
            let e: ImageUploaded = env.decode()?;
            State::put_image(c, &e.image).await?;
            touched.images.insert(e.image.image_id);
        }
        <ImageUpdated as Event>::TYPE => {
            let e: ImageUpdated = env.decode()?;
            State::put_image(c, &e.image).await?;
            touched.images.insert(e.image.image_id);
        }
        <ImagePublished as Event>::TYPE => {
            let e: ImagePublished = env.decode()?;
            State::put_image(c, &e.image).await?;
            touched.images.insert(e.image.image_id);
        }
        <ImageDeleted as Event>::TYPE => {
            let e: ImageDeleted = env.decode()?;
            State::delete_image(c, e.image_id).await?;
            touched.images.insert(e.image_id);
        }
        <Processed as Event>::TYPE => {
            let e: Processed = env.decode()?;
            if let Some(a) = &e.analysis {
                State::put_analysis(c, e.image_id, a).await?;
                touched.images.insert(e.image_id);
            }
        }
        <CommentCreated as Event>::TYPE => {
            let e: CommentCreated = env.decode()?;
            State::put_comment(c, e.comment_id, e.image_id, &e.body).await?;
            touched.images.insert(e.image_id);
        }
        <CommentDeleted as Event>::TYPE => {
            let e: CommentDeleted = env.decode()?;
            State::delete_comment(c, e.comment_id).await?;
            touched.images.insert(e.image_id);
        }
        <LikeCreated as Event>::TYPE => {
            let e: LikeCreated = env.decode()?;
            State::put_like(c, e.image_id, e.user_id).await?;
            touched.images.insert(e.image_id);
        }
        <LikeRemoved as Event>::TYPE => {
            let e: LikeRemoved = env.decode()?;
            State::delete_like(c, e.image_id, e.user_id).await?;
            touched.images.insert(e.image_id);
        }
        <UserRegistered as Event>::TYPE => {
            let e: UserRegistered = env.decode()?;
            State::put_account(c, &e.account).await?;
            touched.accounts.insert(e.account.user_id);
        }
        <UserUpdated as Event>::TYPE => {
            let e: UserUpdated = env.decode()?;
            State::put_account(c, &e.account).await?;
            touched.accounts.insert(e.account.user_id);
        }
        <UserDeleted as Event>::TYPE => {
            let e: UserDeleted = env.decode()?;
            for image in State::images_of(c, e.user_id).await? {
                State::delete_image(c, image).await?;
                touched.images.insert(image);
            }
            State::delete_account(c, e.user_id).await?;
            touched.gone.insert(e.user_id);
        }
        <FollowRequested as Event>::TYPE => {
            let e: FollowRequested = env.decode()?;
            State::put_follow(c, e.follower_id, e.followee_id, false).await?;
        }
        <FollowCreated as Event>::TYPE => {
            let e: FollowCreated = env.decode()?;
            State::put_follow(c, e.follower_id, e.followee_id, true).await?;
        }
        <FollowRemoved as Event>::TYPE => {
            let e: FollowRemoved = env.decode()?;
            State::delete_follow(c, e.follower_id, e.followee_id).await?;
        }
        <BlockCreated as Event>::TYPE => {
            let e: BlockCreated = env.decode()?;
            State::put_block(c, e.blocker_id, e.blocked_id).await?;
        }
        <BlockRemoved as Event>::TYPE => {
            let e: BlockRemoved = env.decode()?;
            State::delete_block(c, e.blocker_id, e.blocked_id).await?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Rewrites the documents `touched` names from the read model.
pub async fn rewrite(
    generation: &Generation,
    writer: &mut IndexWriter,
    touched: &Touched,
) -> Result<(), SearchError> {
    let f = generation.fields;
    let db = generation.state.db();
    let mut images = touched.images.clone();
    for account in &touched.accounts {
        writer.delete_term(index::id_term(&f, *account));
        if let Some(card) = State::account(db, *account).await? {
            writer.add_document(index::user_doc(&f, &card))?;
        }
        images.extend(State::images_of(db, *account).await?);
    }
    for gone in &touched.gone {
        writer.delete_term(Term::from_field_text(f.owner, &gone.to_string()));
    }
    for id in images {
        writer.delete_term(index::id_term(&f, id));
        if let Some(doc) = image_document(generation, id).await? {
            writer.add_document(doc)?;
        }
    }
    Ok(())
}

/// The document of image `id` as the read model has it, if it is to be
/// searchable (processed).
async fn image_document(
    generation: &Generation,
    id: Uuid,
) -> Result<Option<tantivy::TantivyDocument>, SearchError> {
    let db = generation.state.db();
    let Some(record) = State::image(db, id).await? else {
        return Ok(None);
    };
    if record.status != ImageStatus::Ready {
        return Ok(None);
    }
    let author = State::account(db, record.owner_id).await?;
    let like_count = State::like_count(db, id).await?;
    let comments = State::comments_of(db, id).await?;
    Ok(Some(index::image_doc(
        &generation.fields,
        &ImageDoc {
            record: &record,
            author: author.as_ref(),
            like_count,
            comments: &comments,
        },
    )))
}
