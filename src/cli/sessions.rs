//! `tessera sessions ...`: list a user's or a client's live sessions, revoke one.

use clap::{Args, Subcommand};

use super::{Failure, fail};
use crate::domain::audit::Actor;
use crate::domain::clock::rfc3339;
use crate::domain::listings::SessionsOf;
use crate::domain::queries::Session;
use crate::domain::users::Users;

#[derive(Subcommand)]
pub(super) enum SessionsCommand {
    /// List live sessions (refresh families) of a user or a client, in `sid` order.
    List(ListArgs),
    /// Revoke one live session: its refresh token stops working, verifiers refuse its tokens.
    Revoke { sid: String },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("of").required(true).multiple(false)))]
pub(super) struct ListArgs {
    /// A user's sessions, by username.
    #[arg(long, group = "of", value_name = "NAME")]
    user: Option<String>,
    /// A client's sessions, by client id.
    #[arg(long, group = "of", value_name = "ID")]
    client: Option<String>,
    /// At most this many sessions (1-200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    limit: u32,
    /// One JSON object per line per session (as `GET /admin/sessions` lists them).
    #[arg(long)]
    json: bool,
}

/// A session as `GET /admin/sessions` lists it, so scripts read both alike.
fn session_json(user_id: &str, s: &Session) -> serde_json::Value {
    serde_json::json!({
        "sid": s.id,
        "user_id": user_id,
        "client_id": s.client_id,
        "created_at": rfc3339(Some(s.created_at)),
        "last_used_at": rfc3339(Some(s.last_used_at)),
        "expires_at": rfc3339(Some(s.expires_at)),
    })
}

async fn list(users: &Users, args: ListArgs) -> Result<(), Failure> {
    let of = match (args.user, args.client) {
        (Some(name), _) => {
            let user = users
                .user_by_name(&name)
                .await
                .map_err(fail)?
                .ok_or_else(|| fail(format!("no user named `{name}`")))?;
            SessionsOf::User(user.id)
        }
        (None, Some(client)) => SessionsOf::Client(client),
        (None, None) => return Err(fail("give --user or --client")),
    };
    let page = users
        .sessions_page(&of, None, args.limit)
        .await
        .map_err(fail)?;
    if args.json {
        for (user_id, s) in &page.sessions {
            println!("{}", session_json(user_id, s));
        }
    } else {
        println!(
            "{:<36}  {:<36}  {:<20}  {:<20}  {:<20}  EXPIRES",
            "SID", "USER", "CLIENT", "CREATED", "LAST USED"
        );
        for (user_id, s) in &page.sessions {
            println!(
                "{:<36}  {:<36}  {:<20}  {:<20}  {:<20}  {}",
                s.id,
                user_id,
                s.client_id,
                rfc3339(Some(s.created_at)),
                rfc3339(Some(s.last_used_at)),
                rfc3339(Some(s.expires_at)),
            );
        }
    }
    if page.next_cursor.is_some() {
        eprintln!("(more sessions: raise --limit)");
    }
    Ok(())
}

pub(super) async fn sessions(users: &Users, cmd: SessionsCommand) -> Result<(), Failure> {
    match cmd {
        SessionsCommand::List(args) => list(users, args).await,
        SessionsCommand::Revoke { sid } => {
            let sid = uuid::Uuid::parse_str(&sid)
                .map_err(|_| fail("malformed session id: expected a UUID"))?
                .to_string();
            if users
                .revoke_session(&Actor::cli(), &sid)
                .await
                .map_err(fail)?
            {
                eprintln!("{sid}: revoked");
                Ok(())
            } else {
                Err(fail(format!("no live session `{sid}`")))
            }
        }
    }
}
