//! baton: a hot-restartable L4 TCP proxy for embedded Linux gateways.
//!
//! Layers, each using only the ones listed before it (docs/architecture.md has the picture):
//!
//! 1. `sansio` (`core` + `heapless` + serde-json-core, no system call; `tests/nostd` builds it
//!    under `#![no_std]`): `config`, `conn` (the connection state machine), `lb`, `http` (admin
//!    requests), `stats`, `codec` (the hot-restart wire format).
//! 2. `sys`: the kernel. `sys::ffi` holds the only `unsafe`; `sys::net` the sockets, pipes and
//!    waits; `sys::poller` the epoll loop with opaque tokens.
//! 3. `server`: the event loop (listeners, the connection table, upstream choice, relaying,
//!    detaching and adopting connections), its tokens, and `server::admin` (the admin
//!    endpoint, fed a snapshot).
//! 4. `restart`: the hot-restart protocol on top of a running server: the old side (`restart`
//!    itself), the new side (`takeover`), moving established connections (`transfer`), records
//!    with descriptors (`channel`), the runtime directory (`rundir`) and the PID file (`pidfile`).
//! 5. Edges: `config_file` (reading the config), `cli`, `activation` (systemd sockets),
//!    `notify` (sd_notify), `fault` (test-only fault injection), `runtime` (the main loop with
//!    signals), and the binary's `main`.
#![deny(unsafe_code)]

// 1. sans-io
pub mod sansio;
// 2. system
pub mod sys;
// 3. event loop
pub mod server;
// 4. hot restart
pub mod restart;
// 5. edges
pub mod activation;
pub mod cli;
pub mod config_file;
pub mod control;
pub mod fault;
pub mod logfiles;
pub mod logger;
pub mod notify;
pub mod runtime;
