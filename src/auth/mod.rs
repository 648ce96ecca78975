//! Who a caller is and what it may do: static API keys and JWT bearer tokens, each
//! granting scopes. Pure verification, no HTTP: the middleware in `http/auth.rs` finds
//! the credential in a request and asks [`Authenticator::verify`] for its [`Grant`].
//! Off (every route open) until a key or a JWT key is configured.

mod jwt;
mod keys;

use std::fmt;

use thiserror::Error;

pub use jwt::{JwtKeyError, JwtVerifier, LEEWAY_SECONDS};
pub use keys::{ApiKeys, KeyListError, MIN_KEY_LENGTH};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Reads state, frames, events, metrics.
    Read,
    /// Starts and stops cameras; implies `Read`.
    Control,
}

impl Scope {
    pub fn parse(word: &str) -> Option<Scope> {
        match word {
            "read" => Some(Scope::Read),
            "control" => Some(Scope::Control),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Control => "control",
        }
    }
}

/// The scopes a valid credential carries. `control` implies `read`: whoever may start
/// and stop cameras needs to see what they do, and a dashboard needs one key, not two.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grant {
    read: bool,
    control: bool,
}

impl Grant {
    /// Valid, but with no scope this daemon knows (for example a token of another API).
    pub const NONE: Grant = Grant {
        read: false,
        control: false,
    };

    pub fn of(scope: Scope) -> Grant {
        Grant {
            read: scope == Scope::Read,
            control: scope == Scope::Control,
        }
    }

    /// The scopes named by words; words of other APIs (`openid`, `profile`) are ignored.
    pub fn from_words<'a>(words: impl IntoIterator<Item = &'a str>) -> Grant {
        words
            .into_iter()
            .filter_map(Scope::parse)
            .fold(Grant::NONE, |grant, scope| grant.with(Grant::of(scope)))
    }

    pub fn with(self, other: Grant) -> Grant {
        Grant {
            read: self.read || other.read,
            control: self.control || other.control,
        }
    }

    pub fn allows(self, needed: Scope) -> bool {
        match needed {
            Scope::Read => self.read || self.control,
            Scope::Control => self.control,
        }
    }
}

/// Where a credential came from: an `X-API-Key` header holds a key only, the others a
/// key or a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    ApiKeyHeader,
    Bearer,
    Cookie,
}

/// Why a credential is not accepted. The messages are sent to the caller: they say
/// what is wrong with a token, never which key came close.
#[derive(Debug, Clone, Copy, Error, PartialEq, Eq)]
pub enum Invalid {
    #[error("invalid API key or token")]
    Unknown,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this audience")]
    Audience,
    #[error("the token has another issuer")]
    Issuer,
    #[error("the token's algorithm is not accepted")]
    Algorithm,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token lacks a required claim (exp, or the configured aud or iss)")]
    MissingClaim,
    #[error("the token cannot be read")]
    Malformed,
}

/// The configured credentials. Its `Debug` shows counts and methods, never a secret.
#[derive(Clone, Default)]
pub struct Authenticator {
    keys: ApiKeys,
    jwt: Option<JwtVerifier>,
}

impl Authenticator {
    pub fn new(keys: ApiKeys, jwt: Option<JwtVerifier>) -> Authenticator {
        Authenticator { keys, jwt }
    }

    /// Whether any credential is configured; when not, every route is open.
    pub fn is_on(&self) -> bool {
        !self.keys.is_empty() || self.jwt.is_some()
    }

    /// The grant of a credential. Every key is compared, in constant time, whatever
    /// the credential; then, when it is no key, it is read as a token.
    pub fn verify(&self, credential: &str, carrier: Carrier) -> Result<Grant, Invalid> {
        if let Some(grant) = self.keys.lookup(credential) {
            return Ok(grant);
        }
        match &self.jwt {
            Some(jwt) if carrier != Carrier::ApiKeyHeader && jwt::looks_like_jwt(credential) => {
                jwt.verify(credential)
            }
            _ => Err(Invalid::Unknown),
        }
    }

