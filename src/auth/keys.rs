//! Static API keys (`API_KEYS`, `API_KEYS_FILE`): `key:scope` entries, kept only as
//! SHA-256 digests and compared in constant time.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};
use thiserror::Error;

use super::{Grant, Scope};

/// Shorter keys are refused: a key is a random secret, not a password.
pub const MIN_KEY_LENGTH: usize = 16;

/// The characters of a key: those of hex, base64 and base64url, all safe in a header
/// and in a cookie.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~+/=".contains(c)
}

/// A `key:scope` entry that cannot be used. It never holds the key.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{place} {number}: {problem}")]
pub struct KeyListError {
    /// `entry` (of a comma-separated list) or `line` (of a file).
    pub place: &'static str,
    /// Counted from 1.
    pub number: usize,
    pub problem: String,
}

#[derive(Clone)]
struct Entry {
    digest: [u8; 32],
    grant: Grant,
}

/// The configured keys. A key listed twice has both scopes.
#[derive(Default, Clone)]
pub struct ApiKeys {
    entries: Vec<Entry>,
}

impl ApiKeys {
    /// `key:scope,key:scope` (the form of `API_KEYS`).
    pub fn parse_list(text: &str) -> Result<ApiKeys, KeyListError> {
        let entries = text.split(',').enumerate().map(|(i, e)| (i + 1, e.trim()));
        ApiKeys::parse_entries("entry", entries, true)
    }

    /// One `key:scope` a line; empty lines and lines starting with `#` are skipped
    /// (the form of `API_KEYS_FILE`).
    pub fn parse_file(text: &str) -> Result<ApiKeys, KeyListError> {
        let entries = text
            .lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'));
        ApiKeys::parse_entries("line", entries, false)
    }

    fn parse_entries<'a>(
        place: &'static str,
        entries: impl Iterator<Item = (usize, &'a str)>,
        empty_is_an_entry: bool,
    ) -> Result<ApiKeys, KeyListError> {
        let mut keys = ApiKeys::default();
        for (number, entry) in entries {
            let fail = |problem: String| KeyListError {
                place,
                number,
                problem,
            };
            if entry.is_empty() && !empty_is_an_entry {
                continue;
            }
            let (key, scope) = entry
                .rsplit_once(':')
                .map(|(k, s)| (k.trim(), s.trim()))
                .ok_or_else(|| fail("expected key:scope, scope read or control".into()))?;
            let scope = Scope::parse(scope).ok_or_else(|| {
                fail(format!(
                    "unknown scope {scope:?} (expected read or control)"
                ))
            })?;
            if key.chars().count() < MIN_KEY_LENGTH {
                return Err(fail(format!(
                    "the key is shorter than {MIN_KEY_LENGTH} characters"
                )));
            }
            if !key.chars().all(is_key_char) {
                return Err(fail(
                    "the key has characters other than A-Z a-z 0-9 - . _ ~ + / =".into(),
                ));
            }
            keys.entries.push(Entry {
                digest: Sha256::digest(key.as_bytes()).into(),
                grant: Grant::of(scope),
            });
        }
        Ok(keys)
    }

    pub fn extend(&mut self, other: ApiKeys) {
        self.entries.extend(other.entries);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Distinct keys (a key listed with two scopes counts once).
    pub fn len(&self) -> usize {
        let mut digests: Vec<&[u8; 32]> = self.entries.iter().map(|e| &e.digest).collect();
        digests.sort_unstable();
        digests.dedup();
        digests.len()
    }

    /// The grant of `candidate` when it is a configured key. The candidate's digest is
    /// compared with every entry's, each comparison in constant time and without
    /// stopping at a match, so the time taken says neither how close a guess came nor
    /// which key matched; comparing digests also hides the keys' lengths.
    pub fn lookup(&self, candidate: &str) -> Option<Grant> {
        let digest: [u8; 32] = Sha256::digest(candidate.as_bytes()).into();
        let mut found = Choice::from(0);
        let mut read = Choice::from(0);
        let mut control = Choice::from(0);
        for entry in &self.entries {
            let same = entry.digest.ct_eq(&digest);
            found |= same;
            read |= same & Choice::from(u8::from(entry.grant.read));
            control |= same & Choice::from(u8::from(entry.grant.control));
        }
        bool::from(found).then(|| Grant {
            read: read.into(),
            control: control.into(),
        })
    }
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeys({} keys)", self.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaa";
    const B: &str = "0123456789ABCDEF+/=_-.~";

    #[test]
    fn a_list_of_keys_with_scopes() {
        let keys = ApiKeys::parse_list(&format!(" {A}:read , {B}:control")).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.lookup(A), Some(Grant::of(Scope::Read)));
        assert_eq!(keys.lookup(B), Some(Grant::of(Scope::Control)));
        assert_eq!(keys.lookup("aaaaaaaaaaaaaaaaaaab"), None);
        assert_eq!(keys.lookup(&A[1..]), None);
        assert_eq!(keys.lookup(""), None);
    }

    #[test]
    fn a_key_listed_twice_has_both_scopes() {
        let keys = ApiKeys::parse_list(&format!("{A}:read,{A}:control")).unwrap();
        assert_eq!(keys.len(), 1);
        let grant = keys.lookup(A).unwrap();
        assert_eq!(
            grant,
            Grant::of(Scope::Read).with(Grant::of(Scope::Control))
        );
    }

    #[test]
    fn a_file_of_keys_skips_comments_and_blank_lines() {
        let text = format!("# operators\n\n  {A}:control\n# dashboards\n{B}:read\n");
        let keys = ApiKeys::parse_file(&text).unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys.lookup(A), Some(Grant::of(Scope::Control)));
        assert!(ApiKeys::parse_file("# nothing yet\n").unwrap().is_empty());
    }

    #[test]
    fn bad_entries_say_where_and_why_but_never_the_key() {
        let cases = [
            (format!("{A}:read,{B}"), "entry 2: expected key:scope"),
            (format!("{A}:admin"), "entry 1: unknown scope \"admin\""),
            (
                "short:read".to_owned(),
                "entry 1: the key is shorter than 16",
            ),
            (format!("{A}:read,,{B}:read"), "entry 2: expected key:scope"),
            (format!("{A}\"x:read"), "entry 1: the key has characters"),
            (format!("{A} {A}:read"), "entry 1: the key has characters"),
        ];
        for (text, expected) in cases {
            let error = ApiKeys::parse_list(&text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text}: {error}");
            assert!(!error.contains(A) && !error.contains(B), "{error}");
        }
        let error = ApiKeys::parse_file(&format!("# keys\n{A}:read\n{B}:write\n")).unwrap_err();
        assert_eq!(
            error.to_string(),
            "line 3: unknown scope \"write\" (expected read or control)"
        );
    }

    #[test]
    fn keys_are_extended_across_sources() {
        let mut keys = ApiKeys::parse_list(&format!("{A}:read")).unwrap();
        keys.extend(ApiKeys::parse_file(&format!("{B}:control")).unwrap());
        assert_eq!(keys.len(), 2);
        assert!(keys.lookup(B).is_some());
    }
}
