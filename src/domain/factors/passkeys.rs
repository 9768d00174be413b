//! Passkeys (WebAuthn Level 3) with webauthn_rp: registration from the account page,
//! sign-in with a discoverable credential (alone, or as the second step after a
//! password). The relying party id is the issuer's host and the one allowed origin the
//! issuer's origin. A ceremony's state waits in the database until its answer comes
//! (single use, five minutes); a sign counter that goes back is a cloned authenticator.

use std::borrow::Cow;

use serde::Deserialize;
use webauthn_rp::bin::{Decode, Encode};
use webauthn_rp::request::auth::{
    AuthenticationVerificationOptions, DiscoverableCredentialRequestOptions,
    SignatureCounterEnforcement,
};
use webauthn_rp::request::register::{
    CredProtect, PublicKeyCredentialUserEntity, RegistrationVerificationOptions, UserHandle16,
    Username,
};
use webauthn_rp::request::{
    AsciiDomain, PublicKeyCredentialDescriptor, RpId, TimedCeremony, UserVerificationRequirement,
};
use webauthn_rp::response::auth::error::AuthCeremonyErr;
use webauthn_rp::response::register::{CompressedPubKey, DynamicState, StaticState};
use webauthn_rp::response::{AuthTransports, CredentialId, Origin};
use webauthn_rp::{
    AuthenticatedCredential, DiscoverableAuthentication16, DiscoverableAuthenticationServerState,
    PublicKeyCredentialCreationOptions, Registration, RegistrationServerState,
};

use super::{Factors, clean_name_or};
use crate::store::passkeys::PasskeyRow;
use crate::store::{self, StoreError};

/// How long a ceremony's challenge may be answered, in seconds (the browser's timeout
/// is the same five minutes).
pub const CEREMONY_SECS: i64 = 300;
/// The `kind` of a registration ceremony.
const REGISTER: &str = "register";
/// The `kind` of a sign-in ceremony.
const AUTHENTICATE: &str = "authenticate";
/// The name a passkey gets when the user gives none.
pub const DEFAULT_NAME: &str = "Passkey";

/// Why a passkey ceremony failed; each is the browser's fault or the user's (a 4xx),
/// except [`PasskeyError::Store`].
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The issuer's host is not a domain name (WebAuthn refuses IP addresses as RP ids).
    #[error("passkeys need an issuer with a domain name")]
    Unavailable,
    /// The answer is not a WebAuthn credential as JSON.
    #[error("the passkey's answer is malformed")]
    Malformed,
    /// Its challenge was never issued, was used already, or expired.
    #[error("the challenge is unknown, used or expired")]
    UnknownChallenge,
    /// No registered passkey has this credential id.
    #[error("unknown passkey")]
    UnknownPasskey,
    /// The sign counter did not grow: two authenticators hold the key.
    #[error("the sign counter went back: a cloned authenticator")]
    Cloned,
    /// The answer does not verify (signature, origin, RP id, flags).
    #[error("the passkey's answer does not verify")]
    Refused,
    /// The database failed, or a stored state does not decode.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A verified passkey sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asserted {
    /// The user it signs in.
    pub user_id: String,
    /// Whether the authenticator verified the user (a PIN or biometric).
    pub user_verified: bool,
}

/// The relying party as the issuer URL makes it: RP id (its host) and origin.
struct Party {
    rp_id: RpId,
    origin: String,
}

fn party(issuer: &str) -> Result<Party, PasskeyError> {
    let url = url::Url::parse(issuer).map_err(|_| PasskeyError::Unavailable)?;
    let Some(url::Host::Domain(host)) = url.host() else {
        return Err(PasskeyError::Unavailable);
    };
    let domain = AsciiDomain::try_from(host.to_string()).map_err(|_| PasskeyError::Unavailable)?;
    Ok(Party {
        rp_id: RpId::Domain(domain),
        origin: url.origin().ascii_serialization(),
    })
}

/// A user's WebAuthn user handle: their id's 16 UUID bytes (the same for every passkey
/// of the user; no personal information, as WebAuthn §14.6.1 asks).
fn user_handle(user_id: &str) -> Result<UserHandle16, PasskeyError> {
    let id = uuid::Uuid::parse_str(user_id).map_err(|_| PasskeyError::Unavailable)?;
    UserHandle16::decode(*id.as_bytes()).map_err(|_| PasskeyError::Unavailable)
}

fn corrupt(what: &str) -> PasskeyError {
    PasskeyError::Store(StoreError::Corrupt(what.into()))
}

