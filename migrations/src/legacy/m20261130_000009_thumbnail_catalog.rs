//! The thumbnails role's own catalog of images, kept from the images and
//! users roles' events instead of reading their tables: what a transform
//! needs to decide and find its source (`thumb_images`, `thumb_accounts`),
//! and what a backfill selects and follows (the pipeline that made each
//! image's derivatives and when it last reported). An existing database
//! starts with a copy of what the owners' tables hold.

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
            .await?;
        let db = manager.get_connection();
        for (table, copy) in [
            (
                "images",
                "INSERT INTO thumb_images (image_id, owner_id, sha256, format, width, height, visibility, status, pipeline, reported_at) \
                 SELECT id, owner_id, sha256, format, width, height, visibility, status, pipeline, processed_at FROM images",
            ),
            (
                "users",
                "INSERT INTO thumb_accounts (user_id, is_private) SELECT id, is_private FROM users",
            ),
        ] {
            if manager.has_table(table).await? {
                db.execute_unprepared(copy).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ThumbAccounts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ThumbImages::Table).to_owned())
            .await
    }
}
