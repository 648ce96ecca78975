//! The settings of how the API is offered to browsers and over the network: the CORS
//! origins and the TLS files. Only syntax is checked here; the TLS files are read when
//! the server is set up (`http::tls`).

use std::path::PathBuf;

use super::ConfigError;

/// The browser origins that get CORS headers (`CORS_ALLOWED_ORIGINS`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CorsOrigins {
    /// No CORS headers at all: browsers keep pages of other origins out.
    #[default]
    None,
    /// `*`: any origin may read (GET); it is answered `Access-Control-Allow-Origin: *`.
    Any,
    /// These origins exactly (`https://ui.example.com:8443`), for every route.
    Exact(Vec<String>),
}

impl CorsOrigins {
    /// `*`, or comma-separated origins; `None` when one is not an origin.
    pub fn parse(value: &str) -> Option<CorsOrigins> {
        let items: Vec<&str> = value
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        match items.as_slice() {
            [] => Some(CorsOrigins::None),
            ["*"] => Some(CorsOrigins::Any),
            _ => items
                .iter()
                .map(|item| is_origin(item).then(|| as_sent(item)))
                .collect::<Option<Vec<_>>>()
                .map(CorsOrigins::Exact),
        }
    }
}

/// The origin as a browser writes it in `Origin`: lowercase, without the scheme's
/// default port.
fn as_sent(origin: &str) -> String {
    let origin = origin.to_ascii_lowercase();
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if origin.starts_with(scheme) {
            if let Some(bare) = origin.strip_suffix(port) {
                return bare.to_owned();
            }
        }
    }
    origin
}

/// `scheme://host[:port]` as a browser sends it in `Origin`: no path, query, user or
/// trailing slash (which would never match).
fn is_origin(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once("://") else {
        return false;
    };
    let scheme_ok = !scheme.is_empty()
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let (host, port) = match rest.rsplit_once(':') {
        // An IPv6 literal's colons are inside brackets.
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.[]:".contains(c));
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
    scheme_ok && host_ok && port_ok
}

/// The certificate chain and private key the API is served with over HTTPS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TlsFiles {
    /// Both files or neither; one alone is a mistake that would silently serve plain HTTP.
    pub fn parse(cert: Option<&str>, key: Option<&str>) -> Result<Option<TlsFiles>, ConfigError> {
        match (cert, key) {
            (None, None) => Ok(None),
            (Some(cert), Some(key)) => Ok(Some(TlsFiles {
                cert: PathBuf::from(cert),
                key: PathBuf::from(key),
            })),
            (Some(_), None) => Err(ConfigError::Invalid {
                name: "TLS_KEY_FILE",
                value: String::new(),
                expected: "a PEM private key file, set together with TLS_CERT_FILE",
            }),
            (None, Some(_)) => Err(ConfigError::Invalid {
                name: "TLS_CERT_FILE",
                value: String::new(),
                expected: "a PEM certificate file, set together with TLS_KEY_FILE",
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_exact_any_or_none() {
        assert_eq!(CorsOrigins::parse(""), Some(CorsOrigins::None));
        assert_eq!(CorsOrigins::parse(" * "), Some(CorsOrigins::Any));
        assert_eq!(
            CorsOrigins::parse(
                "https://UI.example.com, http://localhost:3000,http://[::1]:8080,https://a.example:443"
            ),
            Some(CorsOrigins::Exact(vec![
                "https://ui.example.com".into(),
                "http://localhost:3000".into(),
                "http://[::1]:8080".into(),
                "https://a.example".into(),
            ]))
        );
        for bad in [
            "example.com",
            "https://example.com/",
            "https://example.com/app",
            "https://example.com:0",
            "https://example.com:99999",
            "https://user@example.com",
            "*,https://example.com",
            "https://",
            "://example.com",
        ] {
            assert_eq!(CorsOrigins::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn tls_needs_both_files() {
        assert_eq!(TlsFiles::parse(None, None), Ok(None));
        assert!(TlsFiles::parse(Some("c.pem"), Some("k.pem"))
            .unwrap()
            .is_some());
        let err = TlsFiles::parse(Some("c.pem"), None).unwrap_err();
        assert_eq!(err.variable(), "TLS_KEY_FILE");
        let err = TlsFiles::parse(None, Some("k.pem")).unwrap_err();
        assert_eq!(err.variable(), "TLS_CERT_FILE");
    }
}
