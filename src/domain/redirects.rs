//! Redirect URIs and CORS origins of browser and native apps: what may be
//! registered (RFC 9700 §2.1, RFC 8252) and how a request's URI must match.

use url::Url;

use super::clients::{GrantType, NewClient};

/// Checks a registration for the code flow and fills in what follows from it:
/// the refresh grant, the `openid` scope, and the origins of web redirect URIs.
pub fn check_registration(new: &mut NewClient) -> Result<(), String> {
    let code_flow = new.grant_types.contains(&GrantType::AuthorizationCode);
    if !code_flow {
        if !new.redirect_uris.is_empty() || !new.post_logout_redirect_uris.is_empty() {
            return Err("redirect URIs need the authorization_code grant".into());
        }
        if new.third_party {
            return Err("third_party applies to authorization_code clients".into());
        }
    } else if new.redirect_uris.is_empty() {
        return Err("the authorization_code grant needs at least one redirect URI".into());
    }
    if new.third_party && new.grant_types.contains(&GrantType::Password) {
        return Err("a third-party client cannot use the password grant".into());
    }
    for uri in new
        .redirect_uris
        .iter()
        .chain(&new.post_logout_redirect_uris)
    {
        let url = Url::parse(uri).map_err(|_| format!("redirect URI `{uri}` is not absolute"))?;
        if url.fragment().is_some() {
            return Err(format!("redirect URI `{uri}` must not have a fragment"));
        }
        let plain_http = url.scheme() == "http" && !is_loopback(&url) && !is_localhost(&url);
        if plain_http || matches!(url.scheme(), "javascript" | "data" | "file") {
            return Err(format!(
                "redirect URI `{uri}` must be https, http on a loopback address, or an app's own scheme"
            ));
        }
        if let Some(origin) = web_origin(&url) {
            new.origins.push(origin);
        }
    }
    for origin in &mut new.origins {
        let url = Url::parse(origin).map_err(|_| format!("origin `{origin}` is not a URL"))?;
        let serialised = web_origin(&url)
            .filter(|o| url.path() == "/" && origin.trim_end_matches('/') == o)
            .ok_or_else(|| format!("origin `{origin}` must be scheme://host[:port]"))?;
        *origin = serialised;
    }
    if code_flow && !new.scopes.iter().any(|s| s == "openid") {
        new.scopes.push("openid".into());
    }
    Ok(())
}

/// `scheme://host[:port]` of an http(s) URL, as a browser sends it in `Origin`.
fn web_origin(url: &Url) -> Option<String> {
    matches!(url.scheme(), "http" | "https").then(|| url.origin().ascii_serialization())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    }
}

fn is_localhost(url: &Url) -> bool {
    url.host_str() == Some("localhost")
}

/// Whether `requested` is one of `registered`: exactly, or (RFC 8252 §7.3) an
/// `http` loopback IP redirect URI that differs only in its port.
pub fn matches(registered: &[String], requested: &str) -> bool {
    registered.iter().any(|r| {
        if r == requested {
            return true;
        }
        let (Ok(mut a), Ok(mut b)) = (Url::parse(r), Url::parse(requested)) else {
            return false;
        };
        if a.scheme() != "http" || !is_loopback(&a) || b.scheme() != "http" || !is_loopback(&b) {
            return false;
        }
        // Compared as written, not as normalised, apart from the port.
        let (Ok(()), Ok(())) = (a.set_port(None), b.set_port(None)) else {
            return false;
        };
        a.as_str() == b.as_str() && requested.starts_with("http://")
    })
}

/// `uri` with `params` appended to its query (RFC 6749 §4.1.2).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    if params.is_empty() {
        return uri.to_string();
    }
    let Ok(mut url) = Url::parse(uri) else {
        return uri.to_string();
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    url.to_string()
}

/// The origin a redirect goes to, for the pages' `form-action`.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_ports_may_vary_nothing_else() {
        let reg = vec![
            "http://127.0.0.1/cb".to_string(),
            "https://app.example/cb".to_string(),
        ];
        assert!(matches(&reg, "http://127.0.0.1:51234/cb"));
        assert!(matches(&reg, "https://app.example/cb"));
        assert!(!matches(&reg, "https://app.example/cb/"));
        assert!(!matches(&reg, "https://app.example:8443/cb"));
        assert!(!matches(&reg, "http://127.0.0.1:5/cc"));
        assert!(!matches(&reg, "http://127.0.0.2:5/cb"));
        assert!(!matches(&reg, "http://localhost:5/cb"));
        let v6 = vec!["http://[::1]:8080/cb".to_string()];
        assert!(matches(&v6, "http://[::1]:9/cb"));
    }
}
