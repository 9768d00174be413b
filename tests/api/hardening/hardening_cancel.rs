//! A write transaction whose caller is dropped while it begins: a client gone mid-request,
//! or the shutdown aborting a background job. Nothing may stay open on the writer, or
//! every write after it would run inside a transaction nobody commits.

use std::future::Future;
use std::task::{Context, Waker};
use std::time::Duration;

use crate::support::TestApp;

/// Polls `begin_plain` up to three times, `wait` apart (the `BEGIN` goes out at the first),
/// then drops it: at some waits the `BEGIN` has run and its answer is in, and the caller
/// is gone before it holds the transaction.
async fn begin_and_drop(app: &TestApp, wait: Duration) {
    let mut begin = Box::pin(app.core.db.begin_plain());
    for _ in 0..3 {
        let polled = begin.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        // Begun after all: dropping the transaction rolls it back.
        if polled.is_ready() {
            return;
        }
        std::thread::sleep(wait);
    }
    drop(begin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_begin_dropped_half_way_leaves_the_writer_committing() {
    let app = TestApp::spawn().await;
    // Another connection, which sees only what was committed.
    let other = crate::sql::connect(&app.core.cfg.database_url).await;
    crate::sql::exec(&other, "CREATE TABLE cancel_probe (n BIGINT NOT NULL)", &[]).await;
    for i in 0..300i64 {
        begin_and_drop(&app, Duration::from_micros(i as u64 % 60 * 10)).await;
        let tx = app.core.db.begin_plain().await;
        assert!(
            tx.is_ok(),
            "round {i}: the next transaction did not begin: {:?}",
            tx.err()
        );
        drop(tx);
        crate::sql::exec(
            app.core.db.writer(),
            "INSERT INTO cancel_probe (n) VALUES ($1)",
            &[i.into()],
        )
        .await;
        let (seen,): (i64,) = crate::sql::one(
            &other,
            "SELECT COUNT(*) FROM cancel_probe WHERE n = $1",
            &[i.into()],
        )
        .await;
        assert_eq!(
            seen, 1,
            "round {i}: a write on the writer was not committed"
        );
    }
    crate::sql::close(other).await;
}
