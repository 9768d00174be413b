//! Connections per client address on the public port: one address (an IPv4 address,
//! or an IPv6 /64, which one subscriber usually holds whole) may hold at most
//! `max_connections_per_address` of the port's `max_connections`, so it cannot take
//! every slot with half-sent requests it re-opens as they time out.
//!
//! Trusted proxies are exempt: their connections carry many clients, and per-client
//! limits are the proxy's to enforce (docs/operations.md). Which address a request
//! comes from, behind those proxies, is [`client_address`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::http::HeaderMap;

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

/// The client's address behind trusted proxies (`TESSERA_TRUSTED_PROXIES`).
///
/// `X-Forwarded-For` is walked from the right, the end our own proxies append
/// to, for as long as each hop is a trusted proxy; the first untrusted address
/// is the client. Everything left of it was written by the client and proves
/// nothing. An entry that is not a bare IP address (`ip:port`, `unknown`, an
/// obfuscated name) ends the walk at the TCP peer: the proxy that wrote it did
/// not say who its client was, and skipping it would let the client's own
/// (spoofed) entry count.
pub(super) fn client_address(direct: IpAddr, headers: &HeaderMap, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&direct) {
        return direct;
    }
    let mut entries = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return direct;
        };
        entries.extend(value.split(','));
    }
    for entry in entries.iter().rev() {
        let Ok(hop) = entry.trim().parse::<IpAddr>() else {
            return direct;
        };
        if !trusted.contains(&hop) {
            return hop;
        }
    }
    direct
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

    #[test]
    fn forwarded_for_is_walked_from_the_right_over_trusted_hops_only() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (proxy, inner) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let trusted = [proxy, inner];
        let at = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append("x-forwarded-for", v.parse().unwrap());
            }
            client_address(proxy, &h, &trusted)
        };
        assert_eq!(at(&["6.6.6.6, 1.2.3.4"]), ip("1.2.3.4"));
        assert_eq!(at(&["6.6.6.6, 1.2.3.4, 10.0.0.2"]), ip("1.2.3.4"));
        assert_eq!(
            at(&["6.6.6.6", "1.2.3.4"]),
            ip("1.2.3.4"),
            "headers in order"
        );
        assert_eq!(
            at(&["6.6.6.6, 1.2.3.4:5678"]),
            proxy,
            "ip:port ends the walk"
        );
        assert_eq!(at(&["6.6.6.6, unknown"]), proxy, "unknown ends the walk");
        assert_eq!(at(&["6.6.6.6, unknown, 10.0.0.2"]), proxy);
        assert_eq!(at(&["6.6.6.6,"]), proxy, "an empty entry ends the walk");
        assert_eq!(at(&["[::1]:80"]), proxy);
        assert_eq!(at(&["2001:db8::1"]), ip("2001:db8::1"));
        assert_eq!(at(&[]), proxy);
        let untrusted = ip("9.9.9.9");
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", "1.2.3.4".parse().unwrap());
        assert_eq!(client_address(untrusted, &h, &trusted), untrusted);
    }
}
