//! What the search role keeps of the other roles, from their events: each
//! image's last record, its likes and comments, the accounts, follows and
//! blocks. Documents are rebuilt from it, so that an event about a like or
//! an account changes the documents it concerns.
//!
//! It lives beside the index it feeds (a SQLite file in the index's
//! generation directory), one per search instance, and is rebuilt with the
//! index by `pinhole search reindex`. Every change is an upsert or a delete
//! by key: replayed events leave it as it was.

use std::path::Path;

use pinhole_events::images::ImageRecord;
use pinhole_events::users::AccountCard;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr, Statement, Value};
use uuid::Uuid;

const SCHEMA: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, owner TEXT NOT NULL, record TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS images_owner ON images (owner)",
    "CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, card TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS follows (follower TEXT NOT NULL, followee TEXT NOT NULL, approved INTEGER NOT NULL, PRIMARY KEY (follower, followee))",
    "CREATE TABLE IF NOT EXISTS blocks (blocker TEXT NOT NULL, blocked TEXT NOT NULL, PRIMARY KEY (blocker, blocked))",
    "CREATE INDEX IF NOT EXISTS blocks_blocked ON blocks (blocked)",
    "CREATE TABLE IF NOT EXISTS likes (image TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (image, user_id))",
    "CREATE TABLE IF NOT EXISTS comments (id TEXT PRIMARY KEY, image TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS comments_image ON comments (image)",
];

/// The read model of one index generation.
#[derive(Clone)]
pub struct State {
    db: DatabaseConnection,
}

/// Who the viewer is to others: whom it follows (approved) and who is on
/// either side of a block with it.
#[derive(Debug, Default, Clone)]
pub struct Relations {
    pub follows: Vec<Uuid>,
    pub blocked: Vec<Uuid>,
}

fn s(id: Uuid) -> Value {
    Value::from(id.to_string())
}

fn uuid_at(row: &sea_orm::QueryResult, col: &str) -> Result<Uuid, DbErr> {
    let v: String = row.try_get("", col)?;
    v.parse()
        .map_err(|e| DbErr::Custom(format!("search state: `{v}` in {col}: {e}")))
}

