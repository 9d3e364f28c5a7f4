//! Roles keep what they need of each other as read models fed by events,
//! instead of reading each other's tables:
//! - the images role: account cards (`image_accounts`), follow edges with
//!   their approval state (`image_follows`) and blocks (`image_blocks`),
//!   from the users role's events;
//! - the users role: whose images exist (`user_images`), from the images
//!   role's events, to count posts.
//!
//! An existing database is upgraded in place: the read models start as
//! copies of what the owning roles' tables hold now.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

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

#[derive(Clone, DeriveIden)]
enum AccountPurges {
    Table,
    FinishedAt,
}

#[derive(Clone, DeriveIden)]
enum UserImages {
    Table,
    ImageId,
    OwnerId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ImageAccounts::Table)
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
            .create_index(
                Index::create()
                    .name("image_accounts_username")
                    .table(ImageAccounts::Table)
                    .col(ImageAccounts::Username)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImageFollows::Table)
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
            .create_index(
                Index::create()
                    .name("image_follows_followee")
                    .table(ImageFollows::Table)
                    .col(ImageFollows::FolloweeId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImageBlocks::Table)
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
            .create_index(
                Index::create()
                    .name("image_blocks_blocked")
                    .table(ImageBlocks::Table)
                    .col(ImageBlocks::BlockedId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserImages::Table)
                    .col(
                        ColumnDef::new(UserImages::ImageId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(UserImages::OwnerId).uuid().not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("user_images_owner")
                    .table(UserImages::Table)
                    .col(UserImages::OwnerId)
                    .to_owned(),
            )
            .await?;
        // A finished purge stays, as the mark of a deleted account.
        manager
            .alter_table(
                Table::alter()
                    .table(AccountPurges::Table)
                    .add_column(
                        ColumnDef::new(AccountPurges::FinishedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        // Upgrade in place: start from what the owners hold now.
        let db = manager.get_connection();
        for (table, copy) in [
            (
                "users",
                "INSERT INTO image_accounts (id, username, display_name, avatar_image_id, is_private) \
                 SELECT id, username, display_name, avatar_image_id, is_private FROM users",
            ),
            (
                "follows",
                "INSERT INTO image_follows (follower_id, followee_id, status) \
                 SELECT follower_id, followee_id, status FROM follows",
            ),
            (
                "blocks",
                "INSERT INTO image_blocks (blocker_id, blocked_id) SELECT blocker_id, blocked_id FROM blocks",
            ),
            (
                "images",
                "INSERT INTO user_images (image_id, owner_id) SELECT id, owner_id FROM images",
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
            .alter_table(
                Table::alter()
                    .table(AccountPurges::Table)
                    .drop_column(AccountPurges::FinishedAt)
                    .to_owned(),
            )
            .await?;
        for table in [
            UserImages::Table.into_iden(),
            ImageBlocks::Table.into_iden(),
            ImageFollows::Table.into_iden(),
            ImageAccounts::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
