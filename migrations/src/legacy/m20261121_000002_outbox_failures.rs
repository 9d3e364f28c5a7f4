//! Outbox failures: attempts and the last error per pending event, and a
//! dead-letter table for events the bus refuses for good (too large, unknown
//! topic), so one bad event never holds up the others.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Outbox {
    Table,
    Attempts,
    LastError,
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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(
                        ColumnDef::new(Outbox::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Outbox::Table)
                    .add_column(ColumnDef::new(Outbox::LastError).text().null())
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
                    .col(
                        ColumnDef::new(OutboxDead::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OutboxDead::Attempts).integer().not_null())
                    .col(ColumnDef::new(OutboxDead::LastError).text().not_null())
                    .col(
                        ColumnDef::new(OutboxDead::FailedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(OutboxDead::Table).to_owned())
            .await?;
        for column in [Outbox::LastError, Outbox::Attempts] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Outbox::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
