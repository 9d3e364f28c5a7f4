//! Thumbnails and edits: what the thumbnails role learned of each image
//! (placeholder, colour, perceptual hash, faces) and which pipeline made its
//! derivatives; image versions made by edit tasks.
//!
//! The `images` row always describes the current version. When an edit
//! replaces it, the replaced version is kept in `image_versions` (holding its
//! own reference to its original in `blobs`) until its owner deletes it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, DeriveIden)]
enum Images {
    Table,
    Id,
    Version,
    Analysis,
    Pipeline,
    ProcessedAt,
}

#[derive(Clone, DeriveIden)]
enum ImageVersions {
    Table,
    ImageId,
    Version,
    Sha256,
    Format,
    Width,
    Height,
    Size,
    Derivatives,
    Analysis,
    Edits,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one at a time.
        for col in [
            ColumnDef::new(Images::Version)
                .integer()
                .not_null()
                .default(1)
                .to_owned(),
            ColumnDef::new(Images::Analysis).text().null().to_owned(),
            ColumnDef::new(Images::Pipeline).integer().null().to_owned(),
            ColumnDef::new(Images::ProcessedAt)
                .timestamp_with_time_zone()
                .null()
                .to_owned(),
        ] {
            let mut col = col;
            manager
                .alter_table(
                    Table::alter()
                        .table(Images::Table)
                        .add_column(&mut col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ImageVersions::Table)
                    .col(ColumnDef::new(ImageVersions::ImageId).uuid().not_null())
                    .col(ColumnDef::new(ImageVersions::Version).integer().not_null())
                    .col(ColumnDef::new(ImageVersions::Sha256).string().not_null())
                    .col(ColumnDef::new(ImageVersions::Format).string().not_null())
                    .col(ColumnDef::new(ImageVersions::Width).integer().not_null())
                    .col(ColumnDef::new(ImageVersions::Height).integer().not_null())
                    .col(ColumnDef::new(ImageVersions::Size).big_integer().not_null())
                    .col(ColumnDef::new(ImageVersions::Derivatives).text().null())
                    .col(ColumnDef::new(ImageVersions::Analysis).text().null())
                    .col(ColumnDef::new(ImageVersions::Edits).text().null())
                    .col(
                        ColumnDef::new(ImageVersions::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ImageVersions::ImageId)
                            .col(ImageVersions::Version),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ImageVersions::Table, ImageVersions::ImageId)
                            .to(Images::Table, Images::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ImageVersions::Table).to_owned())
            .await?;
        for col in [
            Images::ProcessedAt,
            Images::Pipeline,
            Images::Analysis,
            Images::Version,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Images::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
