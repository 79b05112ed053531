//! Configuration: MOSN's `config.json` (tcp_proxy subset) plus baton's `"baton"` object.
//!
//! Sans-io (`core` + `heapless` + serde-json-core): the model, value parsing, the JSON
//! pre-pass, validation and rendering. Reading the file is the std edge, in `config_file`.

// Config errors carry their field path inline (no allocation, `core` only); they are built
// once per start-up, so their size does not matter.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

pub mod json;
pub mod model;
pub mod parse;
mod raw;
pub mod render;
pub mod schema;
pub mod value;

pub use json::{describe_unknown, UnknownKey, UnknownKeys};
pub use model::*;
pub use parse::{parse, parse_noting, ConfigError, Problem};
