//! Refresh-token families (one per sign-in at a client) and their tokens.
//!
//! A family started since migration 0015 holds its live token's hash and its
//! predecessor's in its own row ([`TokenKey::Named`], [`advance`]); families started
//! before keep one `refresh_tokens` row per token ([`TokenKey::Legacy`], [`consume`]) until
//! they end.

use std::sync::LazyLock;

use sqlx::FromRow;

use super::{Backend, Exec, StoreError, on};
use crate::crypto;

/// A refresh family: one sign-in of a user at a client, the `sid` of its tokens.
#[derive(Debug, Clone, FromRow)]
pub struct FamilyRow {
    /// The family id, the `sid` claim and the `sid` of `session.revoked` events.
    pub id: String,
    /// The user signed in.
    pub user_id: String,
    /// The client the tokens were issued to.
    pub client_id: String,
    /// The scope granted at sign-in, space-separated; a refresh may narrow it, never widen it.
    pub scope: String,
    /// JSON list of the audiences granted at sign-in.
    pub audience: String,
    /// Unix seconds, as are the other times.
    pub created_at: i64,
    /// The last refresh, for the idle timeout.
    pub last_used_at: i64,
    /// The absolute end of the session, whatever its use.
    pub expires_at: i64,
    /// When the family was revoked; `None` while it is live.
    pub revoked_at: Option<i64>,
    /// Why it was revoked (`roles_changed`, …), when it was and a reason was recorded.
    pub revoke_reason: Option<String>,
    /// How the user signed in (RFC 8176 values, space-separated), for the `amr` of its
    /// access tokens.
    pub amr: String,
}

/// How a presented refresh token is found (see migration 0015).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKey {
    /// A token of a family started before migration 0015: its row in `refresh_tokens`,
    /// by the token's SHA-256.
    Legacy([u8; 32]),
    /// A token that names its family: the family by the SHA-256 of the handle every
    /// token of the family carries, then the token's SHA-256 among the family's head
    /// and the head's predecessor.
    Named {
        /// SHA-256 of the family's handle.
        handle: [u8; 32],
        /// SHA-256 of the whole token.
        hash: [u8; 32],
    },
}

/// A refresh token joined with its family.
#[derive(Debug, Clone, FromRow)]
pub struct TokenRow {
    /// SHA-256 of the refresh token; the token itself is never stored.
    pub hash: Vec<u8>,
    /// Unix seconds.
    pub issued_at: i64,
    /// This token's scope, space-separated (narrower than the family's after a narrowing refresh).
    pub scope: String,
    /// When it was exchanged for its successor; `None` while it is the live head.
    pub consumed_at: Option<i64>,
    /// SHA-256 of the token that replaced it; `None` while unconsumed.
    pub successor_hash: Option<Vec<u8>>,
    /// The successor itself, sealed, so that a retry within the reuse grace window gets the
    /// same answer; `None` without grace, and once the window passed or the family ended.
    /// Legacy tokens only: a named token's successor is derived again instead.
    pub successor_sealed: Option<Vec<u8>>,
    /// A token that names its family ([`TokenKey::Named`]). Its successor, when it has
    /// one, is the family's head: unconsumed by definition.
    #[sqlx(default)]
    pub named: bool,
    /// The token's family.
    #[sqlx(flatten)]
    pub family: FamilyRow,
    /// The family's user as it is now.
    #[sqlx(flatten)]
    pub user: UserState,
}

/// The family's user as it is now: what a refresh re-reads.
#[derive(Debug, Clone, FromRow)]
pub struct UserState {
    /// JSON list of the user's current roles.
    #[sqlx(rename = "user_roles")]
    pub roles: String,
    /// The user's current `authz_version`.
    #[sqlx(rename = "user_ver")]
    pub authz_version: i64,
    /// Whether the user is disabled now.
    #[sqlx(rename = "user_disabled")]
    pub disabled: bool,
}

impl UserState {
    /// The roles parsed from their JSON column; `Corrupt` when it is not a list.
    pub fn roles(&self) -> Result<Vec<String>, StoreError> {
        super::from_json(&self.roles)
    }
}

