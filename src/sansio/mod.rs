//! The sans-io core: everything that decides, with no system call in it. Builds under
//! `#![no_std]` with `core`, `heapless`, `serde`, `serde-json-core` and `log` only;
//! `tests/nostd` proves it (a `no_std` crate that includes this folder, built for
//! `x86_64-unknown-none` by `tests/run.sh`).
//!
//! - `accesslog`: access log formats (MOSN's) and one line's rendering.
//! - `addr`: an IP socket address or a unix socket path.
//! - `config`: MOSN's config (tcp_proxy subset) and baton's settings: model, parsing with
//!   field-named errors, rendering back to JSON.
//! - `conn`: one proxied connection's state machine (two flows, half-close, reset, per-wake-up
//!   budget) over an abstract `Transport`, and its portable state for a transfer.
//! - `lb`: host choice (round robin, random, least connections) and passive health.
//! - `http`: the admin endpoint's request parser and response framing.
//! - `route`: tcp_proxy routes by source and destination address and port, as MOSN matches them.
//! - `stats`: counters and their JSON and Prometheus renderings.
//! - `status`: `baton status`'s table for people.
//! - `page`: the status page (`GET /` on the admin port), HTML without scripts.
//! - `portable`: a connection's state as it moves between processes.
//! - `codec`: the hot-restart and connection-transfer wire format.

pub mod accesslog;
pub mod addr;
pub mod codec;
pub mod config;
pub mod conn;
pub mod http;
pub mod lb;
pub mod limits;
pub mod page;
pub mod portable;
pub mod route;
pub mod stats;
pub mod status;
