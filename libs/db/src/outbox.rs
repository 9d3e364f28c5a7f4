//! The transactional outbox.
//!
//! A role writes its domain change and the events describing it in one
//! database transaction ([`Outbox::enqueue`]). The [`OutboxRelay`] publishes
//! pending events to the bus in order and deletes them only once the bus has
//! acknowledged them, so writes keep working while the bus is down and nothing
//! is lost when it comes back. Delivery is at least once: consumers dedupe by
//! event id. An event the bus refuses for good (too large, unknown topic) is
//! moved to `outbox_dead` with the reason, so it never holds up the others.
//! An event that fails for a while (the bus is down, a partition has no
//! leader) waits on its own until `next_attempt_at`, later each time; the
//! events of other keys keep flowing, those of its key wait behind it. The
//! relay as a whole backs off only when a round delivered nothing.
//!
//! Per-key order: on Postgres, [`Outbox::enqueue`] takes a transaction lock
//! per key, so that events of one entity get their sequence numbers in commit
//! order; SQLite has one writer at a time anyway. One process relays a SQLite
//! database; on Postgres, many may run and take turns.

use std::sync::Arc;
use std::time::Duration;

use pinhole_bus::{Message, SharedBus};
use pinhole_events::OutgoingEvent;
use sea_orm::entity::prelude::*;
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{
    Condition, ConnectionTrait, DatabaseBackend, QueryOrder, QuerySelect, Statement,
    TransactionTrait,
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
        /// Failed publishing attempts so far.
        pub attempts: i32,
        #[sea_orm(column_type = "Text", nullable)]
        pub last_error: Option<String>,
        /// After a failed attempt: not before then. Later events of the same
        /// key wait for this one.
        pub next_attempt_at: Option<DateTimeUtc>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The `outbox_dead` table: events the bus refused for good.
pub mod dead {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox_dead")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        #[sea_orm(unique)]
        pub event_id: Uuid,
        pub topic: String,
        pub event_key: String,
        #[sea_orm(column_type = "Text")]
        pub payload: String,
        pub created_at: DateTimeUtc,
        pub attempts: i32,
        #[sea_orm(column_type = "Text")]
        pub last_error: String,
        pub failed_at: DateTimeUtc,
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
        if txn.get_database_backend() == DatabaseBackend::Postgres {
            // Sequence numbers are handed out at insert, not at commit: hold
            // each key until commit so one entity's events commit in order.
            let mut keys: Vec<&str> = events.iter().map(|e| e.key.as_str()).collect();
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                txn.execute(Statement::from_sql_and_values(
                    DatabaseBackend::Postgres,
                    "SELECT pg_advisory_xact_lock($1, hashtext($2))",
                    [KEY_LOCKS.into(), key.into()],
                ))
                .await?;
            }
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
            attempts: sea_orm::ActiveValue::Set(0),
            last_error: sea_orm::ActiveValue::Set(None),
            next_attempt_at: sea_orm::ActiveValue::Set(None),
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

    /// Events the bus refused for good, oldest first.
    pub async fn dead<C: ConnectionTrait>(&self, db: &C) -> Result<Vec<dead::Model>, DbErr> {
        dead::Entity::find()
            .order_by_asc(dead::Column::Seq)
            .all(db)
            .await
    }
}

#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Events published per round.
    pub batch: u64,
    /// How often to look for events written by other processes.
    pub poll_interval: Duration,
    /// Longest wait between rounds while nothing can be delivered, and
    /// between attempts of one event.
    pub max_backoff: Duration,
    /// Wait before an event's second attempt; it doubles with each failure.
    pub first_retry: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch: 256,
            poll_interval: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            first_retry: Duration::from_millis(100),
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

/// Moves an event the bus refused for good to `outbox_dead`.
async fn bury<C: ConnectionTrait>(
    conn: &C,
    row: &entity::Model,
    error: &pinhole_bus::BusError,
) -> Result<(), DbErr> {
    tracing::error!(event_id = %row.event_id, topic = %row.topic, error = %error,
        "the bus refused an event for good; moved to outbox_dead");
    metrics::counter!("pinhole_outbox_dead_total").increment(1);
    let grave = dead::ActiveModel {
        seq: sea_orm::ActiveValue::Set(row.seq),
        event_id: sea_orm::ActiveValue::Set(row.event_id),
        topic: sea_orm::ActiveValue::Set(row.topic.clone()),
        event_key: sea_orm::ActiveValue::Set(row.event_key.clone()),
        payload: sea_orm::ActiveValue::Set(row.payload.clone()),
        created_at: sea_orm::ActiveValue::Set(row.created_at),
        attempts: sea_orm::ActiveValue::Set(row.attempts + 1),
        last_error: sea_orm::ActiveValue::Set(error.to_string()),
        failed_at: sea_orm::ActiveValue::Set(chrono::Utc::now()),
    };
    // Already buried by an earlier round that stopped half-way: fine.
    dead::Entity::insert(grave)
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(dead::Column::EventId)
                .do_nothing()
                .to_owned(),
        )
        .do_nothing()
        .exec(conn)
        .await?;
    entity::Entity::delete_by_id(row.seq).exec(conn).await?;
    Ok(())
}

/// The outcome of one round.
#[derive(Default)]
struct Drained {
    /// Events delivered or buried.
    done: usize,
    /// Why some events must wait for their next attempt.
    retry: Option<pinhole_bus::BusError>,
    /// A whole batch was read: more may be ready.
    full: bool,
}

impl Drained {
    /// Failing only when nothing could be delivered.
    fn into_result(self) -> Result<usize, RelayError> {
        match self.retry {
            Some(e) if self.done == 0 => Err(e.into()),
            _ => Ok(self.done),
        }
    }
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
/// The first half of the two-part advisory locks held per event key.
const KEY_LOCKS: i32 = 0x7068; // "ph"

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