    /// The methods in use, for the start-up log: `3 API keys, JWT (RS256 ...)`.
    pub fn describe(&self) -> String {
        let mut methods = Vec::new();
        if !self.keys.is_empty() {
            let n = self.keys.len();
            methods.push(format!("{n} API key{}", if n == 1 { "" } else { "s" }));
        }
        if let Some(jwt) = &self.jwt {
            methods.push(jwt.describe());
        }
        methods.join(", ")
    }
}

/// The credential a replica sends with its own requests to the others (the hand-over
/// of a camera after a rescale): `PEER_API_KEY`. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerCredential(String);

impl PeerCredential {
    pub fn new(credential: &str) -> PeerCredential {
        PeerCredential(credential.to_owned())
    }

    /// The value of the `Authorization` header that carries it.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Whether `authenticator` lets it start and stop cameras, as a hand-over needs.
    pub fn may_control(&self, authenticator: &Authenticator) -> bool {
        authenticator
            .verify(&self.0, Carrier::Bearer)
            .is_ok_and(|grant| grant.allows(Scope::Control))
    }
}

impl fmt::Debug for PeerCredential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PeerCredential(***)")
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("api_keys", &self.keys.len())
            .field("jwt", &self.jwt.as_ref().map(JwtVerifier::describe))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_implies_read_and_read_is_not_control() {
        let read = Grant::of(Scope::Read);
        let control = Grant::of(Scope::Control);
        assert!(read.allows(Scope::Read));
        assert!(!read.allows(Scope::Control));
        assert!(control.allows(Scope::Read));
        assert!(control.allows(Scope::Control));
        assert!(!Grant::NONE.allows(Scope::Read));
        assert_eq!(read.with(control), control.with(read));
    }

    #[test]
    fn scope_words_of_other_apis_are_ignored() {
        assert_eq!(
            Grant::from_words("openid read profile".split(' ')),
            Grant::of(Scope::Read)
        );
        assert_eq!(Grant::from_words(["control"]), Grant::of(Scope::Control));
        assert_eq!(Grant::from_words(["READ", "admin", ""]), Grant::NONE);
    }

    #[test]
    fn off_without_credentials_and_quiet_about_secrets() {
        assert!(!Authenticator::default().is_on());
        let keys = ApiKeys::parse_list("0123456789abcdef0123:control").unwrap();
        let auth = Authenticator::new(keys, None);
        assert!(auth.is_on());
        assert_eq!(auth.describe(), "1 API key");
        assert!(!format!("{auth:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn a_key_passes_any_carrier_and_a_token_not_the_key_header() {
        let keys = ApiKeys::parse_list("0123456789abcdef0123:read").unwrap();
        let secret = b"a secret of thirty-two bytes or more!";
        let jwt = JwtVerifier::hmac(secret, None, None);
        let auth = Authenticator::new(keys, Some(jwt));
        for carrier in [Carrier::ApiKeyHeader, Carrier::Bearer, Carrier::Cookie] {
            assert_eq!(
                auth.verify("0123456789abcdef0123", carrier),
                Ok(Grant::of(Scope::Read))
            );
            assert_eq!(
                auth.verify("0123456789abcdef0124", carrier),
                Err(Invalid::Unknown)
            );
        }
        let token = jwt::tests::hs256(
            secret,
            serde_json::json!({"exp": jwt::tests::now() + 60, "scope": "control"}),
        );
        assert_eq!(
            auth.verify(&token, Carrier::Bearer),
            Ok(Grant::of(Scope::Control))
        );
        assert_eq!(
            auth.verify(&token, Carrier::Cookie),
            Ok(Grant::of(Scope::Control))
        );
        assert_eq!(
            auth.verify(&token, Carrier::ApiKeyHeader),
            Err(Invalid::Unknown)
        );
    }
}
