//! The sign-in throttle's sequence: reserve an attempt before the password is
//! evaluated, check it, settle the attempt by the outcome.

use std::net::IpAddr;

use super::{Throttle, Throttled, Ticket, Why, address_key};
use crate::domain::clock::Clock;
use crate::error::OAuthError;

/// A sign-in attempt reserved before its password is evaluated. Dropped
/// unsettled (its request ended before an answer), every reservation is given
/// back: an answer never sent tells a guesser nothing.
#[must_use = "a sign-in attempt ends with settle_login"]
struct LoginAttempt {
    /// The address's share of the argon2 queue, held until settled.
    _hashing: Ticket,
    /// The address's failures; `None` from a trusted device.
    address: Option<Ticket>,
    /// The username's failures, or the trusted device's.
    account: Ticket,
    /// The normalised username (the throttle's key, and the event's lookup).
    name: String,
}

impl Throttle {
    /// The login throttle's sequence, in one call: reserves an attempt for `username` from
    /// `peer` before `check` (the password) runs, so racing requests cannot exceed the
    /// limit, waiting at most `login_wait` for a slot; then settles it by `check`'s outcome.
    /// `device` is the browser's device cookie, if any. Dropped before `check` answers (its
    /// request ended), the attempt is given back.
    pub async fn login<T>(
        &self,
        clock: &Clock,
        username: &str,
        peer: IpAddr,
        device: Option<&str>,
        check: impl Future<Output = Result<T, OAuthError>>,
    ) -> Result<Settled<T>, Throttled> {
        let attempt = self.login_attempt(clock, username, peer, device).await?;
        let result = check.await;
        let limited = settle_login(attempt, &result, clock);
        Ok(Settled { result, limited })
    }

    async fn login_attempt(
        &self,
        clock: &Clock,
        username: &str,
        peer: IpAddr,
        device: Option<&str>,
    ) -> Result<LoginAttempt, Throttled> {
        let address = address_key(peer);
        let name = crate::store::users::username_key(username);
        let hashing = self
            .hashing
            .reserve(&address, clock, self.wait)
            .await
            .map_err(|r| Throttled::new(r, Why::InProgress))?;
        if let Some(id) = device.and_then(|d| self.trusted_device(d, &name, clock.now())) {
            // A device past its own limit is treated as untrusted (OWASP).
            if let Ok(account) = self.devices.reserve(id, clock, self.wait).await {
                return Ok(LoginAttempt {
                    _hashing: hashing,
                    address: None,
                    account,
                    name,
                });
            }
        }
        let address = self
            .addresses
            .reserve(&address, clock, self.wait)
            .await
            .map_err(|r| Throttled::new(r, Why::Address))?;
        let account = self
            .usernames
            .reserve(&name, clock, self.wait)
            .await
            .map_err(|r| Throttled::new(r, Why::Username))?;
        Ok(LoginAttempt {
            _hashing: hashing,
            address: Some(address),
            account,
            name,
        })
    }
}

/// A sign-in attempt settled by its password check.
pub struct Settled<T> {
    /// What the check answered.
    pub result: Result<T, OAuthError>,
    /// The username (normalised) when this failure reached its limit: its attempts are
    /// delayed from now on.
    pub limited: Option<String>,
}

/// Settles a sign-in attempt by the outcome of the password check: a right password
/// forgets the username's (or device's) failures, a wrong one counts against it and the
/// address, anything else (never evaluated) is given back.
fn settle_login<T>(
    attempt: LoginAttempt,
    result: &Result<T, OAuthError>,
    clock: &Clock,
) -> Option<String> {
    match result {
        // A right password for a user that changed meanwhile is no guess.
        Ok(_) | Err(OAuthError::AccountChanged) => attempt.account.succeeded(),
        Err(OAuthError::InvalidGrant(_)) => {
            // Only a failure is timed: a success or an unevaluated attempt reads no clock.
            let now = clock.instant();
            if let Some(address) = attempt.address {
                address.failed(now);
                if attempt.account.failed(now) {
                    return Some(attempt.name);
                }
            } else {
                attempt.account.failed(now);
            }
        }
        Err(_) => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Layers;

    /// A throttle that refuses at once (no wait) after `max` failures.
    fn throttle(max: &str) -> Throttle {
        let mut layers = Layers::default();
        layers.apply_env(|k| match k {
            "TESSERA_LOGIN_MAX_FAILURES" => Some(max.into()),
            "TESSERA_LOGIN_WAIT" => Some("0".into()),
            _ => None,
        });
        Throttle::new(&layers.build().expect("config"), [7; 32])
    }

    const PEER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const WRONG: OAuthError = OAuthError::InvalidGrant("invalid username or password");

    #[tokio::test]
    async fn a_sign_in_is_reserved_checked_then_settled() {
        let (t, clock) = (throttle("2"), Clock::default());
        let login =
            |result: Result<(), OAuthError>| t.login(&clock, "Alice", PEER, None, async { result });
        let first = login(Err(WRONG)).await.expect("allowed");
        assert!(matches!(first.result, Err(OAuthError::InvalidGrant(_))));
        assert_eq!(first.limited, None, "one failure of two");
        // A right password forgets the username's failures: two more are allowed.
        assert!(login(Ok(())).await.expect("allowed").result.is_ok());
        assert_eq!(login(Err(WRONG)).await.expect("allowed").limited, None);
        let last = login(Err(WRONG)).await.expect("allowed");
        assert_eq!(
            last.limited.as_deref(),
            Some("alice"),
            "the limit, by the normalised name"
        );
        // Past the limit the password is not checked at all.
        let mut checked = false;
        let refused = t
            .login(&clock, "alice", PEER, None, async {
                checked = true;
                Ok(())
            })
            .await
            .err()
            .expect("throttled");
        assert_eq!(refused.why, Why::Username);
        assert!(!checked, "refused before the password is evaluated");
    }

    #[tokio::test]
    async fn an_account_changed_or_unevaluated_sign_in_is_no_failure() {
        let (t, clock) = (throttle("1"), Clock::default());
        let changed = t
            .login(&clock, "bob", PEER, None, async {
                Err::<(), _>(OAuthError::AccountChanged)
            })
            .await
            .expect("allowed");
        assert_eq!(changed.limited, None);
        let busy = OAuthError::Busy { retry_after: 1 };
        let unevaluated = t.login(&clock, "bob", PEER, None, async { Err::<(), _>(busy) });
        assert_eq!(unevaluated.await.expect("allowed").limited, None);
        // Still a first failure (the limit is one): neither of the above counted.
        let wrong = t.login(&clock, "bob", PEER, None, async { Err::<(), _>(WRONG) });
        assert_eq!(
            wrong.await.expect("allowed").limited.as_deref(),
            Some("bob")
        );
    }
}
