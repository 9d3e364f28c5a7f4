//! Dead letters in the database: the `event_dead_letters` table behind
//! [`pinhole_bus::DeadLetters`], and what `pinhole events dead list|retry`
//! reads and marks.
//!
//! A consumer group parks a record it cannot handle here (one row per group
//! and record) and moves on; an operator marks rows for retry, and the
//! group's running consumer claims them, hands each to its handler again and
//! removes the row once handled.

use std::sync::Arc;

use async_trait::async_trait;
use pinhole_bus::{DeadLetterError, DeadLetters, ParkedRecord, Parking, Record};
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue, QueryOrder, QuerySelect};

/// The `event_dead_letters` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_dead_letters")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub consumer_group: String,
        pub topic: String,
        pub partition: i32,
        pub offset: i64,
        #[sea_orm(column_type = "Blob", nullable)]
        pub key: Option<Vec<u8>>,
        #[sea_orm(column_type = "Blob")]
        pub payload: Vec<u8>,
        /// Why the last attempt failed.
        #[sea_orm(column_type = "Text")]
        pub error: String,
        /// Failed attempts so far, retries included.
        pub attempts: i32,
        pub first_failed_at: DateTimeUtc,
        pub last_failed_at: DateTimeUtc,
        /// Marked by `pinhole events dead retry`; cleared when the group's
        /// consumer takes the row.
        pub retry_requested: bool,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Parked records in the database.
#[derive(Debug, Clone)]
pub struct DeadLetterStore {
    db: DatabaseConnection,
}

/// What consumers get: parking in `db` after `max_attempts` failures.
pub fn parking(db: DatabaseConnection, max_attempts: u32) -> Parking {
    Parking::new(Arc::new(DeadLetterStore::new(db)), max_attempts)
}

fn stored(e: DbErr) -> DeadLetterError {
    DeadLetterError(e.to_string())
}

fn attempts_column(attempts: u32) -> i32 {
    i32::try_from(attempts).unwrap_or(i32::MAX)
}

impl DeadLetterStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// Parked records, of `group` only when given, oldest first.
    pub async fn list(&self, group: Option<&str>) -> Result<Vec<entity::Model>, DbErr> {
        let mut query = entity::Entity::find().order_by_asc(entity::Column::Id);
        if let Some(group) = group {
            query = query.filter(entity::Column::ConsumerGroup.eq(group));
        }
        query.all(&self.db).await
    }

    /// Marks for retry the rows with these `ids` (every row when `None`),
    /// of `group` only when given; returns how many were marked.
    pub async fn request_retry(
        &self,
        ids: Option<&[i64]>,
        group: Option<&str>,
    ) -> Result<u64, DbErr> {
        let mut update = entity::Entity::update_many()
            .col_expr(entity::Column::RetryRequested, Expr::value(true));
        if let Some(ids) = ids {
            update = update.filter(entity::Column::Id.is_in(ids.iter().copied()));
        }
        if let Some(group) = group {
            update = update.filter(entity::Column::ConsumerGroup.eq(group));
        }
        Ok(update.exec(&self.db).await?.rows_affected)
    }
}

#[async_trait]
impl DeadLetters for DeadLetterStore {
    async fn park(
        &self,
        group: &str,
        record: &Record,
        error: &str,
        attempts: u32,
    ) -> Result<(), DeadLetterError> {
        let now = chrono::Utc::now();
        let row = entity::ActiveModel {
            id: ActiveValue::NotSet,
            consumer_group: ActiveValue::Set(group.to_owned()),
            topic: ActiveValue::Set(record.topic.clone()),
            partition: ActiveValue::Set(record.partition),
            offset: ActiveValue::Set(record.offset),
            key: ActiveValue::Set(record.key.clone()),
            payload: ActiveValue::Set(record.payload.clone()),
            error: ActiveValue::Set(error.to_owned()),
            attempts: ActiveValue::Set(attempts_column(attempts)),
            first_failed_at: ActiveValue::Set(now),
            last_failed_at: ActiveValue::Set(now),
            retry_requested: ActiveValue::Set(false),
        };
        // The same record again (redelivered after a rebalance): one row.
        entity::Entity::insert(row)
            .on_conflict(
                OnConflict::columns([
                    entity::Column::ConsumerGroup,
                    entity::Column::Topic,
                    entity::Column::Partition,
                    entity::Column::Offset,
                ])
                .update_columns([
                    entity::Column::Error,
                    entity::Column::Attempts,
                    entity::Column::LastFailedAt,
                    entity::Column::RetryRequested,
                ])
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await
            .map_err(stored)?;
        Ok(())
    }

    async fn take_retries(
        &self,
        group: &str,
        limit: u64,
    ) -> Result<Vec<ParkedRecord>, DeadLetterError> {
        let marked = entity::Entity::find()
            .filter(entity::Column::ConsumerGroup.eq(group))
            .filter(entity::Column::RetryRequested.eq(true))
            .order_by_asc(entity::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(stored)?;
        let mut taken = Vec::with_capacity(marked.len());
        for row in marked {
            // Another member of the group may claim the same row: only the
            // one whose update unmarked it hands it to its handler.
            let claimed = entity::Entity::update_many()
                .col_expr(entity::Column::RetryRequested, Expr::value(false))
                .filter(entity::Column::Id.eq(row.id))
                .filter(entity::Column::RetryRequested.eq(true))
                .exec(&self.db)
                .await
                .map_err(stored)?
                .rows_affected
                == 1;
            if claimed {
                taken.push(ParkedRecord {
                    id: row.id,
                    record: Record {
                        topic: row.topic,
                        partition: row.partition,
                        offset: row.offset,
                        key: row.key,
                        payload: row.payload,
                    },
                    attempts: u32::try_from(row.attempts).unwrap_or(0),
                    error: row.error,
                });
            }
        }
        Ok(taken)
    }

    async fn resolve(&self, id: i64) -> Result<(), DeadLetterError> {
        entity::Entity::delete_by_id(id)
            .exec(&self.db)
            .await
            .map_err(stored)?;
        Ok(())
    }

    async fn fail_again(&self, id: i64, error: &str, attempts: u32) -> Result<(), DeadLetterError> {
        entity::Entity::update_many()
            .col_expr(entity::Column::Error, Expr::value(error))
            .col_expr(
                entity::Column::Attempts,
                Expr::value(attempts_column(attempts)),
            )
            .col_expr(
                entity::Column::LastFailedAt,
                Expr::value(chrono::Utc::now()),
            )
            .col_expr(entity::Column::RetryRequested, Expr::value(false))
            .filter(entity::Column::Id.eq(id))
            .exec(&self.db)
            .await
            .map_err(stored)?;
        Ok(())
    }

    async fn count(&self, group: &str) -> Result<u64, DeadLetterError> {
        entity::Entity::find()
            .filter(entity::Column::ConsumerGroup.eq(group))
            .count(&self.db)
            .await
            .map_err(stored)
    }
}
