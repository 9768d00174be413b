//! `tessera user ...`: create, list and show users, change their roles, status and
//! password, enable and delete them.

use std::io::BufRead;

use clap::{Args, Subcommand};
use secrecy::SecretString;

use super::{Failure, fail};
use crate::domain::audit::Actor;
use crate::domain::clock::rfc3339;
use crate::domain::permissions::Change;
use crate::domain::queries::{ListedUser, UserSearch};
use crate::domain::users::Users;

#[derive(Subcommand)]
pub(super) enum UserCommand {
    /// Create a user; prints its id (the `sub`).
    Add {
        username: String,
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Change a user's roles (revokes their sessions under the `revoke` policy).
    Roles(RolesArgs),
    /// Disable a user and revoke their sessions.
    Disable { username: String },
    /// Enable a disabled user (bumps `ver`; an enabled user is left as it is).
    Enable { username: String },
    /// Delete a user: revoke every session and erase their personal data (the username is
    /// free again). Asks for the username on standard input unless `--yes`.
    Delete {
        username: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// List users in username order, a table (or `--json`, one JSON object per user per line).
    List(ListArgs),
    /// One user: id, roles, `ver`, status, creation time and live session count.
    Show {
        username: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set a user's password and revoke their sessions.
    Passwd {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(false)))]
pub(super) struct RolesArgs {
    username: String,
    /// Replace the roles with this comma-separated list (empty for none).
    #[arg(long, group = "change", value_name = "R,R")]
    set: Option<String>,
    #[arg(long, group = "change", value_name = "ROLE")]
    add: Option<String>,
    #[arg(long, group = "change", value_name = "ROLE")]
    remove: Option<String>,
}

#[derive(Args)]
pub(super) struct ListArgs {
    /// Only usernames starting with this (up to ASCII letter case).
    #[arg(long)]
    prefix: Option<String>,
    /// Only users holding this role.
    #[arg(long)]
    role: Option<String>,
    /// Only disabled users.
    #[arg(long, conflicts_with = "enabled")]
    disabled: bool,
    /// Only enabled users.
    #[arg(long)]
    enabled: bool,
    /// At most this many users (1-200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    limit: u32,
    /// One JSON object per line per user (as `GET /admin/users` lists them) instead of a table.
    #[arg(long)]
    json: bool,
}

/// A user as `GET /admin/users` lists it, so scripts read both alike.
fn user_json(u: &ListedUser) -> serde_json::Value {
    serde_json::json!({
        "id": u.user.id,
        "username": u.user.username,
        "roles": u.user.roles,
        "ver": u.user.authz_version,
        "disabled": u.user.disabled,
        "created_at": rfc3339(Some(u.created_at)),
    })
}

async fn list(users: &Users, args: ListArgs) -> Result<(), Failure> {
    let search = UserSearch {
        prefix: args.prefix,
        role: args.role,
        disabled: (args.disabled || args.enabled).then_some(args.disabled),
        cursor: None,
    };
    let page = users.list_users(&search, args.limit).await.map_err(fail)?;
    if args.json {
        for u in &page.users {
            println!("{}", user_json(u));
        }
    } else {
        table(&page.users);
    }
    if page.next_cursor.is_some() {
        eprintln!("(more users: narrow the search or raise --limit)");
    }
    Ok(())
}

fn table(users: &[ListedUser]) {
    println!(
        "{:<36}  {:<24}  {:>5}  {:<8}  ROLES",
        "ID", "USERNAME", "VER", "STATUS"
    );
    for u in users {
        println!(
            "{:<36}  {:<24}  {:>5}  {:<8}  {}",
            u.user.id,
            u.user.username,
            u.user.authz_version,
            status(u.user.disabled),
            u.user.roles.join(",")
        );
    }
}

fn status(disabled: bool) -> &'static str {
    if disabled { "disabled" } else { "enabled" }
}

async fn show(users: &Users, username: &str, json: bool) -> Result<(), Failure> {
    let id = find_user(users, username).await?.id;
    let u = users
        .listed_user(&id)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(format!("no user named `{username}`")))?;
    let sessions = users
        .live_sessions(&id)
        .await
        .map_err(fail)?
        .map_or(0, |s| s.len());
    if json {
        let mut doc = user_json(&u);
        doc["live_sessions"] = sessions.into();
        println!("{doc}");
        return Ok(());
    }
    println!("id:            {}", u.user.id);
    println!("username:      {}", u.user.username);
    println!("roles:         {}", u.user.roles.join(","));
    println!("ver:           {}", u.user.authz_version);
    println!("status:        {}", status(u.user.disabled));
    println!("created_at:    {}", rfc3339(Some(u.created_at)));
    println!("live sessions: {sessions}");
    Ok(())
}

