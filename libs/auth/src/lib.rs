//! Bearer tokens.
//!
//! The users role issues a pair at log-in: an access token (an hour) and a
//! refresh token (30 days), both 256 random bits, stored only as SHA-256
//! hashes. The users role verifies access tokens through [`Tokens::verify`]:
//! the cache first, the `tokens` table on a miss. Other roles ask the users
//! role (its `/internal/v1/tokens/verify` route) and keep the answer under
//! the same cache key ([`token_cache_key`], [`cached_verification`],
//! [`cache_verification`]), so that a log-out clears it for every role that
//! shares the cache. A refresh token works once;
//! using it again revokes its whole family (every token descended from the
//! same log-in), since one of the two users of it is a thief.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use pinhole_cache::SharedCache;
use sea_orm::entity::prelude::*;
use sea_orm::{ActiveValue, ConnectionTrait, DatabaseConnection, QuerySelect, TransactionTrait};
use sha2::{Digest, Sha256};

/// The `tokens` table.
pub mod entity {
    use sea_orm::entity::prelude::*;

    /// What a token is for (`tokens.kind`, mapped by the ORM).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
    #[sea_orm(
        rs_type = "String",
        db_type = "String(sea_orm::sea_query::StringLen::None)"
    )]
    pub enum TokenKind {
        /// Sent with each request (`pha_…`).
        #[sea_orm(string_value = "access")]
        Access,
        /// Exchanged once for a new pair (`phr_…`).
        #[sea_orm(string_value = "refresh")]
        Refresh,
    }

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tokens")]
    pub struct Model {
        /// SHA-256 of the token, hex.
        #[sea_orm(primary_key, auto_increment = false)]
        pub token_hash: String,
        pub kind: TokenKind,
        pub user_id: Uuid,
        /// Every token descended from one log-in shares a family.
        pub family_id: Uuid,
        pub expires_at: DateTimeUtc,
        /// When a refresh token was exchanged.
        pub used_at: Option<DateTimeUtc>,
        pub revoked_at: Option<DateTimeUtc>,
        pub created_at: DateTimeUtc,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

use entity::TokenKind;

const ACCESS_PREFIX: &str = "pha_";
const REFRESH_PREFIX: &str = "phr_";
/// How long a verified token is trusted from the cache; bounds how late a
/// revocation can be noticed where the cache could not be cleared.
const CACHE_FOR: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("token store: {0}")]
    Db(#[from] DbErr),
}

/// Why a refresh failed.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error("the refresh token is not valid")]
    Invalid,
    /// A refresh token was used twice; its family is now revoked.
    #[error("the refresh token was already used; every session from that log-in has ended")]
    Reused,
    #[error("token store: {0}")]
    Db(#[from] DbErr),
}

/// Who a verified access token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: Uuid,
    /// The log-in this token descends from.
    pub family_id: Uuid,
}

/// A live access token: whom it speaks for, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub principal: Principal,
    /// When the token expires.
    pub expires_at: DateTime<Utc>,
}

/// A fresh access and refresh token.
#[derive(Debug, Clone)]
pub struct TokenPair {
    pub user_id: Uuid,
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
}

/// Issues, verifies, refreshes and revokes tokens.
#[derive(Clone)]
pub struct Tokens {
    db: DatabaseConnection,
    cache: SharedCache,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// 256 random bits behind a prefix that says what the token is.
fn fresh_token(prefix: &str) -> Result<String, DbErr> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| DbErr::Custom(format!("no randomness: {e}")))?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes)))
}

fn cache_key(hash: &str) -> String {
    format!("auth:token:{hash}")
}

/// Whether `token` has the form of an access token (anything else is not
/// worth a look-up).
pub fn is_access_token(token: &str) -> bool {
    token.starts_with(ACCESS_PREFIX) && token.len() <= 128
}

/// The cache key under which a verification of `token` is kept:
/// `auth:token:{sha256 hex}`.
pub fn token_cache_key(token: &str) -> String {
    cache_key(&hash(token))
}

/// What the cache says of `token`: `None` when it knows nothing (or does not
/// answer), `Some(None)` for a cached token that has expired since,
/// `Some(Some(_))` for a live one.
pub async fn cached_verification(cache: &SharedCache, token: &str) -> Option<Option<Verified>> {
    cached_by_key(cache, &token_cache_key(token)).await
}

async fn cached_by_key(cache: &SharedCache, key: &str) -> Option<Option<Verified>> {
    match cache.get(key).await {
        Ok(Some(cached)) => decode(&cached),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "token cache unavailable");
            None
        }
    }
}

/// Keeps a verification of `token` in the cache for at most a minute, and
/// never past the token's expiry.
pub async fn cache_verification(cache: &SharedCache, token: &str, verified: &Verified) {
    remember(cache, &token_cache_key(token), verified).await;
}

async fn remember(cache: &SharedCache, key: &str, verified: &Verified) {
    let remaining = (verified.expires_at - Utc::now())
        .to_std()
        .unwrap_or_default();
    if remaining.is_zero() {
        return;
    }
    let value = encode(
        verified.principal.user_id,
        verified.principal.family_id,
        verified.expires_at,
    );
    if let Err(e) = cache.set(key, value, remaining.min(CACHE_FOR)).await {
        tracing::warn!(error = %e, "token cache unavailable");
    }
}

