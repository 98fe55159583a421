//! Routes: what the server answers at each path, as the spec's `routes`
//! array says, checked when the spec is read.

use super::assets::{self, Asset};
use super::request::{MAX_REQUEST_LINE, Method};
use super::response::{
    BodyLength, ConnectionField, MAX_CONTENT_TYPE, MAX_RESPONSE_HEAD, ResponseHead,
};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Deserialize;

/// A generator of response bodies, named by a route's `generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Generator {
    /// `pattern`: `n` bytes of [`super::pattern`] (`?n=`, default 1024),
    /// sent with the chunked coding.
    Pattern,
}

/// What a route answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `body = "..."`: this text (GET, HEAD).
    Body(String),
    /// `file = "<name>"`: a file built into the image (GET, HEAD).
    File(&'static Asset),
    /// `generate = "<generator>"`: a generated body, streamed (GET, HEAD).
    Generate(Generator),
    /// `echo = true`: the request's body (POST, PUT).
    Echo,
}

/// One route: a path and what it answers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RouteConfig")]
pub struct Route {
    /// The path, matched exactly (the query is not part of it).
    pub path: String,
    /// What it answers.
    pub action: Action,
    /// The `Content-Type` of its answers, if configured.
    pub content_type: Option<String>,
}

/// A route as the spec writes it, before it is checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouteConfig {
    path: String,
    body: Option<String>,
    file: Option<String>,
    generate: Option<Generator>,
    echo: Option<bool>,
    content_type: Option<String>,
}

impl TryFrom<RouteConfig> for Route {
    type Error = String;

    fn try_from(config: RouteConfig) -> Result<Self, String> {
        let path = config.path;
        if !path.starts_with('/')
            || path.len() > MAX_REQUEST_LINE
            || !path
                .bytes()
                .all(|byte| (0x21..=0x7e).contains(&byte) && byte != b'?')
        {
            return Err(format!(
                "route path {path:?} must start with '/' and be visible ASCII without '?'"
            ));
        }
        let mut actions = Vec::new();
        if let Some(body) = config.body {
            actions.push(Action::Body(body));
        }
        if let Some(name) = config.file {
            let asset = assets::find(&name).ok_or_else(|| {
                format!(
                    "route {path:?}: no built-in file is named {name:?} (there are: {})",
                    assets::names()
                )
            })?;
            actions.push(Action::File(asset));
        }
        if let Some(generator) = config.generate {
            actions.push(Action::Generate(generator));
        }
        if config.echo == Some(true) {
            actions.push(Action::Echo);
        }
        if actions.len() != 1 {
            return Err(format!(
                "route {path:?} needs exactly one of body, file, generate or echo = true"
            ));
        }
        if let Some(content_type) = &config.content_type {
            let printable = content_type
                .bytes()
                .all(|byte| (0x20..=0x7e).contains(&byte));
            if content_type.trim().is_empty() || content_type.len() > MAX_CONTENT_TYPE || !printable
            {
                return Err(format!(
                    "route {path:?}: content_type must be 1 to {MAX_CONTENT_TYPE} printable ASCII characters"
                ));
            }
        }
        Ok(Self {
            path,
            action: actions.remove(0),
            content_type: config.content_type,
        })
    }
}

impl Route {
    /// The methods the route answers, as an `Allow` field lists them.
    pub fn allow(&self) -> &'static str {
        match self.action {
            Action::Echo => "POST, PUT",
            _ => "GET, HEAD",
        }
    }

    /// True when the route answers `method`.
    pub fn allows(&self, method: Method) -> bool {
        match self.action {
            Action::Echo => matches!(method, Method::Post | Method::Put),
            _ => matches!(method, Method::Get | Method::Head),
        }
    }

    /// The `Content-Type` of its answers: configured, or the file's, or
    /// one for the kind of answer.
    pub fn content_type(&self) -> &[u8] {
        if let Some(content_type) = &self.content_type {
            return content_type.as_bytes();
        }
        match self.action {
            Action::Body(_) => b"text/plain; charset=utf-8",
            Action::File(asset) => asset.content_type.as_bytes(),
            Action::Generate(_) | Action::Echo => b"application/octet-stream",
        }
    }
}

