//! `warpctl`, the operator's command line for a warpcore appliance's
//! management API: a small HTTP/1.1 client, the API's calls and errors,
//! and the tables it prints.

#![deny(unsafe_code)]

pub mod api;
pub mod capture;
mod chunked_reader;
pub mod cli;
pub mod commands;
mod endpoint;
pub mod http;
mod module_commands;
pub mod output;
mod response_reader;
pub mod sse;

#[cfg(test)]
mod fake_server;