fn later(ttl: Duration) -> DateTime<Utc> {
    Utc::now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX)
}

impl Tokens {
    pub fn new(db: DatabaseConnection, cache: SharedCache) -> Self {
        Self {
            db,
            cache,
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
        }
    }

    /// Issues a pair for `user_id` inside `conn` (a new family when `family`
    /// is `None`).
    pub async fn issue<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_id: Uuid,
        family: Option<Uuid>,
    ) -> Result<TokenPair, DbErr> {
        let family_id = family.unwrap_or_else(Uuid::now_v7);
        let pair = TokenPair {
            user_id,
            access_token: fresh_token(ACCESS_PREFIX)?,
            access_expires_at: later(self.access_ttl),
            refresh_token: fresh_token(REFRESH_PREFIX)?,
            refresh_expires_at: later(self.refresh_ttl),
        };
        let now = Utc::now();
        let row = |token: &str, kind: TokenKind, expires_at| entity::ActiveModel {
            token_hash: ActiveValue::Set(hash(token)),
            kind: ActiveValue::Set(kind),
            user_id: ActiveValue::Set(user_id),
            family_id: ActiveValue::Set(family_id),
            expires_at: ActiveValue::Set(expires_at),
            used_at: ActiveValue::Set(None),
            revoked_at: ActiveValue::Set(None),
            created_at: ActiveValue::Set(now),
        };
        entity::Entity::insert_many([
            row(
                &pair.access_token,
                TokenKind::Access,
                pair.access_expires_at,
            ),
            row(
                &pair.refresh_token,
                TokenKind::Refresh,
                pair.refresh_expires_at,
            ),
        ])
        .exec(conn)
        .await?;
        Ok(pair)
    }

    /// The principal an access token speaks for, or `None` when it is not a
    /// live access token.
    pub async fn verify(&self, token: &str) -> Result<Option<Principal>, AuthError> {
        Ok(self.verify_live(token).await?.map(|v| v.principal))
    }

    /// Like [`Tokens::verify`], with the token's expiry (for callers that
    /// cache the answer).
    pub async fn verify_live(&self, token: &str) -> Result<Option<Verified>, AuthError> {
        if !is_access_token(token) {
            return Ok(None);
        }
        let hash = hash(token);
        let key = cache_key(&hash);
        if let Some(cached) = cached_by_key(&self.cache, &key).await {
            return Ok(cached);
        }
        let now = Utc::now();
        let row = entity::Entity::find_by_id(hash.as_str())
            .filter(entity::Column::Kind.eq(TokenKind::Access))
            .one(&self.db)
            .await?;
        let live = row.filter(|r| r.revoked_at.is_none() && r.expires_at > now);
        let Some(row) = live else {
            return Ok(None);
        };
        let verified = Verified {
            principal: Principal {
                user_id: row.user_id,
                family_id: row.family_id,
            },
            expires_at: row.expires_at,
        };
        remember(&self.cache, &key, &verified).await;
        // A revocation between the read and the fill would be cached for a
        // minute: look again. A revocation after this look clears the cache
        // itself.
        let still_live = entity::Entity::find_by_id(hash)
            .filter(entity::Column::RevokedAt.is_null())
            .count(&self.db)
            .await?
            == 1;
        if !still_live {
            self.forget(&[row.token_hash]).await;
            return Ok(None);
        }
        Ok(Some(verified))
    }

    /// Exchanges a refresh token for a new pair in the same family.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair, RefreshError> {
        if !refresh_token.starts_with(REFRESH_PREFIX) || refresh_token.len() > 128 {
            return Err(RefreshError::Invalid);
        }
        let hash = hash(refresh_token);
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let claimed = entity::Entity::update_many()
            .col_expr(entity::Column::UsedAt, Expr::value(now))
            .filter(entity::Column::TokenHash.eq(hash.as_str()))
            .filter(entity::Column::Kind.eq(TokenKind::Refresh))
            .filter(entity::Column::UsedAt.is_null())
            .filter(entity::Column::RevokedAt.is_null())
            .filter(entity::Column::ExpiresAt.gt(now))
            .exec(&txn)
            .await?
            .rows_affected
            == 1;
        if claimed {
            let row = entity::Entity::find_by_id(hash)
                .one(&txn)
                .await?
                .ok_or(RefreshError::Invalid)?;
            let pair = self.issue(&txn, row.user_id, Some(row.family_id)).await?;
            txn.commit().await?;
            return Ok(pair);
        }
        txn.rollback().await?;
        let row = entity::Entity::find_by_id(hash)
            .filter(entity::Column::Kind.eq(TokenKind::Refresh))
            .one(&self.db)
            .await?;
        match row {
            Some(row) if row.used_at.is_some() && row.revoked_at.is_none() => {
                tracing::warn!(user_id = %row.user_id, family_id = %row.family_id,
                    "refresh token reused; revoking its family");
                self.revoke_family(row.family_id).await?;
                Err(RefreshError::Reused)
            }
            _ => Err(RefreshError::Invalid),
        }
    }

    /// Ends every session of one log-in (log-out, or a stolen refresh token).
    pub async fn revoke_family(&self, family_id: Uuid) -> Result<(), DbErr> {
        // A refresh in flight holds a lock on the token it exchanges, so a
        // pass waits for it; the pair it commits meanwhile is caught by the
        // next pass. Stop once a pass finds nothing left.
        for _ in 0..8 {
            let revoked = entity::Entity::update_many()
                .col_expr(entity::Column::RevokedAt, Expr::value(Utc::now()))
                .filter(entity::Column::FamilyId.eq(family_id))
                .filter(entity::Column::RevokedAt.is_null())
                .exec_with_returning(&self.db)
                .await?;
            if revoked.is_empty() {
                break;
            }
            let hashes: Vec<String> = revoked
                .into_iter()
                .filter(|t| t.kind == TokenKind::Access)
                .map(|t| t.token_hash)
                .collect();
            self.forget(&hashes).await;
        }
        Ok(())
    }

    /// Deletes every token of `user_id` inside `conn` (account deletion).
    /// Returns the cache entries to [`Tokens::forget`] once committed.
    pub async fn delete_user<C: ConnectionTrait>(
        &self,
        conn: &C,
        user_id: Uuid,
    ) -> Result<Vec<String>, DbErr> {
        let hashes: Vec<String> = entity::Entity::find()
            .select_only()
            .column(entity::Column::TokenHash)
            .filter(entity::Column::UserId.eq(user_id))
            .filter(entity::Column::Kind.eq(TokenKind::Access))
            .into_tuple()
            .all(conn)
            .await?;
        entity::Entity::delete_many()
            .filter(entity::Column::UserId.eq(user_id))
            .exec(conn)
            .await?;
        Ok(hashes)
    }

    /// Drops cached verifications, so revoked tokens stop working at once.
    pub async fn forget(&self, hashes: &[String]) {
        for hash in hashes {
            if let Err(e) = self.cache.delete(&cache_key(hash)).await {
                tracing::warn!(error = %e, "could not clear a revoked token from the cache; it expires within a minute");
            }
        }
    }
}