/// Unpadded base64url, as WebAuthn's JSON carries bytes.
fn b64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()
}

/// The challenge a browser's answer carries (`clientDataJSON.challenge`), as the 16 bytes
/// the ceremony is stored under. Read before the whole answer is parsed, so that a
/// malformed answer to a real challenge still spends it.
fn challenge_of(answer: &[u8]) -> Result<[u8; 16], PasskeyError> {
    #[derive(Deserialize)]
    struct Answer {
        response: Response,
    }
    #[derive(Deserialize)]
    struct Response {
        #[serde(rename = "clientDataJSON")]
        client_data_json: String,
    }
    #[derive(Deserialize)]
    struct ClientData {
        challenge: String,
    }
    let answer: Answer = serde_json::from_slice(answer).map_err(|_| PasskeyError::Malformed)?;
    let data = b64_decode(&answer.response.client_data_json).ok_or(PasskeyError::Malformed)?;
    let data: ClientData = serde_json::from_slice(&data).map_err(|_| PasskeyError::Malformed)?;
    let bytes = b64_decode(&data.challenge).ok_or(PasskeyError::UnknownChallenge)?;
    bytes.try_into().map_err(|_| PasskeyError::UnknownChallenge)
}

/// The credential id (`rawId`) an answer names.
fn raw_id_of(answer: &[u8]) -> Option<Vec<u8>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer {
        raw_id: String,
    }
    let answer: Answer = serde_json::from_slice(answer).ok()?;
    b64_decode(&answer.raw_id)
}

/// The User Verified flag (bit 2 of the flags byte after the 32-byte RP id hash,
/// WebAuthn §6.1) of authenticator data the signature covered.
fn uv_flag(authenticator_data: &[u8]) -> bool {
    authenticator_data.get(32).is_some_and(|f| f & 0x04 != 0)
}

fn origins(p: &Party) -> [Origin<'_>; 1] {
    [Origin(Cow::Borrowed(p.origin.as_str()))]
}

impl Factors {
    /// Whether passkeys can be used here: the issuer's host is a domain name.
    pub fn passkeys_offered(&self) -> bool {
        party(&self.cfg.issuer).is_ok()
    }

    /// The user's passkeys, oldest first (never their keys).
    pub async fn passkeys(&self, user_id: &str) -> Result<Vec<super::Factor>, StoreError> {
        let rows = store::passkeys::of_user(&self.users.db.read, user_id).await?;
        Ok(rows
            .into_iter()
            .map(|p| super::Factor {
                id: p.id,
                kind: super::PASSKEY.into(),
                name: p.name,
                created_at: p.created_at,
                last_used_at: p.last_used_at,
            })
            .collect())
    }

    async fn begin_ceremony(
        &self,
        challenge: u128,
        kind: &str,
        user_id: Option<&str>,
        state: &[u8],
    ) -> Result<(), PasskeyError> {
        let now = self.users.clock.now();
        let mut tx = self.users.db.begin_plain().await?;
        let challenge = challenge.to_le_bytes();
        let expires = now + CEREMONY_SECS;
        store::passkeys::begin_ceremony(&mut tx, &challenge, kind, user_id, state, expires, now)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(())
    }

    /// Starts adding a passkey for a signed-in user: the options for
    /// `navigator.credentials.create()` as JSON (a discoverable credential with user
    /// verification; the user's passkeys excluded).
    pub async fn begin_registration(
        &self,
        user_id: &str,
        username: &str,
    ) -> Result<String, PasskeyError> {
        let p = party(&self.cfg.issuer)?;
        let handle = user_handle(user_id)?;
        let exclude = store::passkeys::of_user(&self.users.db.read, user_id)
            .await?
            .into_iter()
            .filter_map(|row| {
                Some(PublicKeyCredentialDescriptor {
                    id: CredentialId::decode(row.credential_id).ok()?,
                    transports: AuthTransports::decode(0).ok()?,
                })
            })
            .collect();
        let name = Username::try_from(username).map_err(|_| PasskeyError::Unavailable)?;
        let user = PublicKeyCredentialUserEntity {
            name,
            id: &handle,
            display_name: None,
        };
        let mut options = PublicKeyCredentialCreationOptions::passkey(&p.rp_id, user, exclude);
        // No credProtect: enforced, it refuses authenticators without CTAP 2.1 (Chromium's
        // virtual one among them); tessera reads the UV flag of every assertion instead.
        options.extensions.cred_protect = CredProtect::None;
        let (server, client) = options
            .start_ceremony()
            .map_err(|_| PasskeyError::Unavailable)?;
        let state = server.encode().map_err(|_| corrupt("registration state"))?;
        let challenge = server.sent_challenge().0;
        self.begin_ceremony(challenge, REGISTER, Some(user_id), &state)
            .await?;
        serde_json::to_string(&client).map_err(|_| corrupt("registration options"))
    }

