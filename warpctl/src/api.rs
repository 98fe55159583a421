//! The appliance's management API, one method per endpoint, with every
//! refusal turned into an `ApiError` that names its cause.

use crate::http::{Client, HttpError, Method, Request, Response, StreamingResponse};
use crate::sse::EventReader;
use serde_json::Value;
use std::fmt;
use std::io::{BufRead, Read};
use std::time::Duration;

/// The largest spec the appliance accepts (it answers 413 past it). Checked
/// here too: an appliance may reset a connection mid-body rather than read
/// it all and answer, and the operator would see a reset, not the cause.
pub const MAX_SPEC_BYTES: usize = 64 * 1024;

/// The largest module the appliance accepts (`PUT /api/v1/modules/<name>`).
pub const MAX_MODULE_BYTES: usize = 256 * 1024;

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

/// What `GET /api/v1/logs` and its stream are asked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// `q`: a substring of the message or target.
    pub text: Option<String>,
    /// `level`: the least severe level (`error` ... `trace`).
    pub level: Option<String>,
    /// `limit`: at most this many records (the search; 1 to 1000).
    pub limit: Option<u32>,
    /// `since`: only records after this sequence number.
    pub since: Option<u64>,
}

impl LogQuery {
    /// The query string, `?` included (empty when nothing is asked).
    pub fn query_string(&self) -> String {
        let mut pairs = Vec::new();
        if let Some(text) = &self.text {
            pairs.push(format!("q={}", percent_encode(text)));
        }
        if let Some(level) = &self.level {
            pairs.push(format!("level={}", percent_encode(level)));
        }
        if let Some(limit) = self.limit {
            pairs.push(format!("limit={limit}"));
        }
        if let Some(since) = self.since {
            pairs.push(format!("since={since}"));
        }
        if pairs.is_empty() {
            String::new()
        } else {
            format!("?{}", pairs.join("&"))
        }
    }
}

/// `text` with everything but RFC 3986's unreserved characters
/// percent-encoded.
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// One event of the log stream.
#[derive(Clone, Debug, PartialEq)]
pub enum LogEvent {
    /// A record: its JSON as the appliance sent it, and its parse.
    Record(JsonBody),
    /// Records the appliance's ring overwrote before the stream reached
    /// them.
    Lost {
        /// How many.
        count: u64,
        /// The appliance's words for it.
        message: String,
    },
}

/// The log stream, open.
pub struct LogStream {
    events: EventReader<Box<dyn BufRead + Send>>,
    client: Client,
    idle: Duration,
}

impl fmt::Debug for LogStream {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("LogStream")
            .field("server", self.client.endpoint())
            .finish_non_exhaustive()
    }
}

