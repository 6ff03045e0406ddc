//! The TLS connector for a connection's settings, with libpq's meaning for `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey`.
//!
//! * `disable`, `allow`, `prefer`, `require` (without a root certificate): encrypted when
//!   the server offers it (or must), the certificate not checked.
//! * `verify-ca` (and `require` with `sslrootcert`, as libpq does): the chain must lead to a
//!   trusted CA; `verify-full`: and the certificate must name the host.
//! * `sslrootcert`: the CAs trusted, and only those (without it, the system's).
//! * `sslcert` + `sslkey`: the client certificate (PEM) and its key (unencrypted PKCS#8
//!   PEM). native-tls reads no encrypted key, so one is refused, naming `sslkey`, rather
//!   than sent without its passphrase (`sslpassword`).
//!
//! No error quotes a file's contents: a key file is a secret.

use std::path::Path;

use plugboard_api::PluginError;

use crate::config::{Settings, SslMode};

/// The connector the driver opens TLS sessions with.
pub fn connector(settings: &Settings) -> Result<native_tls::TlsConnector, PluginError> {
    let mut tls = native_tls::TlsConnector::builder();
    match settings.sslmode {
        SslMode::Disable | SslMode::Prefer | SslMode::Require => {
            tls.danger_accept_invalid_certs(true)
                .danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyCa => {
            tls.danger_accept_invalid_hostnames(true);
        }
        SslMode::VerifyFull => {}
    }
    if let Some(path) = &settings.sslrootcert {
        let pem = read("sslrootcert", path)?;
        let certs = native_tls::Certificate::stack_from_pem(&pem).map_err(|e| {
            PluginError::config(format!(
                "`sslrootcert`: {} is not a PEM file of certificates: {e}",
                path.display()
            ))
        })?;
        if certs.is_empty() {
            return Err(PluginError::config(format!(
                "`sslrootcert`: {} holds no PEM certificate",
                path.display()
            )));
        }
        // libpq trusts the file's CAs alone.
        tls.disable_built_in_roots(true);
        for cert in certs {
            tls.add_root_certificate(cert);
        }
    }
    if let Some((cert, key)) = &settings.client_identity {
        tls.identity(identity(cert, key)?);
    }
    tls.build()
        .map_err(|e| PluginError::config(format!("cannot set up TLS: {e}")))
}

/// A file named by `key`, read whole.
fn read(key: &str, path: &Path) -> Result<Vec<u8>, PluginError> {
    std::fs::read(path)
        .map_err(|e| PluginError::config(format!("`{key}`: cannot read {}: {e}", path.display())))
}

/// The client certificate and key, as native-tls takes them.
fn identity(cert: &Path, key: &Path) -> Result<native_tls::Identity, PluginError> {
    let cert_pem = read("sslcert", cert)?;
    let key_pem = read("sslkey", key)?;
    let key_text = String::from_utf8_lossy(&key_pem);
    let first = key_text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    // PKCS#8's `ENCRYPTED PRIVATE KEY`, or OpenSSL's traditional `Proc-Type: 4,ENCRYPTED`.
    if first.contains("ENCRYPTED") || key_text.contains("Proc-Type: 4,ENCRYPTED") {
        return Err(PluginError::config(format!(
            "`sslkey`: {} is encrypted, and this connector cannot decrypt a key \
             (`sslpassword`): decrypt it to a file only you can read \
             (`openssl pkey -in KEY -out KEY.plain`)",
            key.display()
        )));
    }
    if first != "-----BEGIN PRIVATE KEY-----" {
        return Err(PluginError::config(format!(
            "`sslkey`: {} is not an unencrypted PKCS#8 PEM key (-----BEGIN PRIVATE KEY-----); \
             convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.pk8`",
            key.display()
        )));
    }
    if !String::from_utf8_lossy(&cert_pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(PluginError::config(format!(
            "`sslcert`: {} is not a PEM certificate (-----BEGIN CERTIFICATE-----)",
            cert.display()
        )));
    }
    // Trimmed: native-tls wants the key's first line first.
    native_tls::Identity::from_pkcs8(&cert_pem, key_text.trim_start().as_bytes()).map_err(|e| {
        PluginError::config(format!(
            "`sslcert`/`sslkey`: {} and {} are not a certificate and its key: {e}",
            cert.display(),
            key.display()
        ))
    })
}
