//! Rebuilds the index from the images and users roles' export APIs into a
//! new generation, while the current one keeps answering; the new one is
//! then named in `CURRENT` and the running indexer switches to it.
//!
//! The new index starts from the offsets the current one had committed
//! when the rebuild began: the events since then are applied on top of
//! the exported state (upserts and deletes by key, so the ones the export
//! already reflects change nothing).

use std::path::Path;

use pinhole_http::Clients;
use pinhole_http::clients::EdgeKind;
use sea_orm::TransactionTrait;

use crate::SearchError;
use crate::engine::{self, Generation};
use crate::index;
use crate::indexer::{self, Touched};
use crate::state::State;

/// Records asked per page.
const PAGE: u32 = 500;

/// What the rebuild reports as it goes: the phase and how many items of it
/// are done.
pub trait Progress {
    fn phase(&self, name: &'static str);
    fn advance(&self, n: u64);
}

/// Reports nothing.
pub struct Quiet;

impl Progress for Quiet {
    fn phase(&self, _: &'static str) {}
    fn advance(&self, _: u64) {}
}

/// What a rebuild made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    pub generation: String,
    pub accounts: u64,
    pub images: u64,
}

/// Rebuilds the index under `dir` from the roles `clients` reach.
pub async fn reindex(
    dir: &Path,
    clients: &Clients,
    progress: &dyn Progress,
) -> Result<Rebuilt, SearchError> {
    std::fs::create_dir_all(dir).map_err(|e| SearchError::Io(dir.to_owned(), e))?;
    let from = match engine::current_name(dir)? {
        Some(live) => {
            let (live_index, _) = index::open(&dir.join(&live).join("index"))?;
            index::Payload::of(&live_index)?.offsets()
        }
        None => Default::default(),
    };
    let name = engine::next_generation(dir);
    let generation = Generation::open(dir, &name).await?;
    let mut writer = generation.index.writer(256 * 1024 * 1024)?;
    let db = generation.state.db().clone();

    progress.phase("accounts");
    let mut accounts = 0;
    let mut after = None;
    loop {
        let page = clients.users.export_accounts(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.user_id);
        let mut touched = Touched::default();
        let txn = db.begin().await?;
        for card in &page {
            State::put_account(&txn, card).await?;
            touched.accounts.insert(card.user_id);
        }
        txn.commit().await?;
        indexer::rewrite(&generation, &mut writer, &touched).await?;
        accounts += page.len() as u64;
        progress.advance(page.len() as u64);
    }

    for (kind, phase) in [(EdgeKind::Follows, "follows"), (EdgeKind::Blocks, "blocks")] {
        progress.phase(phase);
        let mut after = None;
        loop {
            let page = clients.users.export_edges(kind, after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = Some((last.from, last.to));
            let txn = db.begin().await?;
            for e in &page {
                match kind {
                    EdgeKind::Follows => State::put_follow(&txn, e.from, e.to, e.approved).await?,
                    EdgeKind::Blocks => State::put_block(&txn, e.from, e.to).await?,
                }
            }
            txn.commit().await?;
            progress.advance(page.len() as u64);
        }
    }

    progress.phase("images");
    let mut images = 0;
    let mut after = None;
    loop {
        let page = clients.images.export(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.image.image_id);
        let mut touched = Touched::default();
        let txn = db.begin().await?;
        for e in &page {
            let id = e.image.image_id;
            State::put_image(&txn, &e.image).await?;
            for user in &e.likers {
                State::put_like(&txn, id, *user).await?;
            }
            for c in &e.comments {
                State::put_comment(&txn, c.comment_id, id, &c.body).await?;
            }
            touched.images.insert(id);
        }
        txn.commit().await?;
        indexer::rewrite(&generation, &mut writer, &touched).await?;
        images += page.len() as u64;
        progress.advance(page.len() as u64);
    }

    progress.phase("committing");
    let (_, committed) = tokio::task::spawn_blocking(move || {
        let r = index::commit(&mut writer, &from);
        let r = r.and_then(|()| writer.wait_merging_threads());
        ((), r)
    })
    .await
    .map_err(|e| SearchError::Internal(e.to_string()))?;
    committed?;
    engine::set_current(dir, &name)?;
    Ok(Rebuilt {
        generation: name,
        accounts,
        images,
    })
}
