//! The appliance's management API, one method per endpoint, with every
//! refusal turned into an `ApiError` that names its cause.

use crate::http::{Client, HttpError, Method, Request, Response};
use serde_json::Value;
use std::fmt;

/// The largest spec the appliance accepts (it answers 413 past it). Checked
/// here too: an appliance may reset a connection mid-body rather than read
/// it all and answer, and the operator would see a reset, not the cause.
pub const MAX_SPEC_BYTES: usize = 64 * 1024;

/// A JSON answer: the text as the server sent it and its parse.
#[derive(Clone, Debug, PartialEq)]
pub struct JsonBody {
    /// The body as sent (what `-o json` prints).
    pub text: String,
    /// The parsed body.
    pub value: Value,
}

/// The running spec and its version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecDocument {
    /// The spec's TOML.
    pub text: String,
    /// The `ETag` header, quotes included, for `apply --if-match`.
    pub etag: Option<String>,
    /// The `X-Warpcore-Generation` header.
    pub generation: Option<u64>,
}

/// Why an API call failed.
#[derive(Debug)]
pub enum ApiError {
    /// No response.
    Http(HttpError),
    /// The endpoint needs a token and none was given.
    NoToken,
    /// 401: the token was refused.
    Unauthorized,
    /// 412: the running spec is no longer the one `If-Match` names.
    PreconditionFailed {
        /// The ETag sent.
        if_match: Option<String>,
    },
    /// 422: the spec is invalid.
    SpecRejected {
        /// The spec's file name as the operator gave it.
        source: String,
        /// The line the server blames.
        line: Option<u64>,
        /// The field the server blames.
        field: Option<String>,
        /// The server's message.
        message: String,
    },
    /// 409: the appliance cannot take the change now.
    Conflict {
        /// The server's message.
        message: String,
    },
    /// 429: too many failures; wait.
    TooManyRequests {
        /// The `Retry-After` header.
        retry_after: Option<String>,
    },
    /// 413: the body is over the appliance's limit.
    TooLarge,
    /// 404: the appliance does not serve this path.
    NotServed {
        /// The path asked for.
        path: String,
    },
    /// Any other status.
    Unexpected {
        /// The status code.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// A 200 whose body is not the JSON expected.
    NotJson {
        /// The path asked for.
        path: String,
        /// The parser's complaint.
        reason: String,
    },
}

impl fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Http(error) => write!(formatter, "{error}"),
            ApiError::NoToken => formatter.write_str(
                "this command needs the appliance's token: pass --token or set WARPCTL_TOKEN",
            ),
            ApiError::Unauthorized => formatter
                .write_str("the appliance refused the token (check --token or WARPCTL_TOKEN)"),
            ApiError::PreconditionFailed { if_match } => write!(
                formatter,
                "the running spec changed since {} was read (412 Precondition Failed): \
                 run `warpctl get spec` again",
                if_match.as_deref().unwrap_or("the ETag")
            ),
            ApiError::SpecRejected {
                source,
                line,
                field,
                message,
            } => {
                write!(formatter, "{source}")?;
                if let Some(line) = line {
                    write!(formatter, " line {line}")?;
                }
                if let Some(field) = field {
                    write!(formatter, ", field {field}")?;
                }
                write!(formatter, ": {message}")
            }
            ApiError::Conflict { message } => write!(formatter, "the appliance refused: {message}"),
            ApiError::TooManyRequests { retry_after } => match retry_after {
                Some(seconds) => write!(
                    formatter,
                    "too many failed requests: the appliance asks to retry after {seconds} s"
                ),
                None => formatter.write_str("too many failed requests: retry later"),
            },
            ApiError::TooLarge => {
                formatter.write_str("the spec is larger than the appliance accepts (64 KiB)")
            }
            ApiError::NotServed { path } => {
                write!(formatter, "the appliance does not serve {path} (404)")
            }
            ApiError::Unexpected { status, body } => {
                write!(formatter, "the appliance answered {status}")?;
                let body = body.trim();
                if !body.is_empty() {
                    write!(formatter, ": {body}")?;
                }
                Ok(())
            }
            ApiError::NotJson { path, reason } => {
                write!(
                    formatter,
                    "{path} answered something that is not JSON: {reason}"
                )
            }
        }
    }
}

impl std::error::Error for ApiError {}

impl From<HttpError> for ApiError {
    fn from(error: HttpError) -> ApiError {
        ApiError::Http(error)
    }
}

/// The management API of one appliance.
#[derive(Clone, Debug)]
pub struct Api {
    client: Client,
    token: Option<String>,
}

impl Api {
    /// Talks through `client`, authenticating with `token` where needed
    /// (an empty token counts as none: `WARPCTL_TOKEN=` must not spend
    /// one of the appliance's allowed failures).
    pub fn new(client: Client, token: Option<String>) -> Api {
        let token = token.filter(|token| !token.trim().is_empty());
        Api { client, token }
    }

