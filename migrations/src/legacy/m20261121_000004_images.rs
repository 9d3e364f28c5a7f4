//! Images (the images role): stored originals shared by content hash
//! (`blobs`, reference-counted), images with their metadata and tags,
//! processing tasks, comments, likes, and resumable (tus) uploads.
//!
//! Images keep no foreign key to their owner: when an account is deleted the
//! images role removes its images itself, so that shared blobs are released
//! and every role hears of each deletion.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, DeriveIden)]
enum Blobs {
    Table,
    Sha256,
    BlobKey,
    Size,
    Format,
    RefCount,
    CreatedAt,
}

#[derive(Clone, DeriveIden)]
enum Images {
    Table,
    Id,
    OwnerId,
    Sha256,
    Format,
    Width,
    Height,
    Size,
    Title,
    Description,
    AltText,
    Visibility,
    Lat,
    Lon,
    PlaceName,
    Exif,
    Status,
    Derivatives,
    CreatedAt,
    UpdatedAt,
    PublishedAt,
}

#[derive(Clone, DeriveIden)]
enum ImageTags {
    Table,
    ImageId,
    Tag,
}

#[derive(Clone, DeriveIden)]
enum Tasks {
    Table,
    Id,
    OwnerId,
    ImageId,
    BatchId,
    Kind,
    Status,
    Reason,
    CallbackUrl,
    CallbackState,
    CallbackAttempts,
    CallbackNextAt,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(Clone, DeriveIden)]
enum Comments {
    Table,
    Id,
    ImageId,
    AuthorId,
    Body,
    CreatedAt,
}

#[derive(Clone, DeriveIden)]
enum Likes {
    Table,
    ImageId,
    UserId,
    CreatedAt,
}

#[derive(Clone, DeriveIden)]
enum Uploads {
    Table,
    Id,
    OwnerId,
    Length,
    Offset,
    Metadata,
    Chunks,
    ExpiresAt,
    CreatedAt,
    ImageId,
    TaskId,
}

