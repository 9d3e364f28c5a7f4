//! The transactional outbox.
//!
//! A role writes its domain change and the events describing it in one
//! database transaction ([`Outbox::enqueue`]). The [`OutboxRelay`] publishes
//! pending events to the bus in order and deletes them only once the bus has
//! acknowledged them, so writes keep working while the bus is down and nothing
//! is lost when it comes back. Delivery is at least once: consumers dedupe by
//! event id.

use std::sync::Arc;
use std::time::Duration;

use pinhole_bus::{Message, SharedBus};
use pinhole_events::OutgoingEvent;
use sea_orm::entity::prelude::*;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use tokio::sync::Notify;

/// The `outbox` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub seq: i64,
        #[sea_orm(unique)]
        pub event_id: Uuid,
        pub topic: String,
        pub event_key: String,
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Writes events into the outbox and wakes the relay.
#[derive(Clone, Default)]
pub struct Outbox {
    wake: Arc<Notify>,
}

impl Outbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `events` to the outbox inside `txn`, the transaction of the
    /// change they describe. Call [`Outbox::wake`] after committing.
    pub async fn enqueue<C: ConnectionTrait>(
        &self,
        txn: &C,
        events: &[OutgoingEvent],
    ) -> Result<(), DbErr> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = events.iter().map(|e| entity::ActiveModel {
            seq: sea_orm::ActiveValue::NotSet,
            event_id: sea_orm::ActiveValue::Set(e.envelope.id),
            topic: sea_orm::ActiveValue::Set(e.topic.to_owned()),
            event_key: sea_orm::ActiveValue::Set(e.key.clone()),
            payload: sea_orm::ActiveValue::Set(
                String::from_utf8(e.envelope.to_json()).unwrap_or_default(),
            ),
            created_at: sea_orm::ActiveValue::Set(e.envelope.time),
        });
        entity::Entity::insert_many(rows).exec(txn).await?;
        Ok(())
    }

    /// Tells the relay that committed events are waiting.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Events not yet relayed.
    pub async fn pending<C: ConnectionTrait>(&self, db: &C) -> Result<u64, DbErr> {
        entity::Entity::find().count(db).await
    }
}

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Events published per round.
    pub batch: u64,
    /// How often to look for events written by other processes.
    pub poll_interval: Duration,
    /// Longest wait between attempts while the bus fails.
    pub max_backoff: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch: 256,
            poll_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("outbox: {0}")]
    Db(#[from] DbErr),
    #[error("publishing: {0}")]
    Bus(#[from] pinhole_bus::BusError),
}

/// Moves events from the outbox to the bus.
pub struct OutboxRelay {
    db: DatabaseConnection,
    bus: SharedBus,
    outbox: Outbox,
    options: RelayOptions,
}

/// Any number; the advisory lock only has to be the same in every relay.
const RELAY_LOCK: i64 = 0x0070_696e_686f_6c65; // "pinhole"

impl OutboxRelay {
    pub fn new(
        db: DatabaseConnection,
        bus: SharedBus,
        outbox: Outbox,
        options: RelayOptions,
    ) -> Self {
        Self {
            db,
            bus,
            outbox,
            options,
        }
    }

    /// Publishes one batch; returns how many events went out.
    ///
    /// On Postgres several relays (one per instance) may run: a transaction
    /// advisory lock lets one of them work at a time, which keeps per-key
    /// order. SQLite has a single writer process.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        if self.db.get_database_backend() == DatabaseBackend::Postgres {
            let txn = self.db.begin().await?;
            let locked = txn
                .query_one(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT pg_try_advisory_xact_lock($1) AS locked",
                    [RELAY_LOCK.into()],
                ))
                .await?
                .map(|row| row.try_get::<bool>("", "locked"))
                .transpose()?
                .unwrap_or(false);
            if !locked {
                txn.rollback().await?;
                return Ok(0);
            }
            let sent = self.drain(&txn).await?;
            txn.commit().await?;
            Ok(sent)
        } else {
            self.drain(&self.db).await
        }
    }

    async fn drain<C: ConnectionTrait>(&self, conn: &C) -> Result<usize, RelayError> {
        let rows = entity::Entity::find()
            .order_by_asc(entity::Column::Seq)
            .limit(self.options.batch)
            .all(conn)
            .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let messages: Vec<Message<'_>> = rows
            .iter()
            .map(|row| Message {
                topic: &row.topic,
                key: row.event_key.as_bytes(),
                payload: row.payload.as_bytes(),
            })
            .collect();
        self.bus.publish(&messages).await?;
        // Delete exactly what went out: a transaction that committed since
        // the read may hold a lower sequence number that was not published.
        entity::Entity::delete_many()
            .filter(entity::Column::Seq.is_in(rows.iter().map(|r| r.seq)))
            .exec(conn)
            .await?;
        metrics::counter!("pinhole_outbox_relayed_total").increment(rows.len() as u64);
        Ok(rows.len())
    }

    /// Relays until the task is dropped: at once when woken, every
    /// `poll_interval` otherwise, backing off while the bus fails.
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.relay_once().await {
                Ok(sent) if sent as u64 >= self.options.batch => continue,
                Ok(_) => {
                    backoff = Duration::from_millis(100);
                    let _ = tokio::time::timeout(
                        self.options.poll_interval,
                        self.outbox.wake.notified(),
                    )
                    .await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay failed");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.options.max_backoff);
                }
            }
        }
    }
}
