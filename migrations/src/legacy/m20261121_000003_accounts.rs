//! Accounts (the users role): users, their tokens, follows (active or
//! requested) and blocks. Deleting a user cascades to the other three.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(Clone, DeriveIden)]
enum Users {
    Table,
    Id,
    Username,
    Email,
    PasswordHash,
    DisplayName,
    Bio,
    Website,
    AvatarImageId,
    IsPrivate,
    PostCount,
    CreatedAt,
    UpdatedAt,
}

#[derive(Clone, DeriveIden)]
enum Tokens {
    Table,
    TokenHash,
    Kind,
    UserId,
    FamilyId,
    ExpiresAt,
    UsedAt,
    RevokedAt,
    CreatedAt,
}

#[derive(Clone, DeriveIden)]
enum Follows {
    Table,
    Id,
    FollowerId,
    FolloweeId,
    Status,
    CreatedAt,
}

#[derive(Clone, DeriveIden)]
enum Blocks {
    Table,
    BlockerId,
    BlockedId,
    CreatedAt,
}

fn user_fk(
    table: impl IntoIden + Clone + 'static,
    column: impl IntoIden,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(Users::Username)
                            .string_len(30)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(Users::Email)
                            .string_len(254)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(Users::PasswordHash).text().not_null())
                    .col(ColumnDef::new(Users::DisplayName).string_len(64).null())
                    .col(ColumnDef::new(Users::Bio).text().null())
                    .col(ColumnDef::new(Users::Website).string_len(200).null())
                    .col(ColumnDef::new(Users::AvatarImageId).uuid().null())
                    .col(
                        ColumnDef::new(Users::IsPrivate)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Users::PostCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Users::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Users::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .col(
                        ColumnDef::new(Tokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Tokens::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Tokens::UserId).uuid().not_null())
                    .col(ColumnDef::new(Tokens::FamilyId).uuid().not_null())
                    .col(
                        ColumnDef::new(Tokens::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Tokens::UsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Tokens::RevokedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .col(
                        ColumnDef::new(Tokens::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut user_fk(Tokens::Table, Tokens::UserId))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            ("tokens_by_user", Tokens::UserId),
            ("tokens_by_family", Tokens::FamilyId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Tokens::Table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(Follows::Table)
                    .col(
                        ColumnDef::new(Follows::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Follows::FollowerId).uuid().not_null())
                    .col(ColumnDef::new(Follows::FolloweeId).uuid().not_null())
                    .col(ColumnDef::new(Follows::Status).string_len(16).not_null())
                    .col(
                        ColumnDef::new(Follows::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(&mut user_fk(Follows::Table, Follows::FollowerId))
                    .foreign_key(&mut user_fk(Follows::Table, Follows::FolloweeId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("follows_pair")
                    .table(Follows::Table)
                    .col(Follows::FollowerId)
                    .col(Follows::FolloweeId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("follows_by_followee")
                    .table(Follows::Table)
                    .col(Follows::FolloweeId)
                    .col(Follows::Status)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Blocks::Table)
                    .col(ColumnDef::new(Blocks::BlockerId).uuid().not_null())
                    .col(ColumnDef::new(Blocks::BlockedId).uuid().not_null())
                    .col(
                        ColumnDef::new(Blocks::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(Blocks::BlockerId)
                            .col(Blocks::BlockedId),
                    )
                    .foreign_key(&mut user_fk(Blocks::Table, Blocks::BlockerId))
                    .foreign_key(&mut user_fk(Blocks::Table, Blocks::BlockedId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("blocks_by_blocked")
                    .table(Blocks::Table)
                    .col(Blocks::BlockedId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Blocks::Table.into_iden(),
            Follows::Table.into_iden(),
            Tokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