pub(super) const FAMILY_COLUMNS: &str = "f.id, f.user_id, f.client_id, f.scope, f.audience, f.created_at, f.last_used_at, f.expires_at, f.revoked_at, f.revoke_reason, f.amr";

/// Inserts a family only if its user is still enabled and at `authz_version`: a
/// sign-in that read the user before a password change, a disable or a role change
/// committed must not leave a session behind. One statement; on PostgreSQL the user
/// row is share-locked, so a concurrent change either waits for this insert (and
/// then revokes the new family) or commits first (and this finds a newer version).
/// `handle` and `head` are the SHA-256 of the family's handle and of its first token.
pub async fn insert_family_if_current(
    db: impl Into<Exec<'_>>,
    f: &FamilyRow,
    authz_version: i64,
    handle: &[u8; 32],
    head: &[u8; 32],
) -> Result<bool, StoreError> {
    let db = db.into();
    let sql: &str = match db.backend() {
        Backend::Sqlite => INSERT_FAMILY,
        Backend::Postgres => &INSERT_FAMILY_LOCKED_SQL,
    };
    let inserted = on!(db, |e| {
        sqlx::query(sql)
            .bind(&f.id)
            .bind(&f.user_id)
            .bind(&f.client_id)
            .bind(&f.scope)
            .bind(&f.audience)
            .bind(f.created_at)
            .bind(f.last_used_at)
            .bind(f.expires_at)
            .bind(authz_version)
            .bind(&f.amr)
            .bind(handle.as_slice())
            .bind(head.as_slice())
            .execute(e)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(inserted == 1)
}

const INSERT_FAMILY: &str = "INSERT INTO refresh_families
       (id, user_id, client_id, scope, audience, created_at, last_used_at, expires_at, amr,
        handle_hash, head_hash, rotated_at)
     SELECT $1, u.id, $3, $4, $5, $6, $7, $8, $10, $11, $12, $6 FROM users u
     WHERE u.id = $2 AND u.authz_version = $9 AND NOT u.disabled";
static INSERT_FAMILY_LOCKED_SQL: LazyLock<String> =
    LazyLock::new(|| format!("{INSERT_FAMILY} FOR SHARE OF u"));

fn token_sql(lock: &str) -> String {
    format!(
        "SELECT t.hash, t.created_at AS issued_at, t.scope, t.consumed_at, t.successor_hash, t.successor_sealed, {FAMILY_COLUMNS},
                u.roles AS user_roles, u.authz_version AS user_ver, u.disabled AS user_disabled
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id JOIN users u ON u.id = f.user_id
         WHERE t.hash = $1{lock}"
    )
}

fn head_sql(lock: &str) -> String {
    format!(
        "SELECT f.head_hash, f.prev_hash, f.rotated_at, {FAMILY_COLUMNS},
                u.roles AS user_roles, u.authz_version AS user_ver, u.disabled AS user_disabled
         FROM refresh_families f JOIN users u ON u.id = f.user_id
         WHERE f.handle_hash = $1{lock}"
    )
}

/// Built once: the read runs on every refresh.
static TOKEN_SQL: LazyLock<String> = LazyLock::new(|| token_sql(""));
static TOKEN_FOR_UPDATE_SQL: LazyLock<String> = LazyLock::new(|| token_sql(" FOR UPDATE OF t"));
static HEAD_SQL: LazyLock<String> = LazyLock::new(|| head_sql(""));
static HEAD_FOR_UPDATE_SQL: LazyLock<String> = LazyLock::new(|| head_sql(" FOR UPDATE OF f"));

/// The presented token with its family and user, without locking.
pub async fn token(
    db: impl Into<Exec<'_>>,
    key: &TokenKey,
) -> Result<Option<TokenRow>, StoreError> {
    let sql: &str = match key {
        TokenKey::Legacy(_) => &TOKEN_SQL,
        TokenKey::Named { .. } => &HEAD_SQL,
    };
    token_row(db.into(), key, sql).await
}

/// [`token`], with the row that decides its rotation (the legacy token's, or the
/// family's) locked until the transaction ends on PostgreSQL, so the single-statement
/// fast path of another instance cannot consume it while the slow path decides.
/// (SQLite's write transaction excludes every other writer.)
pub async fn token_for_update(
    db: impl Into<Exec<'_>>,
    key: &TokenKey,
) -> Result<Option<TokenRow>, StoreError> {
    let db = db.into();
    let sql: &str = match (db.backend(), key) {
        (Backend::Sqlite, TokenKey::Legacy(_)) => &TOKEN_SQL,
        (Backend::Sqlite, TokenKey::Named { .. }) => &HEAD_SQL,
        (Backend::Postgres, TokenKey::Legacy(_)) => &TOKEN_FOR_UPDATE_SQL,
        (Backend::Postgres, TokenKey::Named { .. }) => &HEAD_FOR_UPDATE_SQL,
    };
    token_row(db, key, sql).await
}

/// A family's row as a named token's rotation reads it.
#[derive(FromRow)]
struct HeadRow {
    head_hash: Vec<u8>,
    prev_hash: Option<Vec<u8>>,
    rotated_at: i64,
    #[sqlx(flatten)]
    family: FamilyRow,
    #[sqlx(flatten)]
    user: UserState,
}

async fn token_row(
    db: Exec<'_>,
    key: &TokenKey,
    sql: &str,
) -> Result<Option<TokenRow>, StoreError> {
    Ok(match key {
        TokenKey::Legacy(hash) => on!(db, |e| sqlx::query_as(sql)
            .bind(hash.as_slice())
            .fetch_optional(e)
            .await)?,
        TokenKey::Named { handle, hash } => {
            let head: Option<HeadRow> = on!(db, |e| sqlx::query_as(sql)
                .bind(handle.as_slice())
                .fetch_optional(e)
                .await)?;
            head.map(|h| named_token(h, hash))
        }
    })
}

/// Which token of its family a named token is: the head (live), the head's
/// predecessor (consumed; its successor is the head), or an older one. An older one
/// was consumed too, or was never issued and made up by someone who held one of the
/// family's tokens (only they know the handle): either way the family's tokens leaked,
/// and the rotation treats it as reuse.
fn named_token(h: HeadRow, hash: &[u8; 32]) -> TokenRow {
    let is = |stored: &[u8]| crypto::ct_eq(stored, hash);
    let (consumed_at, successor_hash, issued_at) = if is(&h.head_hash) {
        (None, None, h.rotated_at)
    } else if h.prev_hash.as_deref().is_some_and(is) {
        (Some(h.rotated_at), Some(h.head_hash), h.family.created_at)
    } else {
        (Some(h.rotated_at), None, h.family.created_at)
    };
    TokenRow {
        hash: hash.to_vec(),
        issued_at,
        scope: h.family.scope.clone(),
        consumed_at,
        successor_hash,
        successor_sealed: None,
        named: true,
        family: h.family,
        user: h.user,
    }
}

/// Consumes a legacy token ([`TokenKey::Legacy`]) if nobody has and its family is live:
/// the one conditional update that decides a race. The `refresh_token_rotated` trigger inserts the
/// successor and touches the family within the same statement.
pub async fn consume(
    db: impl Into<Exec<'_>>,
    hash: &[u8],
    successor_hash: &[u8],
    successor_sealed: Option<&[u8]>,
    now: i64,
) -> Result<bool, StoreError> {
    let done = on!(db.into(), |e| sqlx::query(
        "UPDATE refresh_tokens SET consumed_at = $1, successor_hash = $2, successor_sealed = $3
         WHERE hash = $4 AND consumed_at IS NULL
           AND (SELECT revoked_at FROM refresh_families f WHERE f.id = family_id) IS NULL",
    )
    .bind(now)
    .bind(successor_hash)
    .bind(successor_sealed)
    .bind(hash)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(done == 1)
}

/// One named token's rotation: its family's handle (SHA-256), its own SHA-256 (the head
/// it must still be), its successor's SHA-256, the time.
pub type Advance = ([u8; 32], [u8; 32], [u8; 32], i64);

/// Rotates named tokens, many in one statement (group commit): each family whose head
/// is still the presented token and that is not revoked moves its head to the
/// successor and records the use; the old head becomes `prev_hash`. One row written per
/// rotation. Returns the handles that advanced. Handles must be distinct (a duplicate
/// could win twice).
pub async fn advance(
    db: impl Into<Exec<'_>>,
    batch: &[Advance],
) -> Result<Vec<Vec<u8>>, StoreError> {
    let db = db.into();
    let values = (0..batch.len())
        .map(|i| {
            let b = i * 4;
            format!("(${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4)
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = match db.backend() {
        // `handle_hash IN (...)` keeps every lookup on the handle's index. The right-hand
        // sides read the row as it was: `prev_hash` takes the old head.
        Backend::Sqlite => format!(
            "WITH v(h, o, n, at) AS (VALUES {values})
             UPDATE refresh_families SET
                 prev_hash = head_hash,
                 head_hash = (SELECT n FROM v WHERE v.h = refresh_families.handle_hash),
                 rotated_at = (SELECT at FROM v WHERE v.h = refresh_families.handle_hash),
                 last_used_at = (SELECT at FROM v WHERE v.h = refresh_families.handle_hash)
             WHERE handle_hash IN (SELECT h FROM v) AND revoked_at IS NULL
               AND head_hash = (SELECT o FROM v WHERE v.h = refresh_families.handle_hash)
             RETURNING handle_hash"
        ),
        // A concurrent rotation of the same family makes this one wait and re-check
        // `head_hash` on the committed row (READ COMMITTED): one winner.
        Backend::Postgres => format!(
            "UPDATE refresh_families f SET prev_hash = f.head_hash, head_hash = v.n,
                 rotated_at = v.at, last_used_at = v.at
             FROM (VALUES {values}) AS v(h, o, n, at)
             WHERE f.handle_hash = v.h AND f.head_hash = v.o AND f.revoked_at IS NULL
             RETURNING f.handle_hash"
        ),
    };
    let rows: Vec<(Vec<u8>,)> = on!(db, |e| {
        let mut q = sqlx::query_as(&sql);
        for (handle, head, next, now) in batch {
            q = q
                .bind(handle.as_slice())
                .bind(head.as_slice())
                .bind(next.as_slice())
                .bind(*now);
        }
        q.fetch_all(e).await
    })?;
    Ok(rows.into_iter().map(|(h,)| h).collect())
}

/// Whether `hash` is the family's live head (issued, not consumed).
pub async fn is_unconsumed(db: impl Into<Exec<'_>>, hash: &[u8]) -> Result<bool, StoreError> {
    let row: Option<(i32,)> = on!(db.into(), |e| sqlx::query_as(
        "SELECT 1 FROM refresh_tokens WHERE hash = $1 AND consumed_at IS NULL"
    )
    .bind(hash)
    .fetch_optional(e)
    .await)?;
    Ok(row.is_some())
}

/// Records a use of the family at `now` (the idle timeout counts from it).
pub async fn touch_family(db: impl Into<Exec<'_>>, id: &str, now: i64) -> Result<(), StoreError> {
    on!(db.into(), |e| sqlx::query(
        "UPDATE refresh_families SET last_used_at = $1 WHERE id = $2"
    )
    .bind(now)
    .bind(id)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Revokes one family; false when it was already revoked.
pub async fn revoke_family(
    db: impl Into<Exec<'_>>,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let mut db = db.into();
    let done = on!(db.re(), |e| {
        sqlx::query(
        "UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2 WHERE id = $3 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(reason)
    .bind(id)
    .execute(e)
    .await
    .map(|r| r.rows_affected())
    })?;
    if done == 1 {
        // The sealed successors are useless now; do not keep them around. Only rows
        // holding one: the live head is left unlocked, so a concurrent rotation
        // (which locks the head, then the family) cannot deadlock with this.
        on!(db, |e| {
            sqlx::query(
            "UPDATE refresh_tokens SET successor_sealed = NULL WHERE family_id = $1 AND successor_sealed IS NOT NULL"
        )
        .bind(id)
        .execute(e)
        .await
        .map(|r| r.rows_affected())
        })?;
    }
    Ok(done == 1)
}

/// Revokes every live family of a user; returns their ids.
pub async fn revoke_user_families(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    reason: &str,
    now: i64,
) -> Result<Vec<String>, StoreError> {
    let mut db = db.into();
    let ids: Vec<(String,)> = on!(db.re(), |e| sqlx::query_as(
        "UPDATE refresh_families SET revoked_at = $1, revoke_reason = $2
         WHERE user_id = $3 AND revoked_at IS NULL RETURNING id",
    )
    .bind(now)
    .bind(reason)
    .bind(user_id)
    .fetch_all(e)
    .await)?;
    on!(db, |e| {
        sqlx::query(
        "UPDATE refresh_tokens SET successor_sealed = NULL
         WHERE family_id IN (SELECT id FROM refresh_families WHERE user_id = $1) AND successor_sealed IS NOT NULL",
    )
    .bind(user_id)
    .execute(e)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(ids.into_iter().map(|(id,)| id).collect())
}

/// The family with this id, live or not.
pub async fn family(db: impl Into<Exec<'_>>, id: &str) -> Result<Option<FamilyRow>, StoreError> {
    let sql = format!("SELECT {FAMILY_COLUMNS} FROM refresh_families f WHERE f.id = $1");
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(e)
        .await)?)
}

/// A user's families that are neither revoked nor expired at `now`, oldest first.
pub async fn live_families_of(
    db: impl Into<Exec<'_>>,
    user_id: &str,
    now: i64,
) -> Result<Vec<FamilyRow>, StoreError> {
    let sql = format!(
        "SELECT {FAMILY_COLUMNS} FROM refresh_families f
         WHERE f.user_id = $1 AND f.revoked_at IS NULL AND f.expires_at > $2 ORDER BY f.created_at"
    );
    Ok(on!(db.into(), |e| sqlx::query_as(&sql)
        .bind(user_id)
        .bind(now)
        .fetch_all(e)
        .await)?)
}

/// The housekeeping sweeps' statements, each bound to one cut-off time `$1`: clearing
/// the sealed successors, then deleting the ended families' tokens and the families.
/// Each finds its rows through an index (migration 0014), whatever the number of sessions.
pub static SWEEPS: LazyLock<[String; 3]> = LazyLock::new(|| {
    let ended = "SELECT id FROM refresh_families WHERE revoked_at < $1 OR expires_at < $1";
    [
        "UPDATE refresh_tokens SET successor_sealed = NULL WHERE successor_sealed IS NOT NULL AND consumed_at < $1".into(),
        format!("DELETE FROM refresh_tokens WHERE family_id IN ({ended})"),
        format!("DELETE FROM refresh_families WHERE id IN ({ended})"),
    ]
});

/// Drops sealed successors whose grace window has passed.
pub async fn forget_sealed_successors(
    db: impl Into<Exec<'_>>,
    consumed_before: i64,
) -> Result<u64, StoreError> {
    Ok(on!(db.into(), |e| {
        sqlx::query(&SWEEPS[0])
            .bind(consumed_before)
            .execute(e)
            .await
            .map(|r| r.rows_affected())
    })?)
}

/// Deletes families that ended before `before` (revoked, or past their absolute
/// lifetime), with their tokens; returns how many families.
pub async fn forget_ended(db: &super::Db, before: i64) -> Result<u64, StoreError> {
    let mut tx = db.begin_plain().await?;
    let mut x = Exec::from(&mut tx);
    on!(x.re(), |e| sqlx::query(&SWEEPS[1])
        .bind(before)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    let done = on!(x, |e| sqlx::query(&SWEEPS[2])
        .bind(before)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(done)
}
