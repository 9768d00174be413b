//! Bulk rows for the benches, written as the server writes them but in a few statements:
//! users (`benches/console.rs`, `benches/scale.rs`) and sessions, each a refresh family with
//! its current refresh token (`benches/scale.rs`). SQLite and PostgreSQL.

#![allow(dead_code)] // Each bench uses its part.

use tessera::store::Pool;

/// User `i` (1-based): its id (a UUID) and username, as SQL over an integer column `i`.
const SQLITE_USER_ID: &str = "printf('%08x-0000-4000-8000-%012x', {i}, {i})";
const POSTGRES_USER_ID: &str =
    "lpad(to_hex({i}), 8, '0') || '-0000-4000-8000-' || lpad(to_hex({i}), 12, '0')";

/// Inserts users `user0000001` … with the role `viewer` and a placeholder password hash (no
/// one signs in as them), in one statement. Returns how many.
pub(crate) async fn users(pool: &Pool, n: i64) -> sqlx::Result<u64> {
    let sqlite = format!(
        "INSERT INTO users (id, username, username_key, password_hash, roles, authz_version, disabled, created_at, updated_at)
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         SELECT {}, printf('user%07d', i), printf('user%07d', i), 'x', '[\"viewer\"]', 1, 0, 0, 0 FROM n",
        SQLITE_USER_ID.replace("{i}", "i")
    );
    let postgres = format!(
        "INSERT INTO users (id, username, username_key, password_hash, roles, authz_version, disabled, created_at, updated_at)
         SELECT {}, 'user' || lpad(i::text, 7, '0'), 'user' || lpad(i::text, 7, '0'),
                'x', '[\"viewer\"]', 1, FALSE, 0, 0 FROM generate_series(1, $1::bigint) AS i",
        POSTGRES_USER_ID.replace("{i}", "i")
    );
    match pool {
        Pool::Sqlite(p) => sqlx::query(&sqlite)
            .bind(n)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
        Pool::Postgres(p) => sqlx::query(&postgres)
            .bind(n)
            .execute(p)
            .await
            .map(|r| r.rows_affected()),
    }
}

/// The clients the seeded sessions belong to, and each one's share in tenths.
pub(crate) const CLIENTS: [(&str, i64); 3] =
    [("scale-web", 6), ("scale-mobile", 3), ("scale-partner", 1)];

/// Registers [`CLIENTS`] (public authorization-code clients, as far as the rows go).
pub(crate) async fn clients(pool: &Pool) -> sqlx::Result<()> {
    for (id, _) in CLIENTS {
        let sql = "INSERT INTO clients (id, grant_types, scopes, created_at)
                   VALUES ($1, '[\"authorization_code\",\"refresh_token\"]', '[\"openid\",\"offline_access\"]', 0)";
        match pool {
            Pool::Sqlite(p) => sqlx::query(sql).bind(id).execute(p).await.map(drop)?,
            Pool::Postgres(p) => sqlx::query(sql).bind(id).execute(p).await.map(drop)?,
        }
    }
    Ok(())
}

const DAY: i64 = 86_400;

