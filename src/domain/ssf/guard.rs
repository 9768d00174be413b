//! The push client's guard. A push endpoint is a request to an address a client chose.
//! Unless `ssf_allow_insecure_push`, only `https` is allowed, and only to public
//! addresses: a literal address is checked in the URL, a name is resolved by
//! [`PublicOnly`], which hands the connector only the addresses it checked; redirects are
//! not followed.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::push::SEND_TIMEOUT;

/// The client pushes go through: no redirects, bounded time, and (unless insecure
/// push is allowed) only public addresses.
pub fn client(allow_insecure: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(SEND_TIMEOUT)
        .connect_timeout(SEND_TIMEOUT)
        .user_agent("tessera-ssf");
    let builder = if allow_insecure {
        builder
    } else {
        builder.https_only(true).dns_resolver(Arc::new(PublicOnly))
    };
    builder.build().expect("the push client builds")
}

/// Whether a URL may be a push endpoint: `https` (or `http` when insecure push is
/// allowed), a host, no credentials, and a literal address only if public.
pub fn check_url(url: &str, allow_insecure: bool) -> Result<(), &'static str> {
    let url = url::Url::parse(url).map_err(|_| "delivery.endpoint_url is not a URL")?;
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure => {}
        _ => return Err("delivery.endpoint_url must be https"),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("delivery.endpoint_url must not carry credentials");
    }
    let literal = match url.host() {
        None => return Err("delivery.endpoint_url needs a host"),
        Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
        Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
        Some(url::Host::Domain(_)) => None,
    };
    if !allow_insecure && literal.is_some_and(|a| !is_public(a)) {
        return Err("delivery.endpoint_url must be a public address");
    }
    Ok(())
}

/// Whether an address is reachable on the public internet: not loopback, private,
/// link-local, unspecified, multicast, shared, documentation or reserved.
pub fn is_public(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => {
            let [b0, b1, ..] = a.octets();
            !(a.is_loopback()
                || a.is_private()
                || a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation()
                || b0 == 0
                || b0 >= 240
                || (b0 == 100 && (64..128).contains(&b1))
                || (b0 == 198 && (18..20).contains(&b1))
                || (b0 == 192 && b1 == 0 && a.octets()[2] == 0))
        }
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = a.segments();
            !(a.is_loopback()
                || a.is_unspecified()
                || a.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] & 0xffc0) == 0xfec0
                || (s[0] == 0x2001 && s[1] == 0x0db8)
                || (s[0] == 0x0064 && s[1] == 0xff9b))
        }
    }
}

/// Resolves a push endpoint's name and keeps only its public addresses: the
/// connector dials an address that was checked, so a name cannot be re-resolved to
/// an internal one between the check and the connection.
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| is_public(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err("the push endpoint has no public address".into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_pass_the_guard() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "::1",
            "::",
            "fe80::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        assert!(check_url("https://receiver.example/ssf", false).is_ok());
        assert!(check_url("http://receiver.example/ssf", false).is_err());
        assert!(check_url("https://127.0.0.1/ssf", false).is_err());
        assert!(check_url("https://[::1]/ssf", false).is_err());
        assert!(check_url("https://user:pw@receiver.example/", false).is_err());
        assert!(check_url("not a url", true).is_err());
        assert!(check_url("ftp://receiver.example/", true).is_err());
        assert!(check_url("http://127.0.0.1:9/ssf", true).is_ok());
    }
}
