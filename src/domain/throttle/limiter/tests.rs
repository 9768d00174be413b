//! The limiter alone: limits, waiting, delays, eviction, bounded keys.

use super::*;
use crate::domain::clock::Clock;

const NO_WAIT: Duration = Duration::ZERO;
const HOUR: Duration = Duration::from_secs(3600);

fn limiter(max: u32, capacity: usize, delay: Option<Delay>) -> Limiter {
    Limiter::new(max, HOUR, capacity, delay)
}

#[tokio::test]
async fn failures_throttle_at_max_and_keys_stay_apart() {
    let (l, clock) = (limiter(3, 100, None), Clock::default());
    for _ in 0..2 {
        assert!(
            !l.reserve("alice", &clock, NO_WAIT)
                .await
                .unwrap()
                .failed(clock.instant())
        );
    }
    let last = l.reserve("alice", &clock, NO_WAIT).await.unwrap();
    assert!(
        last.failed(clock.instant()),
        "the third failure is the last"
    );
    let refused = l.reserve("alice", &clock, NO_WAIT).await.unwrap_err();
    assert!(refused.failures && refused.retry_after > 3500 && refused.retry_after <= 3600);
    assert!(l.reserve("bob", &clock, NO_WAIT).await.is_ok());
}

#[tokio::test]
async fn successes_and_unevaluated_attempts_cost_nothing() {
    let (l, clock) = (limiter(2, 100, None), Clock::default());
    l.reserve("k", &clock, NO_WAIT)
        .await
        .unwrap()
        .failed(clock.instant());
    drop(l.reserve("k", &clock, NO_WAIT).await.unwrap());
    l.reserve("k", &clock, NO_WAIT).await.unwrap().succeeded();
    for _ in 0..2 {
        l.reserve("k", &clock, NO_WAIT)
            .await
            .unwrap()
            .failed(clock.instant());
    }
    assert!(l.reserve("k", &clock, NO_WAIT).await.is_err());
}

#[tokio::test]
async fn attempts_in_flight_make_others_wait_not_fail() {
    let (l, clock) = (Arc::new(limiter(2, 100, None)), Arc::new(Clock::default()));
    let a = l.reserve("k", &clock, NO_WAIT).await.unwrap();
    let b = l.reserve("k", &clock, NO_WAIT).await.unwrap();
    let refused = l.reserve("k", &clock, NO_WAIT).await.unwrap_err();
    assert!(!refused.failures, "in flight, not failed");
    let waiter = {
        let (l, clock) = (l.clone(), clock.clone());
        tokio::spawn(async move { l.reserve("k", &clock, HOUR).await.map(Ticket::succeeded) })
    };
    tokio::task::yield_now().await;
    a.succeeded();
    assert!(waiter.await.unwrap().is_ok());
    b.succeeded();
    assert!(l.is_empty(), "nothing left to remember");
}

#[tokio::test]
async fn racing_attempts_never_evaluate_more_than_max_failures() {
    let l = Arc::new(limiter(10, 100, None));
    let clock = Arc::new(Clock::default());
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let (l, clock) = (l.clone(), clock.clone());
            tokio::spawn(async move {
                let t = l.reserve("victim", &clock, Duration::from_secs(5)).await;
                t.map(|t| t.failed(clock.instant())).is_ok()
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap());
    }
    assert_eq!(granted, 10);
}

#[tokio::test]
async fn past_the_limit_a_delay_doubles_up_to_its_cap() {
    let delay = Delay {
        first: Duration::from_secs(1),
        cap: Duration::from_secs(4),
    };
    let (l, clock) = (limiter(2, 100, Some(delay)), Clock::default());
    clock.pin(Duration::from_secs(1_000_000));
    for _ in 0..2 {
        l.reserve("k", &clock, NO_WAIT)
            .await
            .unwrap()
            .failed(clock.instant());
    }
    for expected in [1, 2, 4, 4] {
        let r = l.reserve("k", &clock, NO_WAIT).await.unwrap_err();
        assert_eq!((r.retry_after, r.failures), (expected, true));
        clock.advance(Duration::from_secs(expected));
        l.reserve("k", &clock, NO_WAIT)
            .await
            .unwrap()
            .failed(clock.instant());
    }
    clock.advance(Duration::from_secs(4));
    l.reserve("k", &clock, NO_WAIT).await.unwrap().succeeded();
    assert!(
        l.reserve("k", &clock, NO_WAIT).await.is_ok(),
        "success starts over"
    );
}

#[tokio::test]
async fn a_full_table_evicts_the_least_informative_keys_never_refuses_all() {
    let (l, clock) = (limiter(3, 50, None), Clock::default());
    for _ in 0..3 {
        l.reserve("victim", &clock, NO_WAIT)
            .await
            .unwrap()
            .failed(clock.instant());
    }
    for i in 0..10_000 {
        let t = l.reserve(&format!("random-{i}"), &clock, NO_WAIT).await;
        t.expect("a new key is never refused")
            .failed(clock.instant());
    }
    assert!(l.len() <= 50, "bounded: {}", l.len());
    assert!(
        l.reserve("victim", &clock, NO_WAIT).await.is_err(),
        "the key with the most failures kept its count"
    );
}

#[tokio::test]
async fn keys_have_a_bounded_size() {
    let (l, clock) = (limiter(3, 10, None), Clock::default());
    let long = "x".repeat(16 * 1024);
    assert_eq!(std::mem::size_of::<Key>(), 16);
    for _ in 0..3 {
        l.reserve(&long, &clock, NO_WAIT)
            .await
            .unwrap()
            .failed(clock.instant());
    }
    assert_eq!(l.len(), 1);
    assert!(l.reserve(&long, &clock, NO_WAIT).await.is_err());
}

#[tokio::test]
async fn failures_are_forgotten_a_window_after_the_last() {
    let l = Limiter::new(1, Duration::from_secs(60), 10, None);
    let clock = Clock::default();
    clock.pin(Duration::from_secs(1_000_000));
    l.reserve("k", &clock, NO_WAIT)
        .await
        .unwrap()
        .failed(clock.instant());
    assert!(l.reserve("k", &clock, NO_WAIT).await.is_err());
    clock.advance(Duration::from_secs(60));
    assert!(l.reserve("k", &clock, NO_WAIT).await.is_ok());
}
