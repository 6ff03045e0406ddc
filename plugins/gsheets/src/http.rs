//! HTTP for the connector: one blocking `ureq` agent per connection (HTTPS with rustls and
//! Mozilla's roots), answers of every status handed back as data so that Google's error
//! bodies can be read, and nothing that could carry a token in a message.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use plugboard_api::PluginError;

/// The most a response body may hold (a worksheet's values as JSON).
const BODY_LIMIT: u64 = 1 << 30;

/// What is left unescaped in a path segment or query value: RFC 3986's unreserved set.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` escaped for a URL path segment or query value.
pub(crate) fn escape(text: &str) -> String {
    utf8_percent_encode(text, COMPONENT).to_string()
}

/// A query string: `?k=v&…`, escaped.
pub(crate) fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        q.push(if i == 0 { '?' } else { '&' });
        q.push_str(&escape(k));
        q.push('=');
        q.push_str(&escape(v));
    }
    q
}

/// Whether `url` can be a base URL: `http(s)://host[:port][/path]`, no query or fragment.
pub(crate) fn check_base(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') || rest.contains(['?', '#', ' ']) {
        return Err(format!(
            "{url:?} is not a base URL (scheme://host[:port][/path])"
        ));
    }
    Ok(())
}

/// An answer: its status, content type and body text.
pub(crate) struct Reply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The connection's HTTP client.
pub(crate) struct Http {
    agent: ureq::Agent,
}

impl Http {
    pub fn new(timeout: Duration) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .user_agent(concat!("plugboard-gsheets/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent }
    }

    /// `GET url`, with `Authorization: Bearer …` when a token is given.
    pub fn get(&self, url: &str, bearer: Option<&str>) -> Result<Reply, PluginError> {
        let mut req = self.agent.get(url);
        if let Some(t) = bearer {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        finish(url, req.call())
    }

    /// `POST url` with a form body (the token exchange).
    pub fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Reply, PluginError> {
        let req = self.agent.post(url);
        finish(url, req.send_form(form.iter().copied()))
    }

    /// `PUT` or `POST` a JSON body with a bearer token.
    pub fn send_json(
        &self,
        method: &str,
        url: &str,
        bearer: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, PluginError> {
        let text = body.to_string();
        let req = match method {
            "PUT" => self.agent.put(url),
            _ => self.agent.post(url),
        }
        .header("Authorization", format!("Bearer {bearer}"))
        .content_type("application/json");
        finish(url, req.send(text.as_bytes()))
    }
}

fn finish(
    url: &str,
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<Reply, PluginError> {
    // Only the URL's origin and path in a message: a query never carries a secret here, but
    // there is no need to repeat it either.
    let shown = url.split('?').next().unwrap_or(url);
    let mut response = sent.map_err(|e| {
        PluginError::connect(format!(
            "cannot reach {shown}: {}",
            one_line(&e.to_string())
        ))
        .retryable()
    })?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = response
        .body_mut()
        .with_config()
        .limit(BODY_LIMIT)
        .read_to_string()
        .map_err(|e| {
            PluginError::connect(format!(
                "reading the answer of {shown}: {}",
                one_line(&e.to_string())
            ))
            .retryable()
        })?;
    Ok(Reply {
        status,
        content_type,
        body,
    })
}

/// `text` on one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_are_escaped_and_bases_checked() {
        assert_eq!(escape("'My Sheet'!A1:B2"), "%27My%20Sheet%27%21A1%3AB2");
        assert_eq!(query(&[("a", "b c"), ("d", "é")]), "?a=b%20c&d=%C3%A9");
        assert!(check_base("https://sheets.googleapis.com").is_ok());
        assert!(check_base("http://127.0.0.1:8080/prefix").is_ok());
        assert!(check_base("ftp://x").is_err());
        assert!(check_base("https://").is_err());
        assert!(check_base("https://x/?a=b").is_err());
    }
}
