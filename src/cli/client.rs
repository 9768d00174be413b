//! `tessera client ...`: register, list, show, change, rotate the secret of and remove
//! clients, through the same domain calls as `/admin/clients`.

use std::io::{IsTerminal, Write};

use clap::{Args, Subcommand};
use secrecy::ExposeSecret;
use serde_json::{Map, Value};

use super::{Failure, fail};
use crate::config::{Config, SigningAlg};
use crate::domain::audit::Actor;
use crate::domain::clients::{Client, ClientChange, ClientSearch, ClientView, Clients, NewClient};
use crate::domain::clock::rfc3339;

#[derive(Subcommand)]
pub(super) enum ClientCommand {
    /// Register a client; prints the generated secret once (nothing for a public client).
    Add {
        id: String,
        /// A public client (no secret; cannot use client_credentials).
        #[arg(long)]
        public: bool,
        #[arg(long = "grant", value_name = "GRANT")]
        grants: Vec<String>,
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        #[arg(long = "audience", value_name = "AUD")]
        audiences: Vec<String>,
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
        /// Capabilities: `introspect`, `events`.
        #[arg(long = "can", value_name = "CAPABILITY")]
        capabilities: Vec<String>,
        /// This client's refresh-token reuse grace window in seconds (0 = strict);
        /// default: the server's refresh_reuse_grace.
        #[arg(long, value_name = "SECONDS")]
        refresh_reuse_grace: Option<u64>,
        /// Where `/authorize` may send codes (authorization_code clients; repeatable).
        #[arg(long = "redirect-uri", value_name = "URI")]
        redirect_uris: Vec<String>,
        /// A browser origin allowed by CORS (those of https/http redirect URIs are added).
        #[arg(long = "origin", value_name = "ORIGIN")]
        origins: Vec<String>,
        /// A third-party app: users are asked to consent.
        #[arg(long)]
        third_party: bool,
        /// Where `/end_session` may send the browser after sign-out (repeatable).
        #[arg(long = "post-logout-redirect-uri", value_name = "URI")]
        post_logout_redirect_uris: Vec<String>,
        /// The JWS alg of its ID tokens: RS256, or the deployment's signing_alg (the default).
        #[arg(long = "id-token-alg", value_name = "ALG")]
        id_token_alg: Option<String>,
    },
    /// List clients in id order, a table (or `--json`, one JSON object per client per line).
    List(ListArgs),
    /// One client: everything but its secret (or `--json`, as `GET /admin/clients/{id}`).
    Show {
        id: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a client's lists (add or remove entries) or third-party flag; what it may no
    /// longer do is revoked (its sessions, its codes for a removed redirect URI).
    Update(UpdateArgs),
    /// A new secret, printed alone on stdout; the old one works for client_secret_overlap.
    RotateSecret { id: String },
    /// Remove a client: its sessions revoked, its codes, consents and streams deleted.
    Remove {
        id: String,
        /// Do not ask (required when standard input is not a terminal).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
pub(super) struct ListArgs {
    /// Only ids starting with this.
    #[arg(long)]
    prefix: Option<String>,
    /// At most this many clients (1-200).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=200))]
    limit: u32,
    /// Start after the page that printed this cursor.
    #[arg(long)]
    cursor: Option<String>,
    /// One JSON object per line per client (as `GET /admin/clients` lists them).
    #[arg(long)]
    json: bool,
}

/// Each list has `--add-X VALUE` and `--remove-X VALUE`, both repeatable; removing an
/// entry the client does not have is an error.
#[derive(Args)]
pub(super) struct UpdateArgs {
    id: String,
    #[arg(long = "add-grant", value_name = "GRANT")]
    add_grants: Vec<String>,
    #[arg(long = "remove-grant", value_name = "GRANT")]
    remove_grants: Vec<String>,
    #[arg(long = "add-scope", value_name = "SCOPE")]
    add_scopes: Vec<String>,
    #[arg(long = "remove-scope", value_name = "SCOPE")]
    remove_scopes: Vec<String>,
    #[arg(long = "add-audience", value_name = "AUD")]
    add_audiences: Vec<String>,
    #[arg(long = "remove-audience", value_name = "AUD")]
    remove_audiences: Vec<String>,
    #[arg(long = "add-role", value_name = "ROLE")]
    add_roles: Vec<String>,
    #[arg(long = "remove-role", value_name = "ROLE")]
    remove_roles: Vec<String>,
    /// Capabilities: `introspect`, `events`.
    #[arg(long = "add-can", value_name = "CAPABILITY")]
    add_capabilities: Vec<String>,
    #[arg(long = "remove-can", value_name = "CAPABILITY")]
    remove_capabilities: Vec<String>,
    #[arg(long = "add-redirect-uri", value_name = "URI")]
    add_redirect_uris: Vec<String>,
    #[arg(long = "remove-redirect-uri", value_name = "URI")]
    remove_redirect_uris: Vec<String>,
    #[arg(long = "add-origin", value_name = "ORIGIN")]
    add_origins: Vec<String>,
    #[arg(long = "remove-origin", value_name = "ORIGIN")]
    remove_origins: Vec<String>,
    #[arg(long = "add-post-logout-redirect-uri", value_name = "URI")]
    add_post_logout_redirect_uris: Vec<String>,
    #[arg(long = "remove-post-logout-redirect-uri", value_name = "URI")]
    remove_post_logout_redirect_uris: Vec<String>,
    /// Whether users are asked to consent (true or false).
    #[arg(long, value_name = "BOOL")]
    third_party: Option<bool>,
    /// Print the changed client as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(super) async fn client(cfg: Config, cmd: ClientCommand) -> Result<(), Failure> {
    let open = |cfg| async move {
        Clients::open(cfg, false)
            .await
            .map_err(|e| fail(crate::error_chain(&e)))
    };
    match cmd {
        cmd @ ClientCommand::Add { .. } => add(cfg, cmd).await,
        ClientCommand::List(args) => list(&open(cfg).await?, args).await,
        ClientCommand::Show { id, json } => show(&open(cfg).await?, &id, json).await,
        ClientCommand::Update(args) => update(&open(cfg).await?, args).await,
        ClientCommand::RotateSecret { id } => rotate_secret(&open(cfg).await?, &id).await,
        ClientCommand::Remove { id, yes } => remove(&open(cfg).await?, &id, yes).await,
    }
}

async fn add(cfg: Config, cmd: ClientCommand) -> Result<(), Failure> {
    let ClientCommand::Add {
        id,
        public,
        grants,
        scopes,
        audiences,
        roles,
        capabilities,
        refresh_reuse_grace,
        redirect_uris,
        origins,
        third_party,
        post_logout_redirect_uris,
        id_token_alg,
    } = cmd
    else {
        unreachable!("called for add")
    };
    // The protocol words are typed here, at the edge: an unknown one names the known ones.
    let grant_types = grants.iter().map(|g| g.parse()).collect::<Result<_, _>>();
    let capabilities = capabilities
        .iter()
        .map(|c| c.parse())
        .collect::<Result<_, _>>();
    // Only a client registered for RS256 ID tokens needs the keys (its chain starts now).
    let rs256 = id_token_alg.as_deref().and_then(SigningAlg::parse) == Some(SigningAlg::RS256);
    let clients = Clients::open(cfg, rs256)
        .await
        .map_err(|e| fail(crate::error_chain(&e)))?;
    let new = NewClient {
        id: id.clone(),
        public,
        grant_types: grant_types.map_err(fail)?,
        scopes,
        audiences,
        roles,
        capabilities: capabilities.map_err(fail)?,
        refresh_reuse_grace,
        redirect_uris,
        origins,
        third_party,
        post_logout_redirect_uris,
        id_token_signed_response_alg: id_token_alg,
    };
    match clients.create(&Actor::cli(), new).await.map_err(fail)? {
        Some(secret) => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", secret.expose_secret()).map_err(fail)?;
            eprintln!("client `{id}` created; the secret above is shown once");
        }
        None => eprintln!("public client `{id}` created"),
    }
    Ok(())
}

/// The client `id`, or the error naming it.
async fn find(clients: &Clients, id: &str) -> Result<Client, Failure> {
    clients
        .client(id)
        .await
        .map_err(fail)?
        .ok_or_else(|| fail(format!("no client `{id}`")))
}

fn json_line(c: &Client) -> String {
    serde_json::to_string(&ClientView::new(c, None)).expect("a client serialises")
}

fn kind(c: &Client) -> &'static str {
    if c.is_public() {
        "public"
    } else {
        "confidential"
    }
}

fn words<T: serde::Serialize>(list: &[T]) -> String {
    let v = serde_json::to_value(list).expect("words serialise");
    let words: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    words.join(",")
}

async fn list(clients: &Clients, args: ListArgs) -> Result<(), Failure> {
    let search = ClientSearch {
        prefix: args.prefix,
        cursor: args.cursor,
    };
    let page = clients.list(&search, args.limit).await.map_err(fail)?;
    if args.json {
        for c in &page.clients {
            println!("{}", json_line(c));
        }
    } else {
        println!(
            "{:<32}  {:<12}  {:<20}  GRANTS",
            "CLIENT_ID", "KIND", "CREATED"
        );
        for c in &page.clients {
            println!(
                "{:<32}  {:<12}  {:<20}  {}",
                c.id,
                kind(c),
                rfc3339(Some(c.created_at)),
                words(&c.grant_types)
            );
        }
    }
    if let Some(next) = page.next_cursor {
        eprintln!("(more clients: --cursor {next})");
    }
    Ok(())
}

async fn show(clients: &Clients, id: &str, json: bool) -> Result<(), Failure> {
    let c = find(clients, id).await?;
    if json {
        println!("{}", json_line(&c));
        return Ok(());
    }
    let grace = c
        .refresh_reuse_grace
        .map_or("the server's".into(), |g| format!("{} s", g.as_secs()));
    let alg = c.id_token_alg.map_or("the deployment's", |a| a.as_str());
    let previous = c.previous_secret_expires_at.map_or("none".into(), |t| {
        format!("accepted until {}", rfc3339(Some(t)))
    });
    for (label, value) in [
        ("client_id", c.id.clone()),
        ("kind", kind(&c).into()),
        ("created_at", rfc3339(Some(c.created_at))),
        ("grant_types", words(&c.grant_types)),
        ("scopes", c.scopes.join(",")),
        ("audiences", c.audiences.join(",")),
        ("roles", c.roles.join(",")),
        ("capabilities", words(&c.capabilities)),
        ("redirect_uris", c.redirect_uris.join(",")),
        ("origins", c.origins.join(",")),
        ("post_logout", c.post_logout_redirect_uris.join(",")),
        ("third_party", c.third_party.to_string()),
        ("refresh_grace", grace),
        ("id_token_alg", alg.into()),
        ("previous_secret", previous),
    ] {
        println!("{:<16} {value}", format!("{label}:"));
    }
    Ok(())
}

/// Applies `add` and `remove` to the list member `name` of `doc`; the edited list, or
/// `None` when nothing is asked of it.
fn edit(
    doc: &Value,
    name: &str,
    add: &[String],
    remove: &[String],
) -> Result<Option<Value>, Failure> {
    if add.is_empty() && remove.is_empty() {
        return Ok(None);
    }
    let mut list: Vec<String> = serde_json::from_value(doc[name].clone()).unwrap_or_default();
    for r in remove {
        let before = list.len();
        list.retain(|x| x != r);
        if list.len() == before {
            return Err(fail(format!("`{r}` is not among its {name}")));
        }
    }
    list.extend(add.iter().cloned());
    Ok(Some(list.into()))
}

async fn update(clients: &Clients, a: UpdateArgs) -> Result<(), Failure> {
    let current = find(clients, &a.id).await?;
    let doc = serde_json::to_value(current.settings()).map_err(fail)?;
    let mut change = Map::new();
    for (name, add, remove) in [
        ("grant_types", &a.add_grants, &a.remove_grants),
        ("scopes", &a.add_scopes, &a.remove_scopes),
        ("audiences", &a.add_audiences, &a.remove_audiences),
        ("roles", &a.add_roles, &a.remove_roles),
        ("capabilities", &a.add_capabilities, &a.remove_capabilities),
        (
            "redirect_uris",
            &a.add_redirect_uris,
            &a.remove_redirect_uris,
        ),
        ("origins", &a.add_origins, &a.remove_origins),
        (
            "post_logout_redirect_uris",
            &a.add_post_logout_redirect_uris,
            &a.remove_post_logout_redirect_uris,
        ),
    ] {
        if let Some(list) = edit(&doc, name, add, remove)? {
            change.insert(name.into(), list);
        }
    }
    if let Some(third_party) = a.third_party {
        change.insert("third_party".into(), third_party.into());
    }
    if change.is_empty() {
        return Err(fail(
            "nothing to change: pass --add-*, --remove-* or --third-party",
        ));
    }
    let (client, narrowed) = clients
        .update(&Actor::cli(), &a.id, ClientChange(change))
        .await
        .map_err(fail)?;
    if a.json {
        println!("{}", json_line(&client));
    }
    eprintln!(
        "client `{}` updated; {} sessions revoked, {} authorization codes dropped, {} Shared Signals streams disabled",
        a.id, narrowed.revoked_sessions, narrowed.forgotten_codes, narrowed.disabled_streams
    );
    Ok(())
}

async fn rotate_secret(clients: &Clients, id: &str) -> Result<(), Failure> {
    let (secret, until) = clients
        .rotate_secret(&Actor::cli(), id)
        .await
        .map_err(fail)?;
    writeln!(std::io::stdout().lock(), "{}", secret.expose_secret()).map_err(fail)?;
    match until {
        Some(t) => eprintln!(
            "new secret for `{id}` above, shown once; the previous one works until {}",
            rfc3339(Some(t))
        ),
        None => eprintln!("new secret for `{id}` above, shown once; the previous one is refused"),
    }
    Ok(())
}

async fn remove(clients: &Clients, id: &str, yes: bool) -> Result<(), Failure> {
    find(clients, id).await?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(fail(format!(
                "removing `{id}` revokes its sessions: pass --yes to confirm"
            )));
        }
        eprint!("remove client `{id}`, revoking its sessions? type its id to confirm: ");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(fail)?;
        if line.trim_end() != id {
            return Err(fail("not confirmed; nothing removed"));
        }
    }
    let revoked = clients.remove(&Actor::cli(), id).await.map_err(fail)?;
    eprintln!("client `{id}` removed; {revoked} sessions revoked");
    Ok(())
}
