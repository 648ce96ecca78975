//! JWT bearer tokens (`jsonwebtoken`): signed with a shared secret (`JWT_SECRET`, the
//! HMAC algorithms) or by the holder of a private key whose public half is configured
//! (`JWT_PUBLIC_KEY_FILE`, the algorithms of the key's type). A verifier accepts only
//! its key's family: never `none`, never HMAC with a public key as the secret.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{DecodingKey, Validation};
use serde::Deserialize;
use thiserror::Error;

use super::{Grant, Invalid};

/// Clock difference allowed between the token's issuer and this host, for `exp` and
/// `nbf`.
pub const LEEWAY_SECONDS: u64 = 30;

/// A `JWT_PUBLIC_KEY_FILE` whose content cannot be used.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum JwtKeyError {
    #[error("holds a private key; give the public key (openssl pkey -in KEY -pubout)")]
    Private,
    #[error("is not an RSA, EC (P-256, P-384) or Ed25519 public key in PEM")]
    NotAPublicKey,
}

/// Checks tokens against one key.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    /// What the start-up log says: the algorithms and the claims checked.
    description: String,
}

/// The claims read besides those `jsonwebtoken` checks: the scopes, as OAuth's
/// space-separated `scope` or a `scopes` list (either claim in either form).
#[derive(Deserialize)]
struct ScopeClaims {
    scope: Option<ScopeList>,
    scopes: Option<ScopeList>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ScopeList {
    Words(String),
    List(Vec<String>),
}

impl ScopeList {
    fn grant(&self) -> Grant {
        match self {
            ScopeList::Words(words) => Grant::from_words(words.split_ascii_whitespace()),
            ScopeList::List(list) => Grant::from_words(list.iter().map(String::as_str)),
        }
    }
}

impl JwtVerifier {
    /// Tokens signed with `secret` (HS256, HS384, HS512).
    pub fn hmac(secret: &[u8], audience: Option<&str>, issuer: Option<&str>) -> JwtVerifier {
        JwtVerifier::new(
            DecodingKey::from_secret(secret),
            "shared secret",
            audience,
            issuer,
        )
    }

    /// Tokens signed by the private half of `pem`: RS* and PS* for an RSA key, ES256 or
    /// ES384 for an EC key, EdDSA for an Ed25519 key.
    pub fn public_key(
        pem: &[u8],
        audience: Option<&str>,
        issuer: Option<&str>,
    ) -> Result<JwtVerifier, JwtKeyError> {
        if String::from_utf8_lossy(pem).contains("PRIVATE KEY-----") {
            return Err(JwtKeyError::Private);
        }
        let (key, kind) = if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
            (key, "RSA public key")
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            (key, "EC public key")
        } else if let Ok(key) = DecodingKey::from_ed_pem(pem) {
            (key, "Ed25519 public key")
        } else {
            return Err(JwtKeyError::NotAPublicKey);
        };
        Ok(JwtVerifier::new(key, kind, audience, issuer))
    }

    fn new(
        key: DecodingKey,
        kind: &str,
        audience: Option<&str>,
        issuer: Option<&str>,
    ) -> JwtVerifier {
        let family = key.family();
        let mut validation = Validation::new_for_family(family);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // A configured audience or issuer must be in the token, not only match when
        // present (jsonwebtoken's default).
        let mut required = vec!["exp"];
        let mut checked = vec!["exp", "nbf"];
        if let Some(audience) = audience {
            validation.set_audience(&[audience]);
            required.push("aud");
            checked.push("aud");
        }
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
            checked.push("iss");
        }
        validation.set_required_spec_claims(&required);
        let algorithms: Vec<String> = family
            .algorithms()
            .iter()
            .map(|a| format!("{a:?}"))
            .collect();
        let description = format!(
            "JWT ({}, {kind}; {} checked, {LEEWAY_SECONDS} s leeway)",
            algorithms.join("/"),
            checked.join(", ")
        );
        JwtVerifier {
            key,
            validation,
            description,
        }
    }

    pub fn describe(&self) -> String {
        self.description.clone()
    }

    /// The grant of a valid token: its signature, algorithm, `exp`, `nbf` and, when
    /// configured, `aud` and `iss` all checked.
    pub fn verify(&self, token: &str) -> Result<Grant, Invalid> {
        let data = jsonwebtoken::decode::<ScopeClaims>(token, &self.key, &self.validation)
            .map_err(|e| invalid(e.kind()))?;
        let claims = data.claims;
        let grant = [claims.scope, claims.scopes]
            .iter()
            .flatten()
            .fold(Grant::NONE, |grant, list| grant.with(list.grant()));
        Ok(grant)
    }
}

