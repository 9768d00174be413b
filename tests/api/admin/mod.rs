//! The operator's side: the admin API, the command line, permission changes.

pub(crate) mod admin_audience;
pub(crate) mod admin_input;
pub(crate) mod admin_keys;
pub(crate) mod api;
pub(crate) mod audit;
pub(crate) mod cli;
pub(crate) mod permissions;
pub(crate) mod permissions_admin;
pub(crate) mod users_list;
