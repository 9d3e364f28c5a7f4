//! The users role's tables as the legacy history left them. Deleting a
//! user cascades to its tokens, follows and blocks (all this role's). Every
//! table and index is `IF NOT EXISTS`, so on a database upgraded from the
//! legacy history this changes nothing.

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

#[derive(Clone, DeriveIden)]
enum UserImages {
    Table,
    ImageId,
    OwnerId,
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

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
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
                    .col(ts(Users::CreatedAt))
                    .col(ts(Users::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Tokens::Table)
                    .if_not_exists()
                    .col(
                        ColumnDef::new(Tokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Tokens::Kind).string_len(16).not_null())
                    .col(ColumnDef::new(Tokens::UserId).uuid().not_null())
                    .col(ColumnDef::new(Tokens::FamilyId).uuid().not_null())
                    .col(ts(Tokens::ExpiresAt))
                    .col(ts_null(Tokens::UsedAt))
                    .col(ts_null(Tokens::RevokedAt))
                    .col(ts(Tokens::CreatedAt))
                    .foreign_key(&mut user_fk(Tokens::Table, Tokens::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "tokens_by_user",
                Tokens::Table,
                vec![Tokens::UserId.into_iden()],
            ))
            .await?;
        manager
            .create_index(index(
                "tokens_by_family",
                Tokens::Table,
                vec![Tokens::FamilyId.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Follows::Table)
                    .if_not_exists()
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
                    .col(ts(Follows::CreatedAt))
                    .foreign_key(&mut user_fk(Follows::Table, Follows::FollowerId))
                    .foreign_key(&mut user_fk(Follows::Table, Follows::FolloweeId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index(
                    "follows_pair",
                    Follows::Table,
                    vec![
                        Follows::FollowerId.into_iden(),
                        Follows::FolloweeId.into_iden(),
                    ],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "follows_by_followee",
                Follows::Table,
                vec![Follows::FolloweeId.into_iden(), Follows::Status.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Blocks::Table)
                    .if_not_exists()
                    .col(ColumnDef::new(Blocks::BlockerId).uuid().not_null())
                    .col(ColumnDef::new(Blocks::BlockedId).uuid().not_null())
                    .col(ts(Blocks::CreatedAt))
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
            .create_index(index(
                "blocks_by_blocked",
                Blocks::Table,
                vec![Blocks::BlockedId.into_iden()],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserImages::Table)
                    .if_not_exists()
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
            .create_index(index(
                "user_images_owner",
                UserImages::Table,
                vec![UserImages::OwnerId.into_iden()],
            ))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UserImages::Table.into_iden(),
            Blocks::Table.into_iden(),
            Follows::Table.into_iden(),
            Tokens::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
