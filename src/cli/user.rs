//! `tessera user ...`: create users and change their roles, status and password.

use std::io::BufRead;

use clap::{Args, Subcommand};
use secrecy::SecretString;

use super::{Failure, fail};
use crate::domain::permissions::Change;
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
                .create_user(&username, password, roles)
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
                .change_user(&user.id, Change::Roles(roles))
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
                .change_user(&user.id, Change::Disable)
                .await
                .map_err(fail)?;
            eprintln!("{username}: disabled, sessions revoked");
        }
        UserCommand::Passwd { username, .. } => {
            let user = find_user(users, &username).await?;
            let password = read_password()?;
            users
                .change_user(&user.id, Change::Password(password))
                .await
                .map_err(fail)?;
            eprintln!("{username}: password changed, sessions revoked");
        }
    }
    Ok(())
}