    /// `GET /metrics`: the Prometheus text exposition.
    pub fn metrics(&self) -> Result<String, ApiError> {
        let response = self.call(Method::Get, "/metrics", false, Vec::new(), None)?;
        Ok(response.text())
    }

    /// `GET /api/v1/spec`: the running spec.
    pub fn spec(&self) -> Result<SpecDocument, ApiError> {
        let response = self.call(Method::Get, "/api/v1/spec", true, Vec::new(), None)?;
        Ok(SpecDocument {
            text: response.text(),
            etag: response.header("ETag").map(str::to_string),
            generation: response
                .header("X-Warpcore-Generation")
                .and_then(|value| value.parse().ok()),
        })
    }

    /// `GET /api/v1/status`: generations, conditions and cores.
    pub fn status(&self) -> Result<JsonBody, ApiError> {
        let path = "/api/v1/status";
        let response = self.call(Method::Get, path, true, Vec::new(), None)?;
        json_body(path, &response)
    }

    /// `PUT /api/v1/spec`: applies `spec` (or only plans it with
    /// `dry_run`); `source` names the spec in errors.
    pub fn apply(
        &self,
        spec: &[u8],
        source: &str,
        dry_run: bool,
        if_match: Option<&str>,
    ) -> Result<JsonBody, ApiError> {
        if spec.len() > MAX_SPEC_BYTES {
            return Err(ApiError::TooLarge);
        }
        let path = if dry_run {
            "/api/v1/spec?dryRun=true"
        } else {
            "/api/v1/spec"
        };
        let mut headers = vec![("Content-Type", "application/toml".to_string())];
        if let Some(etag) = if_match {
            headers.push(("If-Match", etag.to_string()));
        }
        match self.call(Method::Put, path, true, headers, Some(spec)) {
            Ok(response) => json_body(path, &response),
            Err(ApiError::PreconditionFailed { .. }) => Err(ApiError::PreconditionFailed {
                if_match: if_match.map(str::to_string),
            }),
            Err(ApiError::SpecRejected {
                line,
                field,
                message,
                ..
            }) => Err(ApiError::SpecRejected {
                source: source.to_string(),
                line,
                field,
                message,
            }),
            Err(other) => Err(other),
        }
    }

    /// Sends one request and turns every status but 200 into its error.
    fn call(
        &self,
        method: Method,
        path: &str,
        authenticated: bool,
        mut headers: Vec<(&'static str, String)>,
        body: Option<&[u8]>,
    ) -> Result<Response, ApiError> {
        if authenticated {
            let token = self.token.as_deref().ok_or(ApiError::NoToken)?;
            headers.push(("Authorization", format!("Bearer {token}")));
        }
        let response = self.client.send(&Request {
            method,
            path,
            headers,
            body,
        })?;
        match response.status {
            200..=299 => Ok(response),
            401 | 403 => Err(ApiError::Unauthorized),
            404 => Err(ApiError::NotServed {
                path: path.to_string(),
            }),
            409 => Err(ApiError::Conflict {
                message: server_message(&response),
            }),
            412 => Err(ApiError::PreconditionFailed { if_match: None }),
            413 => Err(ApiError::TooLarge),
            422 => Err(spec_rejection(&response)),
            429 => Err(ApiError::TooManyRequests {
                retry_after: response.header("Retry-After").map(str::to_string),
            }),
            status => Err(ApiError::Unexpected {
                status,
                body: response.text(),
            }),
        }
    }
}

/// Parses a JSON body.
fn json_body(path: &str, response: &Response) -> Result<JsonBody, ApiError> {
    let text = response.text();
    let value = serde_json::from_str(&text).map_err(|error| ApiError::NotJson {
        path: path.to_string(),
        reason: error.to_string(),
    })?;
    Ok(JsonBody { text, value })
}

/// The `message` of a JSON error body, or else its `error`, or else the
/// whole body.
fn server_message(response: &Response) -> String {
    let text = response.text();
    let value: Option<Value> = serde_json::from_str(&text).ok();
    let field = |name: &str| {
        value
            .as_ref()
            .and_then(|value| value.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    field("message")
        .or_else(|| field("error"))
        .unwrap_or_else(|| text.trim().to_string())
}

/// A 422's `{"error":"spec","line":N,"field":"...","message":"..."}`.
fn spec_rejection(response: &Response) -> ApiError {
    let value: Value = serde_json::from_str(&response.text()).unwrap_or(Value::Null);
    ApiError::SpecRejected {
        source: "the spec".to_string(),
        line: value.get("line").and_then(Value::as_u64),
        field: value
            .get("field")
            .and_then(Value::as_str)
            .filter(|field| !field.is_empty())
            .map(str::to_string),
        message: server_message(response),
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