impl State {
    /// Opens (creating) the state in `path`.
    pub async fn open(path: &Path) -> Result<Self, DbErr> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let mut options = sea_orm::ConnectOptions::new(url);
        options.max_connections(4).sqlx_logging(false);
        let db = Database::connect(options).await?;
        for sql in SCHEMA {
            db.execute_unprepared(sql).await?;
        }
        Ok(Self { db })
    }

    /// The connection, for a transaction over several changes.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    async fn exec<C: ConnectionTrait>(c: &C, sql: &str, values: Vec<Value>) -> Result<(), DbErr> {
        c.execute(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await
        .map(|_| ())
    }

    async fn rows<C: ConnectionTrait>(
        c: &C,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<sea_orm::QueryResult>, DbErr> {
        c.query_all(Statement::from_sql_and_values(
            DbBackend::Sqlite,
            sql,
            values,
        ))
        .await
    }

    pub async fn put_image<C: ConnectionTrait>(c: &C, r: &ImageRecord) -> Result<(), DbErr> {
        let record = serde_json::to_string(r).map_err(|e| DbErr::Custom(e.to_string()))?;
        Self::exec(
            c,
            "INSERT INTO images (id, owner, record) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, record = excluded.record",
            vec![s(r.image_id), s(r.owner_id), record.into()],
        )
        .await
    }

    /// Merges processing results into the image's record, when it is known.
    pub async fn put_analysis<C: ConnectionTrait>(
        c: &C,
        image: Uuid,
        analysis: &serde_json::Value,
    ) -> Result<(), DbErr> {
        if let Some(mut r) = Self::image(c, image).await? {
            r.analysis = Some(analysis.clone());
            Self::put_image(c, &r).await?;
        }
        Ok(())
    }

    pub async fn delete_image<C: ConnectionTrait>(c: &C, image: Uuid) -> Result<(), DbErr> {
        for sql in [
            "DELETE FROM images WHERE id = ?",
            "DELETE FROM likes WHERE image = ?",
            "DELETE FROM comments WHERE image = ?",
        ] {
            Self::exec(c, sql, vec![s(image)]).await?;
        }
        Ok(())
    }

    pub async fn image<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<Option<ImageRecord>, DbErr> {
        let rows = Self::rows(c, "SELECT record FROM images WHERE id = ?", vec![s(id)]).await?;
        match rows.first() {
            None => Ok(None),
            Some(row) => {
                let json: String = row.try_get("", "record")?;
                serde_json::from_str(&json)
                    .map(Some)
                    .map_err(|e| DbErr::Custom(format!("search state: record of {id}: {e}")))
            }
        }
    }

    /// The ids of `owner`'s images.
    pub async fn images_of<C: ConnectionTrait>(c: &C, owner: Uuid) -> Result<Vec<Uuid>, DbErr> {
        Self::rows(c, "SELECT id FROM images WHERE owner = ?", vec![s(owner)])
            .await?
            .iter()
            .map(|r| uuid_at(r, "id"))
            .collect()
    }

    pub async fn put_account<C: ConnectionTrait>(c: &C, a: &AccountCard) -> Result<(), DbErr> {
        let card = serde_json::to_string(a).map_err(|e| DbErr::Custom(e.to_string()))?;
        Self::exec(
            c,
            "INSERT INTO accounts (id, card) VALUES (?, ?) \
             ON CONFLICT (id) DO UPDATE SET card = excluded.card",
            vec![s(a.user_id), card.into()],
        )
        .await
    }

    /// Forgets an account and every edge it is part of.
    pub async fn delete_account<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<(), DbErr> {
        for sql in [
            "DELETE FROM accounts WHERE id = ?1",
            "DELETE FROM follows WHERE follower = ?1 OR followee = ?1",
            "DELETE FROM blocks WHERE blocker = ?1 OR blocked = ?1",
            "DELETE FROM likes WHERE user_id = ?1",
        ] {
            Self::exec(c, sql, vec![s(id)]).await?;
        }
        Ok(())
    }

    pub async fn account<C: ConnectionTrait>(
        c: &C,
        id: Uuid,
    ) -> Result<Option<AccountCard>, DbErr> {
        let rows = Self::rows(c, "SELECT card FROM accounts WHERE id = ?", vec![s(id)]).await?;
        match rows.first() {
            None => Ok(None),
            Some(row) => {
                let json: String = row.try_get("", "card")?;
                serde_json::from_str(&json)
                    .map(Some)
                    .map_err(|e| DbErr::Custom(format!("search state: card of {id}: {e}")))
            }
        }
    }

    pub async fn put_follow<C: ConnectionTrait>(
        c: &C,
        follower: Uuid,
        followee: Uuid,
        approved: bool,
    ) -> Result<(), DbErr> {
        Self::exec(
            c,
            "INSERT INTO follows (follower, followee, approved) VALUES (?, ?, ?) \
             ON CONFLICT (follower, followee) DO UPDATE SET approved = excluded.approved",
            vec![s(follower), s(followee), i32::from(approved).into()],
        )
        .await
    }

    pub async fn delete_follow<C: ConnectionTrait>(
        c: &C,
        follower: Uuid,
        followee: Uuid,
    ) -> Result<(), DbErr> {
        Self::exec(
            c,
            "DELETE FROM follows WHERE follower = ? AND followee = ?",
            vec![s(follower), s(followee)],
        )
        .await
    }

    pub async fn put_block<C: ConnectionTrait>(c: &C, by: Uuid, whom: Uuid) -> Result<(), DbErr> {
        Self::exec(
            c,
            "INSERT INTO blocks (blocker, blocked) VALUES (?, ?) ON CONFLICT DO NOTHING",
            vec![s(by), s(whom)],
        )
        .await
    }

    pub async fn delete_block<C: ConnectionTrait>(
        c: &C,
        by: Uuid,
        whom: Uuid,
    ) -> Result<(), DbErr> {
        Self::exec(
            c,
            "DELETE FROM blocks WHERE blocker = ? AND blocked = ?",
            vec![s(by), s(whom)],
        )
        .await
    }

    pub async fn put_like<C: ConnectionTrait>(c: &C, image: Uuid, user: Uuid) -> Result<(), DbErr> {
        Self::exec(
            c,
            "INSERT INTO likes (image, user_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            vec![s(image), s(user)],
        )
        .await
    }

    pub async fn delete_like<C: ConnectionTrait>(
        c: &C,
        image: Uuid,
        user: Uuid,
    ) -> Result<(), DbErr> {
        Self::exec(
            c,
            "DELETE FROM likes WHERE image = ? AND user_id = ?",
            vec![s(image), s(user)],
        )
        .await
    }

    pub async fn put_comment<C: ConnectionTrait>(
        c: &C,
        id: Uuid,
        image: Uuid,
        body: &str,
    ) -> Result<(), DbErr> {
        Self::exec(
            c,
            "INSERT INTO comments (id, image, body) VALUES (?, ?, ?) \
             ON CONFLICT (id) DO UPDATE SET image = excluded.image, body = excluded.body",
            vec![s(id), s(image), body.into()],
        )
        .await
    }

    pub async fn delete_comment<C: ConnectionTrait>(c: &C, id: Uuid) -> Result<(), DbErr> {
        Self::exec(c, "DELETE FROM comments WHERE id = ?", vec![s(id)]).await
    }

    pub async fn like_count<C: ConnectionTrait>(c: &C, image: Uuid) -> Result<u64, DbErr> {
        let rows = Self::rows(
            c,
            "SELECT COUNT(*) AS n FROM likes WHERE image = ?",
            vec![s(image)],
        )
        .await?;
        let n: i64 = match rows.first() {
            Some(r) => r.try_get("", "n")?,
            None => 0,
        };
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub async fn comments_of<C: ConnectionTrait>(c: &C, image: Uuid) -> Result<Vec<String>, DbErr> {
        Self::rows(
            c,
            "SELECT body FROM comments WHERE image = ? ORDER BY id",
            vec![s(image)],
        )
        .await?
        .iter()
        .map(|r| r.try_get("", "body"))
        .collect()
    }

    /// Whom `viewer` follows (approved), and who blocks it or is blocked
    /// by it.
    pub async fn relations(&self, viewer: Uuid) -> Result<Relations, DbErr> {
        let follows = Self::rows(
            &self.db,
            "SELECT followee AS id FROM follows WHERE follower = ? AND approved = 1",
            vec![s(viewer)],
        )
        .await?
        .iter()
        .map(|r| uuid_at(r, "id"))
        .collect::<Result<_, _>>()?;
        let blocked = Self::rows(
            &self.db,
            "SELECT blocked AS id FROM blocks WHERE blocker = ?1 \
             UNION SELECT blocker AS id FROM blocks WHERE blocked = ?1",
            vec![s(viewer)],
        )
        .await?
        .iter()
        .map(|r| uuid_at(r, "id"))
        .collect::<Result<_, _>>()?;
        Ok(Relations { follows, blocked })
    }
}
