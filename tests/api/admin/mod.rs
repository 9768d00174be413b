//! The operator's side: the admin API, the command line, permission changes.

pub(crate) mod admin_audience;
pub(crate) mod admin_bench;
pub(crate) mod admin_input;
pub(crate) mod admin_keys;
pub(crate) mod api;
pub(crate) mod audit;
pub(crate) mod cli;
pub(crate) mod cli_admin;
pub(crate) mod clients;
pub(crate) mod clients_cli;
pub(crate) mod clients_narrowing;
pub(crate) mod permissions;
pub(crate) mod permissions_admin;
pub(crate) mod sessions_events;
pub(crate) mod users_admin;
pub(crate) mod users_list;