/// Longest `body` whose whole response is rendered once (see
/// [`RouteTable::rendered`]); longer ones are written head, then body.
pub const MAX_RENDERED_BODY: usize = 16 * 1024;

/// A `body` route's whole `200` response, rendered once for each
/// `Connection` field a response may carry: answering is one copy.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rendered {
    /// Head and body, by [`connection_index`].
    responses: [Vec<u8>; 3],
    /// Where each response's head ends (a `HEAD` answer).
    head_lengths: [usize; 3],
}

/// The slot of a `Connection` field in [`Rendered`].
fn connection_index(connection: ConnectionField) -> usize {
    match connection {
        ConnectionField::Absent => 0,
        ConnectionField::Close => 1,
        ConnectionField::KeepAlive => 2,
    }
}

impl Rendered {
    /// `route`'s responses, if it answers a short configured body.
    fn render(route: &Route) -> Option<Self> {
        let Action::Body(text) = &route.action else {
            return None;
        };
        if text.len() > MAX_RENDERED_BODY {
            return None;
        }
        let mut head = [0u8; MAX_RESPONSE_HEAD];
        let mut responses: [Vec<u8>; 3] = Default::default();
        let mut head_lengths = [0; 3];
        for connection in [
            ConnectionField::Absent,
            ConnectionField::Close,
            ConnectionField::KeepAlive,
        ] {
            let length = ResponseHead {
                status: 200,
                content_type: route.content_type(),
                length: BodyLength::Known(text.len() as u64),
                connection,
                allow: None,
            }
            .write(&mut head)?;
            let index = connection_index(connection);
            responses[index] = [&head[..length], text.as_bytes()].concat();
            head_lengths[index] = length;
        }
        Some(Self {
            responses,
            head_lengths,
        })
    }
}

/// The routes of one server, looked up by path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
    /// By route index: the whole responses of short `body` routes.
    rendered: Vec<Option<Rendered>>,
}

impl RouteTable {
    /// A table of `routes` (their paths are unique: the config checked).
    pub fn new(routes: Vec<Route>) -> Self {
        let rendered = routes.iter().map(Rendered::render).collect();
        Self { routes, rendered }
    }

    /// The whole `200` response of the route at `index` with the
    /// `connection` field (its head alone when `head_only`), if the
    /// route's body is short enough to have been rendered in advance.
    pub fn rendered(
        &self,
        index: usize,
        connection: ConnectionField,
        head_only: bool,
    ) -> Option<&[u8]> {
        let rendered = self.rendered.get(index)?.as_ref()?;
        let slot = connection_index(connection);
        let response = &rendered.responses[slot];
        Some(match head_only {
            true => &response[..rendered.head_lengths[slot]],
            false => response,
        })
    }

    /// The index of the route for `path`.
    pub fn find(&self, path: &[u8]) -> Option<usize> {
        self.routes
            .iter()
            .position(|route| route.path.as_bytes() == path)
    }

    /// The route at `index` (from [`RouteTable::find`]).
    pub fn get(&self, index: usize) -> Option<&Route> {
        self.routes.get(index)
    }
}

/// Deserializes `routes`, refusing a path given twice.
pub(super) fn unique_routes<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Route>, D::Error> {
    let routes = Vec::<Route>::deserialize(deserializer)?;
    for (index, route) in routes.iter().enumerate() {
        if routes[..index]
            .iter()
            .any(|earlier| earlier.path == route.path)
        {
            return Err(serde::de::Error::custom(format!(
                "route path {:?} is given twice",
                route.path
            )));
        }
    }
    Ok(routes)
}
