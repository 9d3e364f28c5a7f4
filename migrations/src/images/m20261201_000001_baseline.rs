//! The images role's tables as the legacy history left them, without its
//! foreign keys into the users role's `users` (comments' authors and likes'
//! users): when an account is deleted, the account purge removes its
//! comments and likes. Foreign keys within the role stay (tags, versions,
//! comments and likes go with their image). Every table and index is
//! `IF NOT EXISTS`, so on a database upgraded from the legacy history this
//! changes nothing; the next migration drops the keys into `users` there.

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
    CollectingSince,
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
    Version,
    Analysis,
    Pipeline,
    ProcessedAt,
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

#[derive(Clone, DeriveIden)]
enum AccountPurges {
    Table,
    UserId,
    RequestedAt,
    FinishedAt,
}

#[derive(Clone, DeriveIden)]
enum ImageAccounts {
    Table,
    Id,
    Username,
    DisplayName,
    AvatarImageId,
    IsPrivate,
}

#[derive(Clone, DeriveIden)]
enum ImageFollows {
    Table,
    FollowerId,
    FolloweeId,
    Status,
}

#[derive(Clone, DeriveIden)]
enum ImageBlocks {
    Table,
    BlockerId,
    BlockedId,
}

fn ts(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn ts_null(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .null()
        .to_owned()
}

/// `table.image_id` → `images.id`, deleted with its image.
fn image_fk(table: impl IntoIden + Clone + 'static) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, Alias::new("image_id"))
        .to(Images::Table, Images::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn index(name: &str, table: impl IntoIden + 'static, cols: Vec<DynIden>) -> IndexCreateStatement {
    let mut index = Index::create()
        .name(name)
        .table(table)
        .if_not_exists()
        .to_owned();
    for col in cols {
        index.col(col);
    }
    index
}

/// `comments`, created as `name` (the next migration rebuilds it on SQLite).
pub(super) fn comments(name: impl IntoIden + 'static) -> TableCreateStatement {
    Table::create()
        .table(name)
        .if_not_exists()
        .col(ColumnDef::new(Comments::Id).uuid().not_null().primary_key())
        .col(ColumnDef::new(Comments::ImageId).uuid().not_null())
        .col(ColumnDef::new(Comments::AuthorId).uuid().not_null())
        .col(ColumnDef::new(Comments::Body).text().not_null())
        .col(ts(Comments::CreatedAt))
        .foreign_key(&mut image_fk(Comments::Table))
        .to_owned()
}

/// The indexes of `comments`.
pub(super) fn comments_indexes() -> Vec<IndexCreateStatement> {
    vec![index(
        "comments_image",
        Comments::Table,
        vec![Comments::ImageId.into_iden(), Comments::Id.into_iden()],
    )]
}

/// `likes`, created as `name` (the next migration rebuilds it on SQLite).
pub(super) fn likes(name: impl IntoIden + 'static) -> TableCreateStatement {
    Table::create()
        .table(name)
        .if_not_exists()
        .col(ColumnDef::new(Likes::ImageId).uuid().not_null())
        .col(ColumnDef::new(Likes::UserId).uuid().not_null())
        .col(ts(Likes::CreatedAt))
        .primary_key(Index::create().col(Likes::ImageId).col(Likes::UserId))
        .foreign_key(&mut image_fk(Likes::Table))
        .to_owned()
}

/// The indexes of `likes`.
pub(super) fn likes_indexes() -> Vec<IndexCreateStatement> {
    vec![index(
        "likes_user",
        Likes::Table,
        vec![Likes::UserId.into_iden()],
    )]
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Blobs::Table)
                    .if_not_exists()
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
                    // Set while a collection deletes the content's objects.
                    .col(ts_null(Blobs::CollectingSince))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Images::Table)
                    .if_not_exists()
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
                    .col(ts_null(Images::PublishedAt))
                    .col(
                        ColumnDef::new(Images::Version)
                            .integer()
                            .not_null()
                            .default(1),
                    )
                    .col(ColumnDef::new(Images::Analysis).text().null())
                    .col(ColumnDef::new(Images::Pipeline).integer().null())
                    .col(ts_null(Images::ProcessedAt))
                    .to_owned(),
            )
            .await?;
        // One image per owner and content: the same bytes again from the
        // same person are the same image.
        manager
            .create_index(
                index(
                    "images_owner_sha256",
                    Images::Table,
                    vec![Images::OwnerId.into_iden(), Images::Sha256.into_iden()],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "images_owner_created",
                Images::Table,
                vec![Images::OwnerId.into_iden(), Images::CreatedAt.into_iden()],
            ))
            .await?;
        manager
            .create_index(index(
                "images_created",
                Images::Table,
                vec![Images::CreatedAt.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImageTags::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ImageTags::ImageId).uuid().not_null())
                    .col(ColumnDef::new(ImageTags::Tag).string_len(64).not_null())
                    .primary_key(Index::create().col(ImageTags::ImageId).col(ImageTags::Tag))
                    .foreign_key(&mut image_fk(ImageTags::Table))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "image_tags_tag",
                ImageTags::Table,
                vec![ImageTags::Tag.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .if_not_exists()
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
                    .col(ts_null(Tasks::CallbackNextAt))
                    .col(ts(Tasks::CreatedAt))
                    .col(ts(Tasks::UpdatedAt))
                    .col(ts_null(Tasks::FinishedAt))
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
            let cols = cols.into_iter().map(IntoIden::into_iden).collect();
            manager
                .create_index(index(name, Tasks::Table, cols))
                .await?;
        }
        manager.create_table(comments(Comments::Table)).await?;
        for index in comments_indexes() {
            manager.create_index(index).await?;
        }
        manager.create_table(likes(Likes::Table)).await?;
        for index in likes_indexes() {
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Uploads::Table)
                    .if_not_exists()
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
            .create_index(index(
                "uploads_expires",
                Uploads::Table,
                vec![Uploads::ExpiresAt.into_iden()],
            ))
            .await?;
        // Versions replaced by edits, each holding its own reference to its
        // original in `blobs`.
        manager
            .create_table(
                Table::create()
                    .table(ImageVersions::Table)
                    .if_not_exists()
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
                    .col(ts(ImageVersions::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(ImageVersions::ImageId)
                            .col(ImageVersions::Version),
                    )
                    .foreign_key(&mut image_fk(ImageVersions::Table))
                    .to_owned(),
            )
            .await?;
        // Deleted accounts whose images are being removed; a finished purge
        // stays, as the mark of a deleted account.
        manager
            .create_table(
                Table::create()
                    .table(AccountPurges::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(AccountPurges::UserId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ts(AccountPurges::RequestedAt))
                    .col(ts_null(AccountPurges::FinishedAt))
                    .to_owned(),
            )
            .await?;
        // The read models of the users role's accounts, follows and blocks.
        manager
            .create_table(
                Table::create()
                    .table(ImageAccounts::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(ImageAccounts::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ImageAccounts::Username)
                            .string_len(30)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ImageAccounts::DisplayName).string().null())
                    .col(ColumnDef::new(ImageAccounts::AvatarImageId).uuid().null())
                    .col(
                        ColumnDef::new(ImageAccounts::IsPrivate)
                            .boolean()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "image_accounts_username",
                ImageAccounts::Table,
                vec![ImageAccounts::Username.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImageFollows::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ImageFollows::FollowerId).uuid().not_null())
                    .col(ColumnDef::new(ImageFollows::FolloweeId).uuid().not_null())
                    .col(
                        ColumnDef::new(ImageFollows::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(ImageFollows::FollowerId)
                            .col(ImageFollows::FolloweeId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "image_follows_followee",
                ImageFollows::Table,
                vec![ImageFollows::FolloweeId.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImageBlocks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(ImageBlocks::BlockerId).uuid().not_null())
                    .col(ColumnDef::new(ImageBlocks::BlockedId).uuid().not_null())
                    .primary_key(
                        Index::create()
                            .col(ImageBlocks::BlockerId)
                            .col(ImageBlocks::BlockedId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "image_blocks_blocked",
                ImageBlocks::Table,
                vec![ImageBlocks::BlockedId.into_iden()],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ImageBlocks::Table.into_iden(),
            ImageFollows::Table.into_iden(),
            ImageAccounts::Table.into_iden(),
            AccountPurges::Table.into_iden(),
            ImageVersions::Table.into_iden(),
            Uploads::Table.into_iden(),
            Likes::Table.into_iden(),
            Comments::Table.into_iden(),
            Tasks::Table.into_iden(),
            ImageTags::Table.into_iden(),
            Images::Table.into_iden(),
            Blobs::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
