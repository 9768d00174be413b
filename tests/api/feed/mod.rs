//! The security event feed: SSE and long-poll, who sees what, fan-out, and tessera-verify following it.

pub(crate) mod events;
pub(crate) mod events_access;
pub(crate) mod events_fanout;
pub(crate) mod events_poll;
pub(crate) mod events_wire;
pub(crate) mod verify_enabled;
pub(crate) mod verify_feed;
pub(crate) mod verify_hostile;
