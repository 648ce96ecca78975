//! HTTPS: the certificate chain and private key of `TLS_CERT_FILE` / `TLS_KEY_FILE`
//! read into a rustls server configuration (the `ring` provider, TLS 1.2 and 1.3). Read
//! once before the daemon starts anything, so that a bad file is a one-line start error.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::config::TlsFiles;

/// The server configuration, or why the files cannot serve HTTPS (one line, naming
/// the variable and the file).
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, String> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| pem_problem("TLS_CERT_FILE", &files.cert, "certificate", e))?;
    if certs.is_empty() {
        return Err(pem_problem(
            "TLS_CERT_FILE",
            &files.cert,
            "certificate",
            pem::Error::NoItemsFound,
        ));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| pem_problem("TLS_KEY_FILE", &files.key, "private key", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS cannot be set up: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(_) => "it is not the certificate's key".to_owned(),
                other => other.to_string(),
            };
            format!(
                "TLS_KEY_FILE {:?} cannot serve TLS_CERT_FILE {:?}: {why}",
                files.key, files.cert
            )
        })?;
    Ok(config)
}

fn pem_problem(variable: &str, path: &Path, what: &str, error: pem::Error) -> String {
    let why = match error {
        pem::Error::Io(e) => format!("cannot be read: {e}"),
        pem::Error::NoItemsFound => format!("holds no PEM {what}"),
        // Its other messages show bytes as numbers.
        _ => format!("is not a valid PEM {what} file"),
    };
    format!("{variable} {path:?} {why}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(cert: &Path, key: &Path) -> TlsFiles {
        TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
        }
    }

    #[test]
    fn missing_and_empty_files_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let err = server_config(&files(&missing, &missing)).unwrap_err();
        assert!(
            err.starts_with("TLS_CERT_FILE") && err.contains("cannot be read"),
            "{err}"
        );
        let err = server_config(&files(&empty, &empty)).unwrap_err();
        assert!(
            err.starts_with("TLS_CERT_FILE") && err.contains("no PEM certificate"),
            "{err}"
        );
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = server_config(&files(&garbage, &empty)).unwrap_err();
        assert!(err.contains("not a valid PEM certificate"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