fn read_password() -> Result<SecretString, Failure> {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(fail)?;
    let trimmed = line.trim_end_matches(['\n', '\r']).to_string();
    Ok(SecretString::from(trimmed))
}

async fn find_user(users: &Users, username: &str) -> Result<crate::domain::users::User, Failure> {
    users
        .user_by_name(username)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(format!("no user named `{username}`")))
}

pub(super) async fn user(users: &Users, cmd: UserCommand) -> Result<(), Failure> {
    match cmd {
        UserCommand::Add {
            username, roles, ..
        } => {
            let password = read_password()?;
            let roles = roles
                .iter()
                .flat_map(|r| r.split(','))
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(String::from)
                .collect();
            let user = users
                .create_user(&Actor::cli(), &username, password, roles)
                .await
                .map_err(fail)?;
            println!("{}", user.id);
        }
        UserCommand::Roles(args) => {
            let user = find_user(users, &args.username).await?;
            let mut roles = user.roles;
            if let Some(set) = args.set {
                roles = set
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(String::from)
                    .collect();
            } else if let Some(add) = args.add {
                roles.push(add);
            } else if let Some(remove) = args.remove {
                roles.retain(|r| *r != remove);
            }
            let user = users
                .change_user(&Actor::cli(), &user.id, Change::Roles(roles))
                .await
                .map_err(fail)?;
            eprintln!(
                "{}: roles {} (ver {})",
                args.username,
                crate::store::to_json(&user.roles),
                user.authz_version
            );
        }
        UserCommand::Disable { username } => {
            let user = find_user(users, &username).await?;
            users
                .change_user(&Actor::cli(), &user.id, Change::Disable)
                .await
                .map_err(fail)?;
            eprintln!("{username}: disabled, sessions revoked");
        }
        UserCommand::Enable { username } => {
            let user = find_user(users, &username).await?;
            let (user, changed) = users
                .enable_user(&Actor::cli(), &user.id)
                .await
                .map_err(fail)?;
            if changed {
                eprintln!("{username}: enabled (ver {})", user.authz_version);
            } else {
                eprintln!("{username}: already enabled, nothing changed");
            }
        }
        UserCommand::Delete { username, yes } => {
            let user = find_user(users, &username).await?;
            if !yes {
                eprintln!("type the username `{username}` to delete it and everything it holds:");
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).map_err(fail)?;
                if line.trim_end_matches(['\n', '\r']) != username {
                    return Err(fail("not confirmed: nothing deleted"));
                }
            }
            users
                .delete_user(&Actor::cli(), &user.id)
                .await
                .map_err(fail)?;
            eprintln!("{username}: deleted ({}), sessions revoked", user.id);
        }
        UserCommand::List(args) => list(users, args).await?,
        UserCommand::Show { username, json } => show(users, &username, json).await?,
        UserCommand::Passwd { username, .. } => {
            let user = find_user(users, &username).await?;
            let password = read_password()?;
            users
                .change_user(&Actor::cli(), &user.id, Change::Password(password))
                .await
                .map_err(fail)?;
            eprintln!("{username}: password changed, sessions revoked");
        }
    }
    Ok(())
}
