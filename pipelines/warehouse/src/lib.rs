//! The warehouse pipeline: page-view (and other) events to Parquet files,
//! hive-partitioned by date and hour, exactly once.

/// The role's name in `pinhole serve --roles`.
pub const ROLE: &str = "warehouse";

/// The topics the pipeline reads.
pub const TOPICS: &[&str] = &[pinhole_events::topics::PAGE_VIEWS];