/// The columns of session `i` (1-based) of a family, spread by a multiplicative hash `k` of
/// `i`: a user out of `$3`, a client by [`CLIENTS`]' shares, and a state: one in twenty
/// revoked within the last day, one in twenty past its absolute lifetime within the last
/// day (the server forgets ended sessions a day after they end), the rest live (30-day
/// lifetime, used within the idle timeout of 14 days). `$4` is now.
fn family_columns(user_id: &str, modulo: &str, hashes: [&str; 3]) -> String {
    let k = "((i * 2654435761) % 4294967296)";
    let state = |live: String, revoked: String, expired: String| {
        format!(
            "CASE {m} WHEN 0 THEN {revoked} WHEN 1 THEN {expired} ELSE {live} END",
            m = modulo.replace("{x}", "i").replace("{n}", "20")
        )
    };
    let age = format!("({k} / 13) % {}", 30 * DAY);
    let off = format!("({k} / 7) % {DAY}");
    let created = state(
        format!("$4 + 1 + {age} - {}", 30 * DAY),
        format!("$4 - {DAY} - {age}"),
        format!("$4 - {off} - {}", 30 * DAY),
    );
    let expires = state(
        format!("$4 + 1 + {age}"),
        format!("$4 - {age} + {}", 29 * DAY),
        format!("$4 - {off}"),
    );
    let used = format!("$4 - ({k} / 17) % {}", 14 * DAY);
    let revoked = state("NULL".into(), format!("$4 - {off}"), "NULL".into());
    let reason = state("NULL".into(), "'logout'".into(), "NULL".into());
    let tenth = modulo
        .replace("{x}", &format!("({k} / 3)"))
        .replace("{n}", "10");
    let client = format!(
        "CASE WHEN {tenth} < {} THEN '{}' WHEN {tenth} < {} THEN '{}' ELSE '{}' END",
        CLIENTS[0].1,
        CLIENTS[0].0,
        CLIENTS[0].1 + CLIENTS[1].1,
        CLIENTS[1].0,
        CLIENTS[2].0
    );
    let user = user_id.replace("{i}", &format!("({k} % $3 + 1)"));
    let [handle, head, prev] = hashes;
    format!(
        "{user}, {client}, 'openid offline_access', '[\"urn:scale:api\"]', {created},
         MAX({created}, {used}), {expires}, {revoked}, {reason}, 'pwd',
         {handle}, {head}, {prev}, MAX({created}, {used})"
    )
}

const FAMILY_INSERT: &str = "INSERT INTO refresh_families
    (id, user_id, client_id, scope, audience, created_at, last_used_at, expires_at, revoked_at, revoke_reason, amr,
     handle_hash, head_hash, prev_hash, rotated_at)";

/// Inserts sessions `from..=to` of the spread above over `users` users (ids as [`users`]
/// makes them), each a refresh family that has rotated (its handle's, head's and previous
/// token's hashes random 32 bytes, as a SHA-256 is), in the caller's transaction on `conn`. Family ids are random
/// UUIDs on SQLite, UUIDs from an MD5 of `i` on PostgreSQL.
pub(crate) async fn sessions(
    conn: &mut SeedConn<'_>,
    from: i64,
    to: i64,
    users: i64,
    now: i64,
) -> sqlx::Result<()> {
    match conn {
        SeedConn::Sqlite(c) => {
            let id = "lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' || substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' || hex(randomblob(6)))";
            let sql = format!(
                "{FAMILY_INSERT}
                 WITH RECURSIVE n(i) AS (SELECT $1 UNION ALL SELECT i + 1 FROM n WHERE i < $2)
                 SELECT {id}, {} FROM n",
                family_columns(
                    SQLITE_USER_ID,
                    "{x} % {n}",
                    ["randomblob(32)", "randomblob(32)", "randomblob(32)"]
                )
            );
            sqlx::query(&sql)
                .bind(from)
                .bind(to)
                .bind(users)
                .bind(now)
                .execute(&mut ***c)
                .await?;
        }
        SeedConn::Postgres(c) => {
            let id = "md5('f' || i)::uuid::text";
            let sql = format!(
                "{FAMILY_INSERT}
                 SELECT {id}, {} FROM generate_series($1::bigint, $2::bigint) AS i",
                family_columns(
                    POSTGRES_USER_ID,
                    "{x} % {n}",
                    [
                        "sha256(('h' || i)::bytea)",
                        "sha256(('t' || i)::bytea)",
                        "sha256(('p' || i)::bytea)"
                    ]
                )
                .replace("MAX(", "GREATEST(")
            );
            sqlx::query(&sql)
                .bind(from)
                .bind(to)
                .bind(users)
                .bind(now)
                .execute(&mut ***c)
                .await?;
        }
    }
    Ok(())
}

/// A transaction on either database.
pub(crate) enum SeedConn<'a> {
    /// SQLite.
    Sqlite(&'a mut sqlx::Transaction<'static, sqlx::Sqlite>),
    /// PostgreSQL.
    Postgres(&'a mut sqlx::Transaction<'static, sqlx::Postgres>),
}