/// Whether a credential has the shape of a JWT (three dot-separated parts); an API key
/// never does.
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.bytes().filter(|&b| b == b'.').count() == 2
}

fn invalid(kind: &ErrorKind) -> Invalid {
    match kind {
        ErrorKind::ExpiredSignature => Invalid::Expired,
        ErrorKind::ImmatureSignature => Invalid::NotYetValid,
        ErrorKind::InvalidAudience => Invalid::Audience,
        ErrorKind::InvalidIssuer => Invalid::Issuer,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => Invalid::Algorithm,
        ErrorKind::InvalidSignature
        | ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_) => Invalid::Signature,
        ErrorKind::MissingRequiredClaim(_) => Invalid::MissingClaim,
        _ => Invalid::Malformed,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jsonwebtoken::{Algorithm, AlgorithmFamily, EncodingKey, Header};
    use serde_json::{json, Value};

    use super::*;
    use crate::auth::Scope;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
    /// Public keys only (made with `openssl genpkey` and `openssl pkey -pubout`).
    const EC_P256: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEA8BtIQ9tF4UMwWG4f7X8RY06+tb2
+z4mGpsQEpeUMEBGKFtqY+J02aTmbkDtMFF80LhcsTAM37u8c77QyspTsg==
-----END PUBLIC KEY-----
";
    const RSA_1024: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDBGhzUHnOVQ61sghyfH4dXnNZQ
Q6aQe67uuRqzJkzIN3xNhl9Q+MHX6PpZta5vnOPovjB0XTgZJmdzzlbXXEkVB05/
+NmrOgkthh5R/S+RS2RC8izah6Tlc4M35O0d8/s5VSkySPgtpG41hwaIxlKYnZBM
wyVp/9UG0z84Dr4T9QIDAQAB
-----END PUBLIC KEY-----
";
    const ED25519: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAsJFoinajCSUmvB5alb+T4o6MtoKfzOkiVIwWYG1JSdM=
-----END PUBLIC KEY-----
";

    pub fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    pub fn hs256(secret: &[u8], claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    /// A token with any header, unsigned or signed with nothing real.
    fn forged(header: Value, claims: Value, signature: &str) -> String {
        let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.{signature}", part(&header), part(&claims))
    }

    fn valid(extra: Value) -> Value {
        let mut claims = json!({"exp": now() + 300, "scope": "read"});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    }

    #[test]
    fn a_valid_token_grants_its_scopes_in_either_claim_and_form() {
        let jwt = JwtVerifier::hmac(SECRET, None, None);
        let read = Grant::of(Scope::Read);
        let control = Grant::of(Scope::Control);
        for (claims, grant) in [
            (json!({"scope": "openid read"}), read),
            (json!({"scope": "read control"}), read.with(control)),
            (json!({"scope": ["control"]}), control),
            (json!({"scopes": ["read", "profile"]}), read),
            (json!({"scopes": "control"}), control),
            (json!({"scope": "profile"}), Grant::NONE),
        ] {
            let mut claims = claims;
            claims["exp"] = json!(now() + 60);
            assert_eq!(
                jwt.verify(&hs256(SECRET, claims.clone())),
                Ok(grant),
                "{claims}"
            );
        }
        let no_scope = hs256(SECRET, json!({"exp": now() + 60}));
        assert_eq!(jwt.verify(&no_scope), Ok(Grant::NONE));
        let odd_scope = hs256(SECRET, json!({"exp": now() + 60, "scope": 7}));
        assert_eq!(jwt.verify(&odd_scope), Err(Invalid::Malformed));
    }

    #[test]
    fn time_claims_are_checked_with_the_leeway() {
        let jwt = JwtVerifier::hmac(SECRET, None, None);
        let leeway = LEEWAY_SECONDS as i64;
        let at = |claims: Value| jwt.verify(&hs256(SECRET, claims));
        assert_eq!(at(json!({"scope": "read"})), Err(Invalid::MissingClaim));
        assert_eq!(
            at(valid(json!({"exp": now() - leeway - 5}))),
            Err(Invalid::Expired)
        );
        assert!(at(valid(json!({"exp": now() - leeway + 5}))).is_ok());
        assert_eq!(
            at(valid(json!({"nbf": now() + leeway + 5}))),
            Err(Invalid::NotYetValid)
        );
        assert!(at(valid(json!({"nbf": now() + leeway - 5}))).is_ok());
        assert_eq!(
            at(valid(json!({"exp": "tomorrow"}))),
            Err(Invalid::MissingClaim)
        );
    }

    #[test]
    fn a_configured_audience_and_issuer_must_be_in_the_token() {
        let jwt = JwtVerifier::hmac(SECRET, Some("cameras"), Some("https://idp.example"));
        let at = |claims: Value| jwt.verify(&hs256(SECRET, claims));
        let both = json!({"aud": "cameras", "iss": "https://idp.example"});
        assert!(at(valid(both)).is_ok());
        let listed = json!({"aud": ["other", "cameras"], "iss": "https://idp.example"});
        assert!(at(valid(listed)).is_ok());
        let wrong_aud = json!({"aud": "billing", "iss": "https://idp.example"});
        assert_eq!(at(valid(wrong_aud)), Err(Invalid::Audience));
        let wrong_iss = json!({"aud": "cameras", "iss": "https://evil.example"});
        assert_eq!(at(valid(wrong_iss)), Err(Invalid::Issuer));
        assert_eq!(
            at(valid(json!({"iss": "https://idp.example"}))),
            Err(Invalid::MissingClaim)
        );
        assert_eq!(
            at(valid(json!({"aud": "cameras"}))),
            Err(Invalid::MissingClaim)
        );
        // Without a configured audience, a token meant for an audience is not for us.
        let open = JwtVerifier::hmac(SECRET, None, None);
        assert_eq!(
            open.verify(&hs256(SECRET, valid(json!({"aud": "billing"})))),
            Err(Invalid::Audience)
        );
    }

    #[test]
    fn signatures_and_algorithms_are_checked() {
        let jwt = JwtVerifier::hmac(SECRET, None, None);
        let other = hs256(b"another secret, also thirty-two bytes", valid(json!({})));
        assert_eq!(jwt.verify(&other), Err(Invalid::Signature));
        let none = forged(json!({"alg": "none", "typ": "JWT"}), valid(json!({})), "");
        assert!(jwt.verify(&none).is_err());
        let rs = forged(json!({"alg": "RS256"}), valid(json!({})), "c2ln");
        assert_eq!(jwt.verify(&rs), Err(Invalid::Algorithm));
        assert_eq!(jwt.verify("a.b.c"), Err(Invalid::Malformed));
        assert_eq!(jwt.verify(""), Err(Invalid::Malformed));
    }

    #[test]
    fn a_public_key_picks_its_family_and_never_hmac() {
        for (pem, family, accepted) in [
            (EC_P256, AlgorithmFamily::Ec, Algorithm::ES256),
            (RSA_1024, AlgorithmFamily::Rsa, Algorithm::RS256),
            (ED25519, AlgorithmFamily::Ed, Algorithm::EdDSA),
        ] {
            let jwt = JwtVerifier::public_key(pem.as_bytes(), None, None).unwrap();
            assert_eq!(jwt.key.family(), family);
            let algorithms = &jwt.validation.algorithms;
            assert!(algorithms.contains(&accepted));
            for hmac in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
                assert!(!algorithms.contains(&hmac));
            }
            // The classic confusion: HS256 with the public key's PEM as the secret.
            let confused = hs256(pem.as_bytes(), valid(json!({"scope": "control"})));
            assert_eq!(jwt.verify(&confused), Err(Invalid::Algorithm));
            let none = forged(json!({"alg": "none"}), valid(json!({})), "");
            assert!(jwt.verify(&none).is_err());
        }
        assert!(JwtVerifier::public_key(EC_P256.as_bytes(), None, None)
            .unwrap()
            .describe()
            .starts_with("JWT (ES256/ES384, EC public key; exp, nbf checked"));
    }

    #[test]
    fn a_private_key_or_garbage_is_refused() {
        let private =
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n";
        assert_eq!(
            JwtVerifier::public_key(private.as_bytes(), None, None).err(),
            Some(JwtKeyError::Private)
        );
        assert_eq!(
            JwtVerifier::public_key(b"not a key", None, None).err(),
            Some(JwtKeyError::NotAPublicKey)
        );
    }

    #[test]
    fn only_three_part_credentials_look_like_tokens() {
        assert!(looks_like_jwt("a.b.c"));
        assert!(!looks_like_jwt("0123456789abcdef"));
        assert!(!looks_like_jwt("a.b"));
        assert!(!looks_like_jwt("a.b.c.d"));
    }
}
