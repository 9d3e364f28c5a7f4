//! Data integrity: a blob being collected is marked first (its objects are
//! deleted outside any transaction, then its row goes), and deleted
//! accounts are purged in batches by a worker of their own.
//!
//! `blobs.collecting_since` is set while a collection deletes the objects of
//! an unreferenced content; an upload of the same bytes then waits for the
//! collection to end instead of counting a reference to objects that are
//! going away. `account_purges` lists accounts whose images are still being
//! removed.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, DeriveIden)]
enum Blobs {
    Table,
    CollectingSince,
}

#[derive(Clone, DeriveIden)]
enum AccountPurges {
    Table,
    UserId,
    RequestedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Blobs::Table)
                    .add_column(
                        ColumnDef::new(Blobs::CollectingSince)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AccountPurges::Table)
                    .col(
                        ColumnDef::new(AccountPurges::UserId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(AccountPurges::RequestedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccountPurges::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Blobs::Table)
                    .drop_column(Blobs::CollectingSince)
                    .to_owned(),
            )
            .await
    }
}
