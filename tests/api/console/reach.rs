//! The feed's reach: the streams open on `/events` are published (one row per instance,
//! refreshed about once a second) and listed by the console with their client and the last
//! event each delivered; a stream that closes drops out.

use std::time::{Duration, Instant};

use tessera::domain::audit::Actor;
use tessera::domain::permissions::Change;
use tessera::domain::reach;

use super::admin_browser;
use crate::feed::events::Sse;
use crate::helpers::*;
use crate::oauth::code_flow::Browser;

/// Polls the published reach until `done` holds of it; panics after 10 s.
async fn published(
    app: &TestApp,
    done: impl Fn(&[reach::Subscriber]) -> bool,
) -> Vec<reach::Subscriber> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = app.core.clock.now();
        let instances = reach::instances(&app.core.db, now).await.unwrap();
        let subs: Vec<_> = instances.into_iter().flat_map(|i| i.subscribers).collect();
        if done(&subs) {
            return subs;
        }
        assert!(
            Instant::now() < deadline,
            "the reach never became as expected: {subs:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_subscribers_are_listed_with_their_client_and_last_event_then_gone() {
    let app = TestApp::spawn().await;
    let one = app.service("verifier-one", &["events"]).await;
    let two = app.service("verifier-two", &["events"]).await;
    let (t1, t2) = (
        app.client_token("verifier-one", &one).await,
        app.client_token("verifier-two", &two).await,
    );
    let mut s1 = Sse::open(&app, &t1, "", None).await;
    let mut s2 = Sse::open(&app, &t2, "", None).await;
    let user = app.user("target", "target password", &["viewer"]).await;
    app.core
        .users
        .change_user(&Actor::cli(), &user, Change::Roles(vec!["editor".into()]))
        .await
        .unwrap();
    let id = s1.next_within(Duration::from_secs(5)).await.id;
    assert_eq!(s2.next_within(Duration::from_secs(5)).await.id, id);

    let subs = published(&app, |s| {
        s.len() == 2 && s.iter().all(|s| s.last_event_id == id)
    })
    .await;
    let mut clients: Vec<&str> = subs.iter().map(|s| s.client_id.as_str()).collect();
    clients.sort_unstable();
    assert_eq!(clients, ["verifier-one", "verifier-two"]);
    assert!(subs.iter().all(|s| s.user.is_none() && s.since > 0));

    // The console shows them, and that both have delivered the newest event.
    let mut b = Browser::new(&app);
    admin_browser(&mut b).await;
    let page = b.get("/console/reach").await.text().await.unwrap();
    assert!(
        page.contains("verifier-one") && page.contains("verifier-two"),
        "{page}"
    );
    assert!(
        page.contains("http-equiv=\"refresh\""),
        "the page follows live changes"
    );
    assert_eq!(page.matches("class=\"subscriber\"").count(), 2, "{page}");

    drop(s1);
    let subs = published(&app, |s| s.len() == 1).await;
    assert_eq!(subs[0].client_id, "verifier-two");
    drop(s2);
    published(&app, <[reach::Subscriber]>::is_empty).await;
}

/// An instance whose streams neither opened, closed nor delivered since its last publication
/// only refreshes its row; any of the three rewrites it, and so does a row taken away as stale
/// while the instance stalled.
#[tokio::test]
async fn an_unchanged_reach_is_refreshed_and_a_change_rewrites_it() {
    use reach::Published::{Full, Refreshed};
    let app = TestApp::spawn().await;
    let db = &app.core.db;
    let now = app.core.clock.now();
    // An instance of its own: the server's publishes its (empty) reach on its own schedule.
    let mine = reach::Reach::default();
    let row = |at: i64| {
        let id = mine.instance.clone();
        async move {
            reach::instances(db, at)
                .await
                .unwrap()
                .into_iter()
                .find(|i| *i.id == *id)
        }
    };
    assert_eq!(mine.publish(db, now).await.unwrap(), Full);
    assert_eq!(mine.publish(db, now + 1).await.unwrap(), Refreshed);
    let refreshed = row(now + 1).await.expect("published");
    assert_eq!(refreshed.refreshed_at, now + 1);
    assert!(refreshed.subscribers.is_empty());

    let stream = mine.open("verifier".into(), None, now, 4);
    assert_eq!(
        mine.publish(db, now + 2).await.unwrap(),
        Full,
        "a stream opened"
    );
    assert_eq!(mine.publish(db, now + 3).await.unwrap(), Refreshed);
    stream.delivered(9);
    assert_eq!(
        mine.publish(db, now + 4).await.unwrap(),
        Full,
        "it delivered"
    );
    assert_eq!(mine.publish(db, now + 5).await.unwrap(), Refreshed);
    let listed = row(now + 5).await.expect("published");
    assert_eq!(listed.refreshed_at, now + 5);
    assert_eq!(
        listed
            .subscribers
            .iter()
            .map(|s| (s.client_id.as_str(), s.last_event_id))
            .collect::<Vec<_>>(),
        [("verifier", 9)]
    );

    // Another instance's publication a minute and more later forgets this row as stale.
    reach::Reach::default()
        .publish(db, now + 100)
        .await
        .unwrap();
    assert!(row(now + 100).await.is_none());
    assert_eq!(
        mine.publish(db, now + 101).await.unwrap(),
        Full,
        "a row gone is written anew"
    );
    assert_eq!(row(now + 101).await.expect("back").subscribers.len(), 1);

    drop(stream);
    assert_eq!(
        mine.publish(db, now + 102).await.unwrap(),
        Full,
        "it closed"
    );
    assert!(
        row(now + 102)
            .await
            .expect("published")
            .subscribers
            .is_empty()
    );
}
