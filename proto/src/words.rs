//! Protocol words a client is registered with: grant types and capabilities. Stored and
//! sent as their wire strings; parsed once where they come in (form, CLI, admin API, store).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

/// An OAuth grant type (RFC 6749 `grant_type`) tessera implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1, with PKCE (RFC 7636).
    AuthorizationCode,
    /// RFC 6749 §6: rotates a refresh token.
    RefreshToken,
    /// RFC 6749 §4.4: a token for the client itself.
    ClientCredentials,
    /// RFC 6749 §4.3, for first-party clients that opt in (RFC 9700 §2.4 deprecates it).
    Password,
}

impl GrantType {
    /// Every grant type, in the order discovery lists them.
    pub const ALL: [Self; 4] = [
        Self::AuthorizationCode,
        Self::Password,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
            Self::ClientCredentials => "client_credentials",
            Self::Password => "password",
        }
    }
}

/// What a confidential client may call beyond `/token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// `/introspect` (RFC 7662).
    Introspect,
    /// The whole `/events` feed with its own tokens.
    Events,
    /// Shared Signals: manage its own SSF streams and poll them (docs/protocol.md).
    Ssf,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Self; 3] = [Self::Introspect, Self::Events, Self::Ssf];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Introspect => "introspect",
            Self::Events => "events",
            Self::Ssf => "ssf",
        }
    }
}

/// A word that is none of the known ones; its message names the word and the known ones
/// (`unknown grant `implicit` (expected one of ...)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownWord {
    what: &'static str,
    word: String,
    expected: String,
}

impl fmt::Display for UnknownWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown {} `{}` (expected one of {})",
            self.what, self.word, self.expected
        )
    }
}

impl std::error::Error for UnknownWord {}

macro_rules! word {
    ($ty:ty, $what:literal) => {
        impl FromStr for $ty {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                Self::ALL
                    .into_iter()
                    .find(|w| w.as_str() == s)
                    .ok_or_else(|| UnknownWord {
                        what: $what,
                        word: s.to_string(),
                        expected: Self::ALL.map(Self::as_str).join(", "),
                    })
            }
        }

        /// From its wire name; an unknown one fails with [`UnknownWord`]'s message.
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let word = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                word.parse().map_err(serde::de::Error::custom)
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

word!(GrantType, "grant");
word!(Capability, "capability");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_parse_from_and_serialise_as_their_wire_names() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>(), Ok(g));
            assert_eq!(serde_json::to_string(&g).unwrap(), format!("\"{g}\""));
        }
        for c in Capability::ALL {
            assert_eq!(c.as_str().parse::<Capability>(), Ok(c));
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{c}\""));
        }
        assert_eq!(
            "implicit".parse::<GrantType>().unwrap_err().to_string(),
            "unknown grant `implicit` (expected one of authorization_code, password, refresh_token, client_credentials)"
        );
        assert_eq!(
            serde_json::from_str::<Vec<GrantType>>(r#"["password","refresh_token"]"#).unwrap(),
            [GrantType::Password, GrantType::RefreshToken]
        );
        assert!(serde_json::from_str::<GrantType>(r#""implicit""#).is_err());
        assert_eq!(
            "fly".parse::<Capability>().unwrap_err().to_string(),
            "unknown capability `fly` (expected one of introspect, events, ssf)"
        );
    }
}
