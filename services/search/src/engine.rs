//! The index generations under the search directory: `CURRENT` names the
//! one in use (`<dir>/<name>/index` and its read model
//! `<dir>/<name>/state.db`). A rebuild makes a new generation beside it and
//! then names it in `CURRENT`; the running indexer notices, switches and
//! removes the old one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use pinhole_config::Settings;
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::SearchError;
use crate::index::{self, Fields};
use crate::state::State;

const CURRENT: &str = "CURRENT";

/// One index and the read model it was built from.
pub struct Generation {
    pub name: String,
    pub dir: PathBuf,
    pub index: Index,
    pub reader: IndexReader,
    pub fields: Fields,
    pub state: State,
}

impl Generation {
    /// Opens (creating) generation `name` under `root`.
    pub async fn open(root: &Path, name: &str) -> Result<Self, SearchError> {
        let dir = root.join(name);
        let (index, fields) = index::open(&dir.join("index"))?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let state = State::open(&dir.join("state.db")).await?;
        Ok(Self {
            name: name.to_owned(),
            dir,
            index,
            reader,
            fields,
            state,
        })
    }
}

/// The search role's index, as queries and the indexer share it.
pub struct Engine {
    pub dir: PathBuf,
    pub group: String,
    current: RwLock<Arc<Generation>>,
}

impl Engine {
    /// Opens the generation `CURRENT` names under the settings' search
    /// directory (making the first one when there is none).
    pub async fn open(settings: &Settings) -> Result<Arc<Self>, SearchError> {
        Self::open_in(&settings.search_dir, &settings.search_group).await
    }

    pub async fn open_in(dir: &Path, group: &str) -> Result<Arc<Self>, SearchError> {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::Io(dir.to_owned(), e))?;
        crate::analyzer::warm_up();
        let name = match current_name(dir)? {
            Some(name) => name,
            None => {
                let name = "g1".to_owned();
                set_current(dir, &name)?;
                name
            }
        };
        let generation = Generation::open(dir, &name).await?;
        // Generations a rebuild replaced while no server ran.
        remove_others(dir, &name);
        Ok(Arc::new(Self {
            dir: dir.to_owned(),
            group: group.to_owned(),
            current: RwLock::new(Arc::new(generation)),
        }))
    }

    /// The generation in use.
    pub fn current(&self) -> Arc<Generation> {
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Whether `CURRENT` names another generation than `generation`.
    pub fn replaced(&self, generation: &Generation) -> bool {
        matches!(current_name(&self.dir), Ok(Some(name)) if name != generation.name)
    }

    /// Opens the generation `CURRENT` names now, serves it from now on, and
    /// removes the others.
    pub async fn switch(&self) -> Result<Arc<Generation>, SearchError> {
        let Some(name) = current_name(&self.dir)? else {
            return Ok(self.current());
        };
        let generation = Arc::new(Generation::open(&self.dir, &name).await?);
        let old = {
            let mut current = match self.current.write() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            std::mem::replace(&mut *current, Arc::clone(&generation))
        };
        tracing::info!(from = %old.name, to = %name, "search index generation switched");
        remove_others(&self.dir, &name);
        Ok(generation)
    }
}

/// The generation `CURRENT` names, if any.
pub fn current_name(dir: &Path) -> Result<Option<String>, SearchError> {
    match std::fs::read_to_string(dir.join(CURRENT)) {
        Ok(s) => {
            let name = s.trim().to_owned();
            Ok((!name.is_empty()).then_some(name))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SearchError::Io(dir.join(CURRENT), e)),
    }
}

/// Names `name` in `CURRENT`, atomically.
pub fn set_current(dir: &Path, name: &str) -> Result<(), SearchError> {
    let tmp = dir.join("CURRENT.tmp");
    std::fs::write(&tmp, format!("{name}\n")).map_err(|e| SearchError::Io(tmp.clone(), e))?;
    std::fs::rename(&tmp, dir.join(CURRENT)).map_err(|e| SearchError::Io(dir.join(CURRENT), e))
}

/// Removes the generation directories other than `keep` (and other than
/// one being built, which is newer than `keep` and not yet named).
fn remove_others(dir: &Path, keep: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let keep_n = generation_number(keep);
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(n) = generation_number(&name) else {
            continue;
        };
        if name != keep
            && keep_n.is_some_and(|k| n < k)
            && let Err(err) = std::fs::remove_dir_all(e.path())
        {
            tracing::warn!(generation = %name, error = %err, "cannot remove an old search index generation");
        }
    }
}

/// `g17` → 17.
pub fn generation_number(name: &str) -> Option<u64> {
    name.strip_prefix('g')?.parse().ok()
}

/// The name of a generation newer than every one under `dir`.
pub fn next_generation(dir: &Path) -> String {
    let newest = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| generation_number(&e.file_name().to_string_lossy()))
        .max()
        .unwrap_or(0);
    format!("g{}", newest + 1)
}

/// What the index under a search directory holds, as its last commit left
/// it (read without taking the writer's lock, so a running indexer may be
/// beside it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Census {
    pub generation: String,
    /// Image documents.
    pub images: u64,
    /// Account documents.
    pub accounts: u64,
    /// The like counts of the image documents, added up.
    pub likes: u64,
    /// Where consumption resumes.
    pub offsets: pinhole_bus::Offsets,
}

/// Counts what the current generation under `dir` holds; `word` also
/// counts the image documents whose text has it.
pub fn census(dir: &Path, word: Option<&str>) -> Result<(Census, u64), SearchError> {
    use tantivy::collector::{Count, DocSetCollector};
    use tantivy::query::TermQuery;
    use tantivy::schema::IndexRecordOption;

    let name = current_name(dir)?.ok_or_else(|| SearchError::Internal("no index yet".into()))?;
    let (index, f) = index::open(&dir.join(&name).join("index"))?;
    let reader: IndexReader = index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()?;
    let searcher = reader.searcher();
    let kind = |k: &str| {
        TermQuery::new(
            tantivy::Term::from_field_text(f.kind, k),
            IndexRecordOption::Basic,
        )
    };
    let images = searcher.search(&kind(index::IMAGE), &DocSetCollector)?;
    let mut likes = 0;
    for a in &images {
        let col = searcher
            .segment_reader(a.segment_ord)
            .fast_fields()
            .u64("likes")?;
        likes += col.first(a.doc_id).unwrap_or(0);
    }
    let accounts = searcher.search(&kind(index::USER), &Count)?;
    let with_word = match word.and_then(|w| crate::analyzer::terms(w).into_iter().next()) {
        Some(t) => searcher.search(
            &TermQuery::new(
                tantivy::Term::from_field_text(f.all, &t),
                IndexRecordOption::Basic,
            ),
            &Count,
        )?,
        None => 0,
    };
    Ok((
        Census {
            generation: name,
            images: images.len() as u64,
            accounts: accounts as u64,
            likes,
            offsets: index::Payload::of(&index)?.offsets(),
        },
        with_word as u64,
    ))
}
