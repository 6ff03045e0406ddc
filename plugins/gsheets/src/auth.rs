//! A service account's access token: Google's OAuth 2.0 JWT bearer flow (RFC 7523).
//!
//! The key file's PKCS#8 PEM private key signs (RS256) a JWT whose issuer is the account's
//! email, whose audience is `token_uri` and whose scope is the Sheets API's; `token_uri`
//! exchanges it for an access token, kept until shortly before it expires. Neither the key
//! nor the token is ever formatted into a message, a log record or `Debug` output.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use plugboard_api::PluginError;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

use crate::http::{Http, one_line};

/// What the token is for: reading and writing spreadsheets.
pub(crate) const SCOPE: &str = "https://www.googleapis.com/auth/spreadsheets";
/// How long an assertion is valid; Google takes at most an hour.
const ASSERTION_LIFETIME: u64 = 3600;
/// The grant type of the exchange.
const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A token is renewed this long before it expires (less for a token that lives less than
/// ten times this: then a tenth of its life).
const RENEW_MARGIN: Duration = Duration::from_secs(60);

/// A service account: its email, its key, and its current access token.
pub(crate) struct ServiceAccount {
    pub email: String,
    key: RsaKeyPair,
    key_id: Option<String>,
    token_uri: String,
    token: Mutex<Option<Token>>,
}

struct Token {
    value: String,
    renew_at: Instant,
}

impl ServiceAccount {
    /// Parses the PEM key (never quoting it in an error).
    pub fn new(
        email: String,
        private_key: &str,
        key_id: Option<String>,
        token_uri: String,
    ) -> Result<Self, PluginError> {
        let der = pem_der(private_key).ok_or_else(|| {
            PluginError::config(format!(
                "`private_key` of service account {email}: not a PEM private key \
                 (-----BEGIN PRIVATE KEY----- …, as in the key file)"
            ))
        })?;
        let key = RsaKeyPair::from_pkcs8(&der).map_err(|e| {
            PluginError::config(format!(
                "`private_key` of service account {email}: not a PKCS#8 RSA key ({e})"
            ))
        })?;
        Ok(Self {
            email,
            key,
            key_id,
            token_uri,
            token: Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a new one from `token_uri`.
    pub fn token(&self, http: &Http) -> Result<String, PluginError> {
        let mut slot = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(t) = slot.as_ref()
            && Instant::now() < t.renew_at
        {
            return Ok(t.value.clone());
        }
        *slot = None;
        let fresh = self.exchange(http)?;
        let value = fresh.value.clone();
        *slot = Some(fresh);
        Ok(value)
    }

    /// Drops `token` if it is still the cached one (the API refused it).
    pub fn forget(&self, token: &str) {
        let mut slot = self.token.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|t| t.value == token) {
            *slot = None;
        }
    }

    fn exchange(&self, http: &Http) -> Result<Token, PluginError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let assertion = self.assertion(now)?;
        let asked = Instant::now();
        let reply = http.post_form(
            &self.token_uri,
            &[("grant_type", GRANT_TYPE), ("assertion", &assertion)],
        )?;
        let json: serde_json::Value = serde_json::from_str(&reply.body).unwrap_or_default();
        if !reply.ok() {
            // Google's OAuth errors: {"error": "invalid_grant", "error_description": "…"}.
            let code = json["error"].as_str().unwrap_or("");
            let description = json["error_description"].as_str().unwrap_or("");
            let why = match (code, description) {
                ("", "") => format!("HTTP {}", reply.status),
                (c, "") => format!("HTTP {}: {c}", reply.status),
                (c, d) => format!("HTTP {}: {c}: {}", reply.status, one_line(d)),
            };
            let message = format!(
                "the token endpoint refused service account {}: {why}",
                self.email
            );
            return Err(match reply.status {
                429 | 500.. => PluginError::connect(message).retryable(),
                _ => PluginError::auth(message),
            });
        }
        let (Some(value), expires_in) =
            (json["access_token"].as_str(), json["expires_in"].as_u64())
        else {
            return Err(PluginError::auth(format!(
                "the token endpoint gave service account {} no access_token (HTTP {})",
                self.email, reply.status
            )));
        };
        let lifetime = Duration::from_secs(expires_in.unwrap_or(3600));
        let margin = RENEW_MARGIN.min(lifetime / 10);
        plugboard_api::log::debug!(
            "access token for service account {} obtained, valid for {}s",
            self.email,
            lifetime.as_secs()
        );
        Ok(Token {
            value: value.to_owned(),
            renew_at: asked + lifetime - margin,
        })
    }

    /// The signed JWT: `base64url(header).base64url(claims).base64url(RS256 signature)`.
    fn assertion(&self, now: u64) -> Result<String, PluginError> {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(kid) = &self.key_id {
            header["kid"] = kid.clone().into();
        }
        let claims = serde_json::json!({
            "iss": self.email,
            "scope": SCOPE,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
        });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signed.as_bytes(),
                &mut signature,
            )
            .map_err(|_| {
                PluginError::internal(format!(
                    "signing the token request of service account {} failed",
                    self.email
                ))
            })?;
        Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

/// The DER bytes of a PEM `PRIVATE KEY` block. Keys pasted with literal `\n` (as JSON
/// writes them, in an environment variable) are taken too.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    let pem = pem.replace("\\n", "\n");
    let body = pem
        .split("-----BEGIN PRIVATE KEY-----")
        .nth(1)?
        .split("-----END PRIVATE KEY-----")
        .next()?;
    let b64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(b64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_that_is_not_one_is_refused_without_quoting_it() {
        for key in [
            "MARKER-SECRET",
            "-----BEGIN PRIVATE KEY-----\nMARKER-SECRET\n-----END PRIVATE KEY-----\n",
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let Err(e) = ServiceAccount::new("a@b.iam".into(), key, None, "http://x/token".into())
            else {
                panic!("{key:?} was taken");
            };
            assert_eq!(e.kind, plugboard_api::ErrorKind::CONFIG);
            assert!(e.message().contains("a@b.iam"), "{e}");
            assert!(!e.message().contains("MARKER"), "{e}");
            assert!(!e.message().contains("AAAA"), "{e}");
        }
    }

    #[test]
    fn pem_bodies_are_found_with_real_or_escaped_newlines() {
        let real = "-----BEGIN PRIVATE KEY-----\nAQID\n-----END PRIVATE KEY-----\n";
        assert_eq!(pem_der(real), Some(vec![1, 2, 3]));
        let escaped = "-----BEGIN PRIVATE KEY-----\\nAQID\\n-----END PRIVATE KEY-----\\n";
        assert_eq!(pem_der(escaped), Some(vec![1, 2, 3]));
        assert_eq!(pem_der("AQID"), None);
    }
}
