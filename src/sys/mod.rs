//! The system layer: the only place that talks to the kernel directly.
//!
//! - `ffi`: the one module allowed to use `unsafe` (adopting raw descriptors, `fork`, the pidfd
//!   calls nix does not wrap, one zeroed allocation); each block states why it is sound.
//! - `net`: sockets (TCP, unix seqpacket), pipes, waits, and checking received sockets; the
//!   `Transport`s that let `sansio::conn` move bytes.
//! - `poller`: the edge-triggered epoll loop, with opaque tokens.
//! - `process`: the process's own figures for `/metrics` (descriptors, memory, start time).
//! - `stdio`: writing to stdout or stderr, which other processes share, without waiting.

mod ffi;
pub mod net;
pub mod poller;
pub mod process;
pub mod stdio;

pub use ffi::*;