#[derive(Clone, DeriveIden)]
enum Users {
    Table,
    Id,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn image_fk(table: impl IntoIden + Clone + 'static) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, ImageTags::ImageId)
        .to(Images::Table, Images::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Blobs::Table)
                    .col(
                        ColumnDef::new(Blobs::Sha256)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Blobs::BlobKey).string_len(200).not_null())
                    .col(ColumnDef::new(Blobs::Size).big_integer().not_null())
                    .col(ColumnDef::new(Blobs::Format).string_len(8).not_null())
                    .col(ColumnDef::new(Blobs::RefCount).big_integer().not_null())
                    .col(ts(Blobs::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Images::Table)
                    .col(ColumnDef::new(Images::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Images::OwnerId).uuid().not_null())
                    .col(ColumnDef::new(Images::Sha256).string_len(64).not_null())
                    .col(ColumnDef::new(Images::Format).string_len(8).not_null())
                    .col(ColumnDef::new(Images::Width).integer().not_null())
                    .col(ColumnDef::new(Images::Height).integer().not_null())
                    .col(ColumnDef::new(Images::Size).big_integer().not_null())
                    .col(ColumnDef::new(Images::Title).string_len(200).null())
                    .col(ColumnDef::new(Images::Description).text().null())
                    .col(ColumnDef::new(Images::AltText).text().null())
                    .col(ColumnDef::new(Images::Visibility).string_len(16).not_null())
                    .col(ColumnDef::new(Images::Lat).double().null())
                    .col(ColumnDef::new(Images::Lon).double().null())
                    .col(ColumnDef::new(Images::PlaceName).string_len(200).null())
                    .col(ColumnDef::new(Images::Exif).text().null())
                    .col(ColumnDef::new(Images::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Images::Derivatives).text().null())
                    .col(ts(Images::CreatedAt))
                    .col(ts(Images::UpdatedAt))
                    .col(
                        ColumnDef::new(Images::PublishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // One image per owner and content: the same bytes again from the
        // same person are the same image.
        manager
            .create_index(
                Index::create()
                    .name("images_owner_sha256")
                    .table(Images::Table)
                    .col(Images::OwnerId)
                    .col(Images::Sha256)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("images_owner_created")
                    .table(Images::Table)
                    .col(Images::OwnerId)
                    .col(Images::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("images_created")
                    .table(Images::Table)
                    .col(Images::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImageTags::Table)
                    .col(ColumnDef::new(ImageTags::ImageId).uuid().not_null())
                    .col(ColumnDef::new(ImageTags::Tag).string_len(64).not_null())
                    .primary_key(Index::create().col(ImageTags::ImageId).col(ImageTags::Tag))
                    .foreign_key(&mut image_fk(ImageTags::Table))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("image_tags_tag")
                    .table(ImageTags::Table)
                    .col(ImageTags::Tag)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(ColumnDef::new(Tasks::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Tasks::OwnerId).uuid().not_null())
                    .col(ColumnDef::new(Tasks::ImageId).uuid().not_null())
                    .col(ColumnDef::new(Tasks::BatchId).uuid().null())
                    .col(ColumnDef::new(Tasks::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Tasks::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Tasks::Reason).text().null())
                    .col(ColumnDef::new(Tasks::CallbackUrl).text().null())
                    .col(ColumnDef::new(Tasks::CallbackState).string_len(16).null())
                    .col(
                        ColumnDef::new(Tasks::CallbackAttempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Tasks::CallbackNextAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(ts(Tasks::CreatedAt))
                    .col(ts(Tasks::UpdatedAt))
                    .col(
                        ColumnDef::new(Tasks::FinishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            ("tasks_owner_batch", [Tasks::OwnerId, Tasks::BatchId]),
            ("tasks_image", [Tasks::ImageId, Tasks::CreatedAt]),
            (
                "tasks_callbacks",
                [Tasks::CallbackState, Tasks::CallbackNextAt],
            ),
        ] {
            let mut index = Index::create().name(name).table(Tasks::Table).to_owned();
            for col in cols {
                index.col(col);
            }
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Comments::Table)
                    .col(ColumnDef::new(Comments::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Comments::ImageId).uuid().not_null())
                    .col(ColumnDef::new(Comments::AuthorId).uuid().not_null())
                    .col(ColumnDef::new(Comments::Body).text().not_null())
                    .col(ts(Comments::CreatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Comments::Table, Comments::ImageId)
                            .to(Images::Table, Images::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Comments::Table, Comments::AuthorId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("comments_image")
                    .table(Comments::Table)
                    .col(Comments::ImageId)
                    .col(Comments::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Likes::Table)
                    .col(ColumnDef::new(Likes::ImageId).uuid().not_null())
                    .col(ColumnDef::new(Likes::UserId).uuid().not_null())
                    .col(ts(Likes::CreatedAt))
                    .primary_key(Index::create().col(Likes::ImageId).col(Likes::UserId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Likes::Table, Likes::ImageId)
                            .to(Images::Table, Images::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Likes::Table, Likes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("likes_user")
                    .table(Likes::Table)
                    .col(Likes::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Uploads::Table)
                    .col(ColumnDef::new(Uploads::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Uploads::OwnerId).uuid().not_null())
                    .col(ColumnDef::new(Uploads::Length).big_integer().null())
                    .col(ColumnDef::new(Uploads::Offset).big_integer().not_null())
                    .col(ColumnDef::new(Uploads::Metadata).text().not_null())
                    .col(ColumnDef::new(Uploads::Chunks).text().not_null())
                    .col(ts(Uploads::ExpiresAt))
                    .col(ts(Uploads::CreatedAt))
                    .col(ColumnDef::new(Uploads::ImageId).uuid().null())
                    .col(ColumnDef::new(Uploads::TaskId).uuid().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uploads_expires")
                    .table(Uploads::Table)
                    .col(Uploads::ExpiresAt)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Uploads::Table.into_iden(),
            Likes::Table.into_iden(),
            Comments::Table.into_iden(),
            Tasks::Table.into_iden(),
            ImageTags::Table.into_iden(),
            Images::Table.into_iden(),
            Blobs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
