//! Connections per client address on the public port: one address (an IPv4 address,
//! or an IPv6 /64, which one subscriber usually holds whole) may hold at most
//! `max_connections_per_address` of the port's `max_connections`, so it cannot take
//! every slot with half-sent requests it re-opens as they time out.
//!
//! Trusted proxies are exempt: their connections carry many clients, and per-client
//! limits are the proxy's to enforce (docs/operations.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::domain::throttle::address_prefix;

/// Open connections per address prefix. Its entries are bounded by the port's
/// connection cap: an entry exists only while one of its connections does.
pub(super) struct PerAddress {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection counted against its address until dropped.
pub(super) struct AddressSlot {
    owner: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// At most `max` connections per address prefix.
    pub(super) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Counts a connection from `ip`, or `None` when its prefix holds `max` already.
    pub(super) fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddressSlot> {
        let key = address_prefix(ip);
        let mut open = self.open.lock().expect("per-address connections");
        let n = open.entry(key).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            owner: self.clone(),
            key,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.owner.open.lock().expect("per-address connections");
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_holds_at_most_max_and_frees_its_slots() {
        let cap = PerAddress::new(2);
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let neighbour: IpAddr = "2001:db8::2".parse().unwrap();
        let one = cap.acquire(ip).unwrap();
        let _two = cap.acquire(neighbour).unwrap();
        assert!(cap.acquire(ip).is_none(), "the /64 is full");
        assert!(cap.acquire("192.0.2.1".parse().unwrap()).is_some());
        drop(one);
        assert!(cap.acquire(ip).is_some());
        drop(_two);
        assert!(cap.open.lock().unwrap().len() <= 2);
    }
}
