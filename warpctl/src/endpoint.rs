//! Where the appliance's API answers, parsed from `--server`.

use std::fmt;

/// Where the appliance's API answers: `http://HOST[:PORT][/PREFIX]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `host:port`, as connected to, sent in `Host` and named in errors.
    pub authority: String,
    /// A path prefix put before every request path, empty or `/...`
    /// without a trailing slash.
    pub base_path: String,
}

impl Endpoint {
    /// Parses `http://HOST[:PORT][/PREFIX]` (the scheme may be left out;
    /// the port defaults to 80).
    pub fn parse(text: &str) -> Result<Endpoint, String> {
        let text = text.trim();
        let rest = match text.split_once("://") {
            Some(("http", rest)) => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "unsupported scheme `{scheme}` in `{text}` (only http:// is served)"
                ));
            }
            None => text,
        };
        let (authority, path) = match rest.find('/') {
            Some(slash) => rest.split_at(slash),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') {
            return Err(format!(
                "expected a server like http://10.0.0.2:8080, got `{text}`"
            ));
        }
        let has_port = if authority.starts_with('[') {
            authority.contains("]:")
        } else {
            authority.contains(':')
        };
        let authority = if has_port {
            let port = authority.rsplit(':').next().unwrap_or_default();
            if port.parse::<u16>().is_err() {
                return Err(format!("`{port}` is not a port number in `{text}`"));
            }
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Endpoint {
            authority,
            base_path: path.trim_end_matches('/').to_string(),
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "http://{}{}", self.authority, self.base_path)
    }
}
