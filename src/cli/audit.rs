//! `tessera audit`: the audit trail, newest first.

use clap::Args;

use super::{Failure, fail};
use crate::domain::audit::{AuditSearch, Entry, Trail};
use crate::domain::clock::rfc3339;

#[derive(Args)]
pub(super) struct AuditArgs {
    /// Only entries about this id (a user, client, session or key).
    #[arg(long)]
    target: Option<String>,
    /// Only entries by this actor (an admin's sub, or `cli:<os user>`).
    #[arg(long)]
    actor: Option<String>,
    /// Only entries of this action (`set_roles`, `create_client`, ...).
    #[arg(long)]
    action: Option<String>,
    /// At most this many entries (1-200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    limit: u32,
    /// One JSON object per line per entry (as `GET /admin/audit` lists them) instead of a table.
    #[arg(long)]
    json: bool,
}

/// An entry as `GET /admin/audit` lists it, so scripts read both alike.
fn entry_json(e: &Entry) -> serde_json::Value {
    serde_json::json!({
        "id": e.id,
        "at": rfc3339(Some(e.at)),
        "actor": e.actor,
        "via": e.via,
        "action": e.action,
        "target": e.target,
        "details": e.details,
    })
}

pub(super) async fn audit(trail: &Trail, args: AuditArgs) -> Result<(), Failure> {
    let search = AuditSearch {
        target: args.target,
        actor: args.actor,
        action: args.action,
        cursor: None,
    };
    let page = trail.page(&search, args.limit).await.map_err(fail)?;
    if args.json {
        for e in &page.entries {
            println!("{}", entry_json(e));
        }
    } else {
        println!(
            "{:<20}  {:<40}  {:<8}  {:<22}  {:<36}  DETAILS",
            "AT", "ACTOR", "VIA", "ACTION", "TARGET"
        );
        for e in &page.entries {
            println!(
                "{:<20}  {:<40}  {:<8}  {:<22}  {:<36}  {}",
                rfc3339(Some(e.at)),
                e.actor,
                e.via,
                e.action,
                e.target.as_deref().unwrap_or("-"),
                if e.details.is_null() {
                    String::new()
                } else {
                    e.details.to_string()
                }
            );
        }
    }
    if page.next_cursor.is_some() {
        eprintln!("(older entries: narrow the search or raise --limit)");
    }
    Ok(())
}
