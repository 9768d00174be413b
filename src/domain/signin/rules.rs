//! What a browser sign-in asks of the user (OpenID Connect Core §3.1.2.1): whether the
//! browser's session will do or the login form is due (`prompt`, `max_age`), and whether
//! the consent page is. Pure: the `/authorize` pages map each answer to a page or a
//! redirect.

use crate::domain::browser::BrowserSession;

/// The request's `prompt` values that tessera acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// `none`: show no page; answer with an error instead.
    pub none: bool,
    /// `login` (or `select_account`): ask for the password even with a live session.
    pub login: bool,
    /// `consent`: ask for consent even when it is remembered.
    pub consent: bool,
}

impl Prompt {
    /// Parses a space-separated `prompt`; the error is the `error_description` of the
    /// app's `invalid_request`.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let mut prompt = Self::default();
        for p in raw.split(' ').filter(|p| !p.is_empty()) {
            match p {
                "none" => prompt.none = true,
                // One account per browser: choosing one means signing in again.
                "login" | "select_account" => prompt.login = true,
                "consent" => prompt.consent = true,
                _ => return Err("unknown prompt value"),
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err("prompt=none stands alone");
        }
        Ok(prompt)
    }
}

/// Parses `max_age`: seconds, a non-negative integer.
pub fn parse_max_age(raw: &str) -> Result<i64, &'static str> {
    raw.parse::<i64>()
        .ok()
        .filter(|m| *m >= 0)
        .ok_or("max_age must be a non-negative integer")
}

/// Who signs in, for a request and the browser's session.
#[derive(Debug, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// The browser's session will do.
    SignedIn(&'a BrowserSession),
    /// The user must sign in but `prompt=none` forbids the form: `login_required`.
    LoginRequired,
    /// Show the login form.
    Login,
}

/// Whether `session` (if any) authenticates this request at `now` (Unix seconds):
/// `prompt=login` and a sign-in older than `max_age` ask for the password again;
/// `max_age=0` is `prompt=login` (§3.1.2.1).
pub fn authentication(
    session: Option<&BrowserSession>,
    prompt: Prompt,
    max_age: Option<i64>,
    now: i64,
) -> Authentication<'_> {
    let fresh = |auth_time: i64| max_age.is_none_or(|m| m > 0 && now - auth_time <= m);
    match session {
        Some(s) if !prompt.login && fresh(s.auth_time) => Authentication::SignedIn(s),
        _ if prompt.none => Authentication::LoginRequired,
        _ => Authentication::Login,
    }
}

/// Whether the signed-in user is asked to consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// Issue the code: a first-party client, or consent remembered for these scopes.
    Given,
    /// Show the consent page.
    Ask,
    /// Consent is due but `prompt=none` forbids the page: `consent_required`.
    Required,
}

/// A first-party client needs no consent; a third-party one needs it unless the user
/// consented to exactly these scopes before (`remembered`) and `prompt=consent` does not
/// ask again.
pub fn consent(third_party: bool, remembered: bool, prompt: Prompt) -> Consent {
    match (third_party, remembered && !prompt.consent) {
        (false, _) | (true, true) => Consent::Given,
        (true, false) if prompt.none => Consent::Required,
        (true, false) => Consent::Ask,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn session(auth_time: i64) -> BrowserSession {
        BrowserSession {
            user_id: "u".into(),
            auth_time,
            amr: "pwd".into(),
        }
    }

    fn prompt(raw: &str) -> Prompt {
        Prompt::parse(raw).unwrap()
    }

    #[test]
    fn prompt_values_parse_and_none_stands_alone() {
        assert_eq!(prompt(""), Prompt::default());
        let all = prompt("login  consent");
        assert!(all.login && all.consent && !all.none);
        assert!(prompt("select_account").login);
        assert_eq!(Prompt::parse("none login"), Err("prompt=none stands alone"));
        assert_eq!(
            Prompt::parse("none consent"),
            Err("prompt=none stands alone")
        );
        assert_eq!(Prompt::parse("create"), Err("unknown prompt value"));
    }

    #[test]
    fn max_age_is_a_non_negative_integer() {
        assert_eq!(parse_max_age("0"), Ok(0));
        assert_eq!(parse_max_age("3600"), Ok(3600));
        for bad in ["-1", "1.5", "", "ten"] {
            assert!(parse_max_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_live_session_signs_in_unless_prompt_login() {
        let s = session(NOW - 10);
        let none = Prompt::default();
        assert_eq!(
            authentication(Some(&s), none, None, NOW),
            Authentication::SignedIn(&s)
        );
        assert_eq!(
            authentication(Some(&s), prompt("login"), None, NOW),
            Authentication::Login
        );
        assert_eq!(authentication(None, none, None, NOW), Authentication::Login);
        assert_eq!(
            authentication(None, prompt("none"), None, NOW),
            Authentication::LoginRequired
        );
    }

    #[test]
    fn max_age_asks_again_once_the_sign_in_is_older() {
        let s = session(NOW - 60);
        let none = Prompt::default();
        let at = |max_age| authentication(Some(&s), none, Some(max_age), NOW);
        assert_eq!(
            at(60),
            Authentication::SignedIn(&s),
            "exactly max_age: fresh"
        );
        assert_eq!(at(59), Authentication::Login);
        assert_eq!(at(0), Authentication::Login, "max_age=0 is prompt=login");
        assert_eq!(
            authentication(Some(&s), prompt("none"), Some(59), NOW),
            Authentication::LoginRequired
        );
    }

    #[test]
    fn consent_is_asked_of_third_parties_unless_remembered() {
        let none = Prompt::default();
        assert_eq!(consent(false, false, none), Consent::Given);
        assert_eq!(consent(false, false, prompt("consent")), Consent::Given);
        assert_eq!(consent(true, true, none), Consent::Given);
        assert_eq!(consent(true, false, none), Consent::Ask);
        assert_eq!(consent(true, true, prompt("consent")), Consent::Ask);
        assert_eq!(consent(true, false, prompt("none")), Consent::Required);
        assert_eq!(consent(true, true, prompt("none")), Consent::Given);
    }
}