impl LogStream {
    /// The next record (or loss); waits as long as the stream is alive.
    /// The stream ending is an error: the appliance only ends it by
    /// closing the connection.
    pub fn next_event(&mut self) -> Result<LogEvent, ApiError> {
        // Events of other types are skipped; each read is bounded by the
        // idle time, and each event by the reader's limits.
        loop {
            let event = self
                .events
                .next_event()
                .map_err(|error| ApiError::Http(self.client.stream_error(error, self.idle)))?
                .ok_or_else(|| ApiError::StreamEnded {
                    authority: self.client.endpoint().authority.clone(),
                })?;
            let value: Result<Value, _> = serde_json::from_str(&event.data);
            let value = value.map_err(|error| ApiError::NotJson {
                path: "/api/v1/logs/stream".to_string(),
                reason: error.to_string(),
            })?;
            match event.event.as_str() {
                "log" => {
                    return Ok(LogEvent::Record(JsonBody {
                        text: event.data,
                        value,
                    }));
                }
                "lost" => {
                    return Ok(LogEvent::Lost {
                        count: value.get("lost").and_then(Value::as_u64).unwrap_or(0),
                        message: value
                            .get("message")
                            .and_then(Value::as_str)
                            .unwrap_or("log records were lost")
                            .to_string(),
                    });
                }
                _ => {}
            }
        }
    }
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
    /// 400: the appliance refused the request's parameters.
    BadRequest {
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
    /// 413 for a module: it is over the appliance's limit.
    ModuleTooLarge {
        /// Its size in bytes.
        size: usize,
    },
    /// 422 for a module: the appliance's check (wasmi's validation, the
    /// ABI, its `warpcore_init`) refused it; nothing running changed.
    ModuleRefused {
        /// The module's name.
        name: String,
        /// The engine's reason.
        message: String,
    },
    /// 404 for a module removal: no module of that name is loaded.
    NoSuchModule {
        /// The module's name.
        name: String,
    },
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
    /// The appliance ended a stream that only ends when the client does.
    StreamEnded {
        /// `host:port`.
        authority: String,
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
            ApiError::BadRequest { message } => {
                write!(
                    formatter,
                    "the appliance refused the request (400): {message}"
                )
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
            ApiError::ModuleTooLarge { size } => write!(
                formatter,
                "the module is {size} bytes, larger than the appliance accepts ({} KiB)",
                MAX_MODULE_BYTES / 1024
            ),
            ApiError::ModuleRefused { name, message } => write!(
                formatter,
                "the appliance refused module {name} (nothing running changed): {message}"
            ),
            ApiError::NoSuchModule { name } => {
                write!(
                    formatter,
                    "no module named {name} is loaded (see `warpctl module ls`)"
                )
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
            ApiError::StreamEnded { authority } => {
                write!(formatter, "{authority} ended the log stream")
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

    /// `GET /api/v1/logs`: the newest records that match `query`.
    pub fn logs(&self, query: &LogQuery) -> Result<JsonBody, ApiError> {
        let path = format!("/api/v1/logs{}", query.query_string());
        let response = self.call(Method::Get, &path, true, Vec::new(), None)?;
        json_body("/api/v1/logs", &response)
    }

    /// `GET /api/v1/logs/stream`: the records that match `query` (its
    /// `limit` is not sent), from `query.since` on, as they are logged.
    /// A stream silent (not even a keep-alive) for `idle` is an error.
    pub fn follow_logs(&self, query: &LogQuery, idle: Duration) -> Result<LogStream, ApiError> {
        let query = LogQuery {
            limit: None,
            ..query.clone()
        };
        let path = format!("/api/v1/logs/stream{}", query.query_string());
        let response = self.open_stream(&path, "text/event-stream", idle)?;
        Ok(LogStream {
            events: EventReader::new(response.body),
            client: self.client.clone(),
            idle,
        })
    }

    /// Opens `GET path` (with the token) as a stream whose body is read
    /// as it comes, each read waiting at most `idle`; a refusal (any
    /// status but 2xx) is read whole, bounded, and named.
    pub fn open_stream(
        &self,
        path: &str,
        accept: &str,
        idle: Duration,
    ) -> Result<StreamingResponse, ApiError> {
        let token = self.token.as_deref().ok_or(ApiError::NoToken)?;
        let request = Request {
            method: Method::Get,
            path,
            headers: vec![
                ("Authorization", format!("Bearer {token}")),
                ("Accept", accept.to_string()),
            ],
            body: None,
        };
        let mut response = self.client.open(&request, idle)?;
        if !(200..=299).contains(&response.status) {
            // A refusal is short: read it whole (bounded) and name it.
            let mut body = Vec::new();
            let _ = (&mut response.body).take(64 * 1024).read_to_end(&mut body);
            let path = path.split('?').next().unwrap_or(path);
            return Err(refusal(
                path,
                &Response {
                    status: response.status,
                    headers: response.headers,
                    body,
                },
            ));
        }
        Ok(response)
    }

    /// The client, for naming errors of an open stream
    /// ([`Client::stream_error`]).
    pub fn client(&self) -> &Client {
        &self.client
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

    /// `PUT /api/v1/modules/<name>?<query>`: uploads a Wasm module; the
    /// answer holds the new generation. `query` is already encoded.
    pub fn push_module(
        &self,
        name: &str,
        query: &str,
        module: &[u8],
    ) -> Result<JsonBody, ApiError> {
        if module.len() > MAX_MODULE_BYTES {
            return Err(ApiError::ModuleTooLarge { size: module.len() });
        }
        let path = format!("/api/v1/modules/{}?{query}", percent_encode(name));
        let headers = vec![("Content-Type", "application/wasm".to_string())];
        match self.call(Method::Put, &path, true, headers, Some(module)) {
            Ok(response) => json_body("/api/v1/modules", &response),
            Err(ApiError::SpecRejected { message, .. }) => Err(ApiError::ModuleRefused {
                name: name.to_string(),
                message,
            }),
            Err(ApiError::TooLarge) => Err(ApiError::ModuleTooLarge { size: module.len() }),
            Err(other) => Err(other),
        }
    }

    /// `DELETE /api/v1/modules/<name>`: unloads a module; the answer
    /// holds the new generation.
    pub fn remove_module(&self, name: &str) -> Result<JsonBody, ApiError> {
        let path = format!("/api/v1/modules/{}", percent_encode(name));
        match self.call(Method::Delete, &path, true, Vec::new(), None) {
            Ok(response) => json_body("/api/v1/modules", &response),
            Err(ApiError::NotServed { .. }) => Err(ApiError::NoSuchModule {
                name: name.to_string(),
            }),
            Err(other) => Err(other),
        }
    }

    /// `GET /api/v1/modules`: the hot-loaded modules and their state per
    /// core.
    pub fn modules(&self) -> Result<JsonBody, ApiError> {
        let path = "/api/v1/modules";
        let response = self.call(Method::Get, path, true, Vec::new(), None)?;
        json_body(path, &response)
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
            _ => Err(refusal(path, &response)),
        }
    }
}

/// The error a status other than 2xx means.
fn refusal(path: &str, response: &Response) -> ApiError {
    match response.status {
        400 => ApiError::BadRequest {
            message: server_message(response),
        },
        401 | 403 => ApiError::Unauthorized,
        404 => ApiError::NotServed {
            path: path.to_string(),
        },
        409 => ApiError::Conflict {
            message: server_message(response),
        },
        412 => ApiError::PreconditionFailed { if_match: None },
        413 => ApiError::TooLarge,
        422 => spec_rejection(response),
        429 => ApiError::TooManyRequests {
            retry_after: response.header("Retry-After").map(str::to_string),
        },
        status => ApiError::Unexpected {
            status,
            body: response.text(),
        },
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
