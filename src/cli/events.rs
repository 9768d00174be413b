//! `tessera events`: the security event log, newest last, and `--follow` to print each
//! new event as it commits (reading the log itself, not the HTTP feed).

use std::time::Duration;

use clap::Args;

use super::{Failure, fail};
use crate::domain::events::SecurityEvent;
use crate::domain::listings::{EventSearch, parse_time};
use crate::domain::users::Users;

/// How often `--follow` reads the log.
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

#[derive(Args)]
pub(super) struct EventsArgs {
    /// Only events about this user: a username or a user id (a deleted user's id works).
    #[arg(long, value_name = "NAME|ID")]
    sub: Option<String>,
    /// Only events of this type (`user.roles_changed`, `session.revoked`, ...).
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Only events written at or after this time: RFC 3339 or Unix seconds.
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only events written before this time: RFC 3339 or Unix seconds.
    #[arg(long, value_name = "TIME", conflicts_with = "follow")]
    until: Option<String>,
    /// The last this many events (1-200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    limit: u32,
    /// One JSON object per line per event (as `GET /admin/events` and `/events` serve them).
    #[arg(long)]
    json: bool,
    /// Then print each new event as it commits, until interrupted.
    #[arg(long)]
    follow: bool,
}

fn print(e: &SecurityEvent, json: bool) {
    if json {
        println!("{}", serde_json::to_string(e).expect("an event serialises"));
        return;
    }
    let ver = e.ver.map_or_else(|| "-".into(), |v| v.to_string());
    println!(
        "{:>8}  {:<20}  {:<22}  {:<36}  {:<36}  {:>5}  {}",
        e.id,
        e.at,
        e.kind.as_str(),
        e.sub.as_deref().unwrap_or("-"),
        e.sid.as_deref().unwrap_or("-"),
        ver,
        e.reason.as_deref().or(e.kid.as_deref()).unwrap_or("-"),
    );
}

/// A username's id; an id as it is (a deleted user's events keep theirs).
async fn subject(users: &Users, sub: &str) -> Result<String, Failure> {
    if let Ok(id) = uuid::Uuid::parse_str(sub) {
        return Ok(id.to_string());
    }
    Ok(users
        .user_by_name(sub)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(format!("no user named `{sub}`")))?
        .id)
}

pub(super) async fn events(users: &Users, args: EventsArgs) -> Result<(), Failure> {
    let sub = match &args.sub {
        Some(s) => Some(subject(users, s).await?),
        None => None,
    };
    // Read where the log ends first: following starts there, so nothing falls in between.
    let last = users.last_event_id().await.map_err(fail)?;
    let search = EventSearch {
        sub: sub.clone(),
        kind: args.kind.clone(),
        since: args.since.clone(),
        until: args.until,
        cursor: Some((last + 1).to_string()),
    };
    let page = users.events_page(&search, args.limit).await.map_err(fail)?;
    if !args.json {
        println!(
            "{:>8}  {:<20}  {:<22}  {:<36}  {:<36}  {:>5}  REASON",
            "ID", "AT", "TYPE", "SUB", "SID", "VER"
        );
    }
    for e in page.events.iter().rev() {
        print(e, args.json);
    }
    if !args.follow {
        if page.next_cursor.is_some() {
            eprintln!("(older events: narrow the search or raise --limit)");
        }
        return Ok(());
    }
    let since = args.since.as_deref().and_then(parse_time);
    let mut after = last;
    let follow = async {
        loop {
            let batch = users
                .events_after(after, sub.as_deref(), 500)
                .await
                .map_err(fail)?;
            for e in &batch {
                after = after.max(e.id);
                let wanted = args.kind.as_deref().is_none_or(|k| e.kind.as_str() == k)
                    && since.is_none_or(|s| e.at_unix().is_some_and(|at| at >= s));
                if wanted {
                    print(e, args.json);
                }
            }
            if batch.len() < 500 {
                tokio::time::sleep(FOLLOW_EVERY).await;
            }
        }
    };
    tokio::select! {
        r = follow => r,
        () = super::shutdown_signal() => Ok(()),
    }
}