    /// Finishes adding a passkey: checks the browser's answer against its ceremony (which
    /// it spends) and stores the credential under `name`. A credential change: the user's
    /// other sessions end (`keep` stays).
    pub async fn finish_registration(
        &self,
        user_id: &str,
        name: &str,
        answer: &[u8],
        keep: Option<&str>,
    ) -> Result<(), PasskeyError> {
        let p = party(&self.cfg.issuer)?;
        let challenge = challenge_of(answer)?;
        let now = self.users.clock.now();
        let taken =
            store::passkeys::take_ceremony(self.users.db.writer(), &challenge, REGISTER, now)
                .await?;
        let Some((Some(owner), state)) = taken else {
            return Err(PasskeyError::UnknownChallenge);
        };
        if owner != user_id {
            return Err(PasskeyError::UnknownChallenge);
        }
        let registration =
            Registration::from_json_relaxed(answer).map_err(|_| PasskeyError::Malformed)?;
        let server = RegistrationServerState::<16>::decode(&state)
            .map_err(|_| corrupt("registration state"))?;
        let origins = origins(&p);
        let options = RegistrationVerificationOptions::<_, Origin<'_>> {
            allowed_origins: &origins,
            ..Default::default()
        };
        let credential = server
            .verify(&p.rp_id, &registration, &options)
            .map_err(|_| PasskeyError::Refused)?;
        let (id, _transports, handle, static_state, dynamic_state, _metadata) =
            credential.into_parts();
        let row = PasskeyRow {
            id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.into(),
            credential_id: id.as_ref().to_vec(),
            user_handle: handle.as_ref().to_vec(),
            name: clean_name_or(name, DEFAULT_NAME),
            static_state: static_state
                .encode()
                .map_err(|_| corrupt("a passkey's public key"))?,
            dynamic_state: dynamic_state
                .encode()
                .map(|d| d.to_vec())
                .unwrap_or_default(),
            sign_count: i64::from(dynamic_state.sign_count),
            created_at: now,
            last_used_at: None,
        };
        let mut tx = self.users.db.begin().await?;
        if !store::passkeys::insert(&mut tx, &row).await? {
            return Err(PasskeyError::Refused);
        }
        self.users
            .credential_changed(tx, user_id, "passkey_added", keep)
            .await
            .map_err(|e| match e {
                super::FactorError::Store(s) => PasskeyError::Store(s),
                _ => corrupt("the user of a passkey"),
            })?;
        Ok(())
    }

    /// Starts a passkey sign-in: the options for `navigator.credentials.get()` as JSON
    /// (no `allowCredentials`: the browser offers the passkeys it holds for this site;
    /// user verification preferred).
    pub async fn begin_authentication(&self) -> Result<String, PasskeyError> {
        let p = party(&self.cfg.issuer)?;
        let mut options = DiscoverableCredentialRequestOptions::passkey(&p.rp_id);
        options.0.user_verification = UserVerificationRequirement::Preferred;
        let (server, client) = options
            .start_ceremony()
            .map_err(|_| PasskeyError::Unavailable)?;
        let state = server.encode().map_err(|_| corrupt("sign-in state"))?;
        let challenge = server.sent_challenge().0;
        self.begin_ceremony(challenge, AUTHENTICATE, None, &state)
            .await?;
        serde_json::to_string(&client).map_err(|_| corrupt("sign-in options"))
    }

    /// The user whose passkey an answer names, if any: what the login throttle counts a
    /// failed answer against, before it is checked.
    pub async fn passkey_owner(&self, answer: &[u8]) -> Result<Option<String>, StoreError> {
        let Some(raw_id) = raw_id_of(answer) else {
            return Ok(None);
        };
        let row = store::passkeys::by_credential(&self.users.db.read, &raw_id).await?;
        Ok(row.map(|r| r.user_id))
    }

    /// Finishes a passkey sign-in: spends its ceremony, checks the answer against the
    /// stored public key and sign counter, and records the use.
    pub async fn finish_authentication(&self, answer: &[u8]) -> Result<Asserted, PasskeyError> {
        let p = party(&self.cfg.issuer)?;
        let challenge = challenge_of(answer)?;
        let now = self.users.clock.now();
        let writer = self.users.db.writer();
        let taken = store::passkeys::take_ceremony(writer, &challenge, AUTHENTICATE, now).await?;
        let Some((_, state)) = taken else {
            return Err(PasskeyError::UnknownChallenge);
        };
        let raw_id = raw_id_of(answer).ok_or(PasskeyError::Malformed)?;
        let row = store::passkeys::by_credential(&self.users.db.read, &raw_id)
            .await?
            .ok_or(PasskeyError::UnknownPasskey)?;
        let auth = DiscoverableAuthentication16::from_json_relaxed(answer)
            .map_err(|_| PasskeyError::Malformed)?;
        let server = DiscoverableAuthenticationServerState::decode(&state)
            .map_err(|_| corrupt("sign-in state"))?;
        let handle = UserHandle16::decode(
            row.user_handle
                .as_slice()
                .try_into()
                .map_err(|_| corrupt("a passkey's user handle"))?,
        )
        .map_err(|_| corrupt("a passkey's user handle"))?;
        let static_state =
            StaticState::<CompressedPubKey<[u8; 32], [u8; 32], [u8; 48], Vec<u8>>>::decode(
                &row.static_state,
            )
            .map_err(|_| corrupt("a passkey's public key"))?;
        let dynamic_state = <[u8; 7]>::try_from(row.dynamic_state.as_slice())
            .ok()
            .and_then(|d| DynamicState::decode(d).ok())
            .ok_or_else(|| corrupt("a passkey's state"))?;
        let id = CredentialId::<&[u8]>::decode(row.credential_id.as_slice())
            .map_err(|_| corrupt("a passkey's id"))?;
        let mut credential = AuthenticatedCredential::new(id, &handle, static_state, dynamic_state)
            .map_err(|_| corrupt("a passkey"))?;
        let origins = origins(&p);
        let options = AuthenticationVerificationOptions::<_, Origin<'_>> {
            allowed_origins: &origins,
            sig_counter_enforcement: SignatureCounterEnforcement::Fail,
            ..Default::default()
        };
        match server.verify(&p.rp_id, &auth, &mut credential, &options) {
            Ok(_) => {}
            Err(AuthCeremonyErr::SignatureCounter) => return Err(PasskeyError::Cloned),
            Err(AuthCeremonyErr::UserHandleMismatch | AuthCeremonyErr::CredentialIdMismatch) => {
                return Err(PasskeyError::UnknownPasskey);
            }
            Err(_) => return Err(PasskeyError::Refused),
        }
        let user_verified = uv_flag(auth.response().authenticator_data());
        let dynamic = credential.dynamic_state();
        let encoded = dynamic.encode().map(|d| d.to_vec()).unwrap_or_default();
        let count = i64::from(dynamic.sign_count);
        if !store::passkeys::record_use(writer, &row.id, row.sign_count, &encoded, count, now)
            .await?
        {
            // Another sign-in with this passkey was checked against the same counter.
            return Err(PasskeyError::Cloned);
        }
        Ok(Asserted {
            user_id: row.user_id,
            user_verified,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_party_is_the_issuers_host_and_origin() {
        let p = party("http://localhost:8123").unwrap();
        assert_eq!(p.origin, "http://localhost:8123");
        assert_eq!(p.rp_id.as_ref(), "localhost");
        let p = party("https://id.example.com/").unwrap();
        assert_eq!(p.origin, "https://id.example.com");
        assert!(matches!(
            party("http://127.0.0.1:8080"),
            Err(PasskeyError::Unavailable)
        ));
    }

    #[test]
    fn the_uv_flag_is_bit_2_after_the_rp_id_hash() {
        let mut data = vec![0; 37];
        assert!(!uv_flag(&data));
        data[32] = 0x05;
        assert!(uv_flag(&data));
        assert!(!uv_flag(&[0; 10]));
    }

    #[test]
    fn a_challenge_is_read_from_the_client_data() {
        let data =
            crate::crypto::b64(br#"{"type":"webauthn.get","challenge":"AAECAwQFBgcICQoLDA0ODw"}"#);
        let answer = format!(r#"{{"response":{{"clientDataJSON":"{data}"}}}}"#);
        let expected: Vec<u8> = (0..16).collect();
        assert_eq!(challenge_of(answer.as_bytes()).unwrap().to_vec(), expected);
        assert!(matches!(challenge_of(b"{}"), Err(PasskeyError::Malformed)));
    }
}
