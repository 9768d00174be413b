//! Hostile input and faults: bad bearers and JWTs, raw sockets, slowloris, throttles and lockouts, crashes, database faults.

pub(crate) mod hardening_bearer;
pub(crate) mod hardening_cancel;
pub(crate) mod hardening_crash;
pub(crate) mod hardening_files;
pub(crate) mod hardening_hostile;
pub(crate) mod hardening_jwt;
pub(crate) mod hardening_lockout;
pub(crate) mod hardening_process;
pub(crate) mod hardening_props;
pub(crate) mod hardening_raw;
pub(crate) mod hardening_slowloris;
pub(crate) mod hardening_streams;
pub(crate) mod hardening_throttle;
pub(crate) mod hardening_throttle_race;
pub(crate) mod postgres_faults;
