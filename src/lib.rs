//! baton: a hot-restartable L4 TCP proxy for embedded Linux gateways.
//!
//! Layers, each using only the ones listed before it:
//!
//! 1. sans-io (`core` + `heapless` only, testable without sockets): `config` (model, parsing),
//!    `conn` (proxied connection state machine, and its portable state for a transfer), `lb`
//!    (load balancing, passive health), `http` (admin request parser), `stats` (counters and
//!    their rendering), `handoff::codec` (hot-restart and transfer wire format).
//! 2. `sys`: the only module with `unsafe`: raw descriptors, `fork`/`pidfd`, and the few
//!    system calls nix does not wrap.
//! 3. `net` and `poller`: sockets and the edge-triggered epoll loop.
//! 4. `server`: the event loop that owns listeners, connections, admin and timers.
//! 5. `handoff::channel`, `takeover` (new side), `restart` (old side) and `transfer` (moving
//!    established connections): the hot-restart protocol on top of a running server.
//! 6. `main`: command line, logging, exit codes.
#![deny(unsafe_code)]

pub mod activation;
pub mod admin;
pub mod cli;
pub mod config;
pub mod conn;
pub mod fault;
pub mod handoff;
pub mod http;
pub mod lb;
pub mod net;
pub mod notify;
pub mod pidfile;
pub mod poller;
pub mod restart;
pub mod rundir;
pub mod runtime;
pub mod server;
pub mod stats;
pub mod sys;
pub mod takeover;
pub mod transfer;
