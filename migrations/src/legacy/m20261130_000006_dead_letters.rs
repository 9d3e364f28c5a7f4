//! Dead letters and per-event outbox retries.
//!
//! `event_dead_letters` keeps the records a consumer group could not handle
//! (after its attempts ran out, or at once when the handler gave up on
//! them), so that they no longer stall their partition; an operator marks
//! them for retry. `outbox.next_attempt_at` lets an event that failed to
//! publish wait on its own, instead of the whole relay backing off.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum EventDeadLetters {
    Table,
    Id,
    ConsumerGroup,
    Topic,
    Partition,
    Offset,
    Key,
    Payload,
    Error,
    Attempts,
    FirstFailedAt,
    LastFailedAt,
    RetryRequested,
}

#[derive(DeriveIden)]
enum Outbox {
    Table,
    EventKey,
    NextAttemptAt,
}

const RECORD_INDEX: &str = "event_dead_letters_record";
const RETRY_INDEX: &str = "event_dead_letters_group_retry";
const OUTBOX_KEY_INDEX: &str = "outbox_event_key_next_attempt";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(EventDeadLetters::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(EventDeadLetters::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(EventDeadLetters::ConsumerGroup)
                            .string()
                            .not_null(),
                    )
                    .col(ColumnDef::new(EventDeadLetters::Topic).string().not_null())
                    .col(
                        ColumnDef::new(EventDeadLetters::Partition)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventDeadLetters::Offset)
                            .big_integer()
                            .not_null(),
                    )
                    .col(ColumnDef::new(EventDeadLetters::Key).blob().null())
                    .col(ColumnDef::new(EventDeadLetters::Payload).blob().not_null())
                    .col(ColumnDef::new(EventDeadLetters::Error).text().not_null())
                    .col(
                        ColumnDef::new(EventDeadLetters::Attempts)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventDeadLetters::FirstFailedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventDeadLetters::LastFailedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(EventDeadLetters::RetryRequested)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .to_owned(),
            )
            .await?;
        // One row per record and group: parking a redelivered record again
        // updates its row.
        manager
            .create_index(
                Index::create()
                    .name(RECORD_INDEX)
                    .table(EventDeadLetters::Table)
                    .col(EventDeadLetters::ConsumerGroup)
                    .col(EventDeadLetters::Topic)
                    .col(EventDeadLetters::Partition)
                    .col(EventDeadLetters::Offset)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        // The consumers' look for rows marked for retry, every few seconds.
        manager
            .create_index(
                Index::create()
                    .name(RETRY_INDEX)
                    .table(EventDeadLetters::Table)
                    .col(EventDeadLetters::ConsumerGroup)
                    .col(EventDeadLetters::RetryRequested)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(
                        ColumnDef::new(Outbox::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // The relay holds back the events of keys with one waiting.
        manager
            .create_index(
                Index::create()
                    .name(OUTBOX_KEY_INDEX)
                    .table(Outbox::Table)
                    .col(Outbox::EventKey)
                    .col(Outbox::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(OUTBOX_KEY_INDEX)
                    .table(Outbox::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .drop_column(Outbox::NextAttemptAt)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(EventDeadLetters::Table).to_owned())
            .await
    }
}