    /// Publishes one batch of the events that are ready: those not waiting
    /// for their next attempt, and not behind an event of their key that
    /// is. Returns how many events went out (or were buried); an error only
    /// when some failed and none went out.
    ///
    /// On Postgres several relays (one per instance) may run: a transaction
    /// advisory lock lets one of them work at a time, which keeps per-key
    /// order. SQLite has a single writer process.
    pub async fn relay_once(&self) -> Result<usize, RelayError> {
        self.round().await?.into_result()
    }

    async fn round(&self) -> Result<Drained, DbErr> {
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
                return Ok(Drained::default());
            }
            // What went out and what was buried is recorded even when
            // some events must wait, so nothing is sent twice on retry.
            let drained = self.drain(&txn).await?;
            txn.commit().await?;
            Ok(drained)
        } else {
            self.drain(&self.db).await
        }
    }

    /// The wait before the next attempt of an event that failed `attempts`
    /// times before this failure.
    fn retry_delay(&self, attempts: i32) -> Duration {
        let doublings = u32::try_from(attempts.clamp(0, 16)).unwrap_or(0);
        self.options
            .first_retry
            .saturating_mul(1 << doublings)
            .min(self.options.max_backoff)
    }

    async fn drain<C: ConnectionTrait>(&self, conn: &C) -> Result<Drained, DbErr> {
        let now = chrono::Utc::now();
        // An event of the same key, earlier, waiting for its next attempt.
        let waiting = Alias::new("waiting");
        let held_back = Query::select()
            .expr(Expr::val(1))
            .from_as(entity::Entity, waiting.clone())
            .and_where(
                Expr::col((waiting.clone(), entity::Column::EventKey))
                    .equals((entity::Entity, entity::Column::EventKey)),
            )
            .and_where(
                Expr::col((waiting.clone(), entity::Column::Seq))
                    .lt(Expr::col((entity::Entity, entity::Column::Seq))),
            )
            .and_where(Expr::col((waiting, entity::Column::NextAttemptAt)).gt(now))
            .to_owned();
        let rows = entity::Entity::find()
            .filter(
                Condition::any()
                    .add(entity::Column::NextAttemptAt.is_null())
                    .add(entity::Column::NextAttemptAt.lte(now)),
            )
            .filter(Expr::exists(held_back).not())
            .order_by_asc(entity::Column::Seq)
            .limit(self.options.batch)
            .all(conn)
            .await?;
        if rows.is_empty() {
            return Ok(Drained::default());
        }
        let full = rows.len() as u64 >= self.options.batch;
        let messages: Vec<Message<'_>> = rows
            .iter()
            .map(|row| Message {
                topic: &row.topic,
                key: row.event_key.as_bytes(),
                payload: row.payload.as_bytes(),
            })
            .collect();
        let results = self.bus.publish(&messages).await;

        let mut delivered = Vec::new();
        let mut buried = 0;
        let mut retry = None;
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(_) => delivered.push(row.seq),
                Err(e) if e.is_permanent() => {
                    bury(conn, row, &e).await?;
                    buried += 1;
                }
                Err(e) => {
                    let wait = self.retry_delay(row.attempts);
                    let next = now
                        + chrono::Duration::from_std(wait)
                            .unwrap_or_else(|_| chrono::Duration::seconds(30));
                    tracing::debug!(event_id = %row.event_id, key = %row.event_key,
                        attempts = row.attempts + 1, error = %e, retry_in = ?wait,
                        "publishing an event failed; it waits for its next attempt");
                    entity::Entity::update_many()
                        .col_expr(
                            entity::Column::Attempts,
                            Expr::col(entity::Column::Attempts).add(1),
                        )
                        .col_expr(entity::Column::LastError, Expr::value(e.to_string()))
                        .col_expr(entity::Column::NextAttemptAt, Expr::value(next))
                        .filter(entity::Column::Seq.eq(row.seq))
                        .exec(conn)
                        .await?;
                    retry.get_or_insert(e);
                }
            }
        }
        // Delete exactly what went out: a transaction that committed since
        // the read may hold a lower sequence number that was not published.
        if !delivered.is_empty() {
            entity::Entity::delete_many()
                .filter(entity::Column::Seq.is_in(delivered.iter().copied()))
                .exec(conn)
                .await?;
        }
        metrics::counter!("pinhole_outbox_relayed_total").increment(delivered.len() as u64);
        Ok(Drained {
            done: delivered.len() + buried,
            retry,
            full,
        })
    }

    /// Relays until the task is dropped: at once when woken or while whole
    /// batches go out, every `poll_interval` otherwise, backing off only
    /// while rounds deliver nothing at all (events that fail wait on their
    /// own next attempt).
    pub async fn run(self) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let failed = match self.round().await {
                Ok(d) if d.done == 0 && d.retry.is_some() => d.retry.map(RelayError::from),
                Ok(d) => {
                    backoff = Duration::from_millis(100);
                    if let Some(e) = &d.retry {
                        tracing::warn!(error = %e, delivered = d.done,
                            "some outbox events failed; they wait for their next attempt");
                    }
                    if d.full && d.done > 0 {
                        continue;
                    }
                    let _ = tokio::time::timeout(
                        self.options.poll_interval,
                        self.outbox.wake.notified(),
                    )
                    .await;
                    None
                }
                Err(e) => Some(RelayError::from(e)),
            };
            if let Some(e) = failed {
                tracing::warn!(error = %e, retry_in = ?backoff, "outbox relay delivered nothing");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(self.options.max_backoff);
            }
        }
    }
}
