//! Housekeeping at any number of sessions: each sweep finds its rows through an index
//! (migration 0014), never by reading every session or refresh token.

use tessera::store::Pool;

use crate::support::*;

/// The plan of `sql` (one `$1` bound), one line per step.
async fn plan(pool: &Pool, sql: &str) -> Vec<String> {
    match pool {
        Pool::Sqlite(p) => {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
                    .bind(0_i64)
                    .fetch_all(p)
                    .await
                    .unwrap();
            rows.into_iter().map(|r| r.3).collect()
        }
        Pool::Postgres(p) => {
            // The tables are tiny here; with sequential scans priced out, one still shows
            // only where no index can serve.
            let mut tx = p.begin().await.unwrap();
            sqlx::query("SET LOCAL enable_seqscan = off")
                .execute(&mut *tx)
                .await
                .unwrap();
            let rows: Vec<(String,)> = sqlx::query_as(&format!("EXPLAIN {sql}"))
                .bind(0_i64)
                .fetch_all(&mut *tx)
                .await
                .unwrap();
            rows.into_iter().map(|r| r.0).collect()
        }
    }
}

#[tokio::test]
async fn the_session_sweeps_read_no_whole_table() {
    let app = TestApp::spawn().await;
    for sql in tessera::store::sessions::SWEEPS.iter() {
        let plan = plan(app.core.db.writer(), sql).await;
        let scans: Vec<_> = plan
            .iter()
            .filter(|step| step.contains("SCAN refresh_") || step.contains("Seq Scan on refresh_"))
            .collect();
        assert!(scans.is_empty(), "{sql}\n{}", plan.join("\n"));
        assert!(!plan.is_empty(), "{sql}: no plan");
    }
}
