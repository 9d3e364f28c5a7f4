//! View counts from the gateway's `page.viewed` events: a count per image,
//! and the position in the page-view topic up to which they are counted,
//! written in the same transaction (so each view counts once).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ImageViews {
    Table,
    ImageId,
    Views,
}

#[derive(DeriveIden)]
enum ImageViewOffsets {
    Table,
    Topic,
    Partition,
    NextOffset,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ImageViews::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ImageViews::ImageId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ImageViews::Views).big_integer().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImageViewOffsets::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ImageViewOffsets::Topic).string().not_null())
                    .col(
                        ColumnDef::new(ImageViewOffsets::Partition)
                            .integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ImageViewOffsets::NextOffset)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ImageViewOffsets::Topic)
                            .col(ImageViewOffsets::Partition),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ImageViewOffsets::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(ImageViews::Table).to_owned())
            .await
    }
}
