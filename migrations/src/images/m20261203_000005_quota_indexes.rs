//! Per-account quotas count an account's unfinished uploads and its edits
//! of the last hour at every upload creation and edit: indexes for that
//! (`images_owner_created` already serves the images and bytes stored).

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Uploads {
    Table,
    OwnerId,
}

#[derive(DeriveIden)]
enum Tasks {
    Table,
    OwnerId,
    Kind,
    CreatedAt,
}

const UPLOADS_OWNER: &str = "uploads_owner";
const TASKS_OWNER_KIND: &str = "tasks_owner_kind_created";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(UPLOADS_OWNER)
                    .table(Uploads::Table)
                    .col(Uploads::OwnerId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(TASKS_OWNER_KIND)
                    .table(Tasks::Table)
                    .col(Tasks::OwnerId)
                    .col(Tasks::Kind)
                    .col(Tasks::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(TASKS_OWNER_KIND)
                    .table(Tasks::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name(UPLOADS_OWNER)
                    .table(Uploads::Table)
                    .to_owned(),
            )
            .await
    }
}
