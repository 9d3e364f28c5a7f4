//! The platform's tables as the legacy history left them: the outbox with
//! its per-event retries, the outbox's dead letters, and the consumers'
//! dead letters. Everything is `IF NOT EXISTS`, so on a database upgraded
//! from the legacy history this changes nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Seq,
    EventId,
    Topic,
    EventKey,
    Payload,
    CreatedAt,
    Attempts,
    LastError,
    NextAttemptAt,
}

#[derive(DeriveIden)]
enum OutboxDead {
    Table,
    Seq,
    EventId,
    Topic,
    EventKey,
    Payload,
    CreatedAt,
    Attempts,
    LastError,
    FailedAt,
}

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

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Outbox::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Outbox::Seq)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(Outbox::EventId)
                            .uuid()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Outbox::Topic).string().not_null())
                    .col(ColumnDef::new(Outbox::EventKey).string().not_null())
                    .col(ColumnDef::new(Outbox::Payload).text().not_null())
                    .col(ts(Outbox::CreatedAt))
                    .col(
                        ColumnDef::new(Outbox::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(ColumnDef::new(Outbox::LastError).text().null())
                    .col(
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
                    .name("outbox_event_key_next_attempt")
                    .table(Outbox::Table)
                    .col(Outbox::EventKey)
                    .col(Outbox::NextAttemptAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(OutboxDead::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(OutboxDead::Seq)
                            .big_integer()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OutboxDead::EventId)
                            .uuid()
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(OutboxDead::Topic).string().not_null())
                    .col(ColumnDef::new(OutboxDead::EventKey).string().not_null())
                    .col(ColumnDef::new(OutboxDead::Payload).text().not_null())
                    .col(ts(OutboxDead::CreatedAt))
                    .col(ColumnDef::new(OutboxDead::Attempts).integer().not_null())
                    .col(ColumnDef::new(OutboxDead::LastError).text().not_null())
                    .col(ts(OutboxDead::FailedAt))
                    .to_owned(),
            )
            .await?;
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
                    .col(ts(EventDeadLetters::FirstFailedAt))
                    .col(ts(EventDeadLetters::LastFailedAt))
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
                    .name("event_dead_letters_record")
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
        // The consumers look for rows marked for retry every few seconds.
        manager
            .create_index(
                Index::create()
                    .name("event_dead_letters_group_retry")
                    .table(EventDeadLetters::Table)
                    .col(EventDeadLetters::ConsumerGroup)
                    .col(EventDeadLetters::RetryRequested)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            EventDeadLetters::Table.into_iden(),
            OutboxDead::Table.into_iden(),
            Outbox::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