fn encode(user_id: Uuid, family_id: Uuid, expires_at: DateTime<Utc>) -> Bytes {
    Bytes::from(format!("{user_id}|{family_id}|{}", expires_at.timestamp()))
}

/// `Some(None)`: a cached token that has expired since.
fn decode(bytes: &[u8]) -> Option<Option<Verified>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut parts = text.split('|');
    let user_id = parts.next()?.parse().ok()?;
    let family_id = parts.next()?.parse().ok()?;
    let expires: i64 = parts.next()?.parse().ok()?;
    if expires <= Utc::now().timestamp() {
        return Some(None);
    }
    Some(Some(Verified {
        principal: Principal { user_id, family_id },
        expires_at: DateTime::from_timestamp(expires, 0)?,
    }))
}

/// Password hashing with argon2id (OWASP's parameters: 19 MiB, 2 passes).
pub mod password {
    use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
    use argon2::{Algorithm, Argon2, Params, Version};

    fn hasher() -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
    }

    /// The PHC string for `password`. CPU-bound (tens of milliseconds): call
    /// it from a blocking thread.
    pub fn hash(password: &str) -> Result<String, String> {
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
        let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    }

    /// Whether `password` matches `phc`. CPU-bound, like [`hash`].
    pub fn verify(password: &str, phc: &str) -> bool {
        PasswordHash::new(phc)
            .map(|parsed| {
                hasher()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    }

    /// At most one hash per core at a time: each takes 19 MiB and a core's
    /// worth of CPU, so more at once only queues and eats memory.
    fn permits() -> &'static tokio::sync::Semaphore {
        static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
        PERMITS.get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
            tokio::sync::Semaphore::new(cores)
        })
    }

    async fn bounded<T: Send + 'static>(
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let _permit = permits().acquire().await.map_err(|e| e.to_string())?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| e.to_string())
    }

    /// [`hash`] on a blocking thread, one per core at most.
    pub async fn hash_async(password: String) -> Result<String, String> {
        bounded(move || hash(&password)).await?
    }

    /// [`verify`] on a blocking thread, one per core at most.
    pub async fn verify_async(password: String, phc: String) -> Result<bool, String> {
        bounded(move || verify(&password, &phc)).await
    }

    /// A hash to verify against when the account does not exist, so that
    /// unknown accounts cost the same time as wrong passwords.
    pub fn decoy() -> &'static str {
        static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        DECOY.get_or_init(|| hash("not a real password").unwrap_or_default())
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn hashes_verify_only_their_password() {
            let phc = super::hash("correct horse").expect("hash");
            assert!(phc.starts_with("$argon2id$"));
            assert!(super::verify("correct horse", &phc));
            assert!(!super::verify("wrong horse", &phc));
            assert!(!super::verify("correct horse", "not a hash"));
            assert_ne!(phc, super::hash("correct horse").expect("hash"), "salted");
        }
    }
}
