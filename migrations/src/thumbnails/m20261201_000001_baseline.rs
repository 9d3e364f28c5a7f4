//! The thumbnails role's tables as the legacy history left them: what a
//! transform needs to decide and find its source, and what a backfill
//! selects and follows. Both are `IF NOT EXISTS`, so on a database upgraded
//! from the legacy history this changes nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, DeriveIden)]
enum ThumbImages {
    Table,
    ImageId,
    OwnerId,
    Sha256,
    Format,
    Width,
    Height,
    Visibility,
    Status,
    Pipeline,
    ReportedAt,
}

#[derive(Clone, DeriveIden)]
enum ThumbAccounts {
    Table,
    UserId,
    IsPrivate,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ThumbImages::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ThumbImages::ImageId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ThumbImages::OwnerId).uuid().not_null())
                    .col(
                        ColumnDef::new(ThumbImages::Sha256)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ThumbImages::Format).string_len(8).not_null())
                    .col(ColumnDef::new(ThumbImages::Width).integer().not_null())
                    .col(ColumnDef::new(ThumbImages::Height).integer().not_null())
                    .col(
                        ColumnDef::new(ThumbImages::Visibility)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ThumbImages::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ThumbImages::Pipeline).integer().null())
                    .col(
                        ColumnDef::new(ThumbImages::ReportedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ThumbAccounts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ThumbAccounts::UserId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ThumbAccounts::IsPrivate)
                            .boolean()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ThumbAccounts::Table.into_iden(),
            ThumbImages::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
