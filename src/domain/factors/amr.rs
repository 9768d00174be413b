//! How a user signed in: the `amr` values (RFC 8176) a sign-in collects, the `acr` it
//! reaches, and whether a request needs a second factor. Pure.

/// A password (RFC 8176 §2).
pub const PWD: &str = "pwd";
/// A one-time password: a TOTP code or a recovery code.
pub const OTP: &str = "otp";
/// More than one factor.
pub const MFA: &str = "mfa";
/// A passkey: proof of possession of a key (RFC 8176 §2 `swk`, "software-secured": tessera
/// asks for no attestation, so it cannot know a key is hardware-bound; synced passkeys are
/// not). docs/protocol.md says why not `hwk`.
pub const SWK: &str = "swk";

/// The `acr` of a sign-in with one factor.
pub const ACR_PWD: &str = "urn:tessera:acr:pwd";
/// The `acr` of a sign-in with a second factor; asking for it in `acr_values` asks for one.
pub const ACR_MFA: &str = "urn:tessera:acr:mfa";
/// What discovery lists as `acr_values_supported`.
pub const ACR_VALUES: [&str; 2] = [ACR_PWD, ACR_MFA];

/// The stored form (space-separated) as a list.
pub fn methods(stored: &str) -> Vec<String> {
    stored
        .split(' ')
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// Whether a sign-in with these methods had a second factor.
pub fn is_mfa(stored: &str) -> bool {
    stored.split(' ').any(|m| m == MFA)
}

/// The methods after a second factor `method` confirmed a sign-in made with `stored`.
pub fn with_second_factor(stored: &str, method: &str) -> String {
    let mut list = methods(stored);
    for m in [method, MFA] {
        if !list.iter().any(|x| x == m) {
            list.push(m.to_string());
        }
    }
    list.join(" ")
}

/// The methods of a sign-in with a passkey alone: `swk`, and `mfa` when the authenticator
/// verified the user (UV flag: a PIN or biometric, the second factor) as well.
pub fn passkey_alone(user_verified: bool) -> String {
    match user_verified {
        true => format!("{SWK} {MFA}"),
        false => SWK.into(),
    }
}

/// Whether these methods include a password.
pub fn has_password(stored: &str) -> bool {
    stored.split(' ').any(|m| m == PWD)
}

/// The `acr` a sign-in with these methods reached.
pub fn acr(stored: &str) -> &'static str {
    if is_mfa(stored) { ACR_MFA } else { ACR_PWD }
}

/// Whether a request must be signed in with a second factor: its client requires one,
/// or its `acr_values` (OpenID Connect Core §3.1.2.1) ask for [`ACR_MFA`]. Other values
/// are voluntary and ignored.
pub fn wants_mfa(client_requires: bool, acr_values: Option<&str>) -> bool {
    client_requires || acr_values.is_some_and(|v| v.split(' ').any(|a| a == ACR_MFA))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_factor_adds_its_method_and_mfa_once() {
        assert_eq!(with_second_factor("pwd", OTP), "pwd otp mfa");
        assert_eq!(with_second_factor("pwd otp mfa", OTP), "pwd otp mfa");
        assert!(is_mfa("pwd otp mfa") && !is_mfa("pwd"));
        assert_eq!(methods("pwd  otp"), ["pwd", "otp"]);
        assert_eq!((acr("pwd"), acr("pwd otp mfa")), (ACR_PWD, ACR_MFA));
    }

    #[test]
    fn mfa_is_wanted_by_the_client_or_by_acr_values() {
        assert!(wants_mfa(true, None));
        assert!(wants_mfa(false, Some("urn:other urn:tessera:acr:mfa")));
        assert!(!wants_mfa(false, Some(ACR_PWD)));
        assert!(!wants_mfa(false, None));
    }

    #[test]
    fn a_passkey_alone_is_mfa_only_with_user_verification() {
        assert_eq!(passkey_alone(true), "swk mfa");
        assert!(is_mfa(&passkey_alone(true)) && !is_mfa(&passkey_alone(false)));
        assert_eq!(with_second_factor("pwd", SWK), "pwd swk mfa");
        assert!(has_password("pwd swk mfa") && !has_password("swk mfa"));
    }
}
