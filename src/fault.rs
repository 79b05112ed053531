//! Fault-injection points for the hot-restart tests (see docs/reliability.md).
//!
//! Compiled in only with the `fault-injection` cargo feature, which the tests turn on
//! (`tests/run.sh`). Without it, as in every release build, `point` and `value` do nothing and
//! the binary does not read `BATON_FAULT` at all: a shipped baton has no environment switch that
//! kills it (`cross/build.sh` checks the string is absent from the release binaries).
//!
//! `BATON_FAULT=<point>:kill` makes the process SIGKILL itself when it reaches `<point>`;
//! `<point>:pause` makes it stall there for `PAUSE_MS`. Points sit only on hot-restart steps,
//! never on the data path, and cost one environment lookup per handoff; `pipe-pages` is read
//! once at start-up.

pub use crate::sansio::limits::PAUSE_MS;

/// New process: the old one said GO; nothing received yet.
pub const NEW_AFTER_GO: &str = "new-after-go";
/// New process: all descriptors received and verified; nothing registered yet.
pub const NEW_AFTER_FDS: &str = "new-after-fds";
/// New process: everything bound and registered; the ack not sent.
pub const NEW_BEFORE_ACK: &str = "new-before-ack";
/// Old process: READY received; no descriptor sent.
pub const OLD_BEFORE_MANIFEST: &str = "old-before-manifest";
/// Old process: every descriptor sent; the ack not received.
pub const OLD_AFTER_MANIFEST: &str = "old-after-manifest";
/// Old process: a batch of connections and its bytes sent; TAKEN not received.
pub const OLD_MID_TRANSFER: &str = "old-mid-transfer";
/// New process: a batch of connections received and registered; TAKEN not sent.
pub const NEW_MID_TRANSFER: &str = "new-mid-transfer";

/// `BATON_FAULT=transfer-version:<n>` makes a new process announce transfer version `n` in its
/// ACK, to show that a version mismatch drains instead of failing.
pub const ANNOUNCED_TRANSFER_VERSION: &str = "transfer-version";

/// `BATON_FAULT=pipe-pages:<n>` sets every splice pipe to `n` pages (read once at start-up).
pub const PIPE_PAGES: &str = "pipe-pages";

/// `BATON_FAULT=syslog-path:<path>` sends the syslog sink to `<path>` instead of `/dev/log`
/// (a test's own datagram socket).
pub const SYSLOG_PATH: &str = "syslog-path";

/// The value a `<name>:<number>` fault sets, if that fault is active.
#[cfg(not(feature = "fault-injection"))]
pub fn value(_name: &str) -> Option<u8> {
    None
}

/// The text a `<name>:<text>` fault sets, if that fault is active.
#[cfg(not(feature = "fault-injection"))]
pub fn text(_name: &str) -> Option<String> {
    None
}

/// The text a `<name>:<text>` fault sets, if that fault is active.
#[cfg(feature = "fault-injection")]
pub fn text(name: &str) -> Option<String> {
    let spec = std::env::var("BATON_FAULT").ok()?;
    let (p, v) = spec.split_once(':')?;
    (p == name).then(|| v.to_string())
}

#[cfg(not(feature = "fault-injection"))]
pub fn point(_name: &str) {}

/// The value a `<name>:<number>` fault sets, if that fault is active.
#[cfg(feature = "fault-injection")]
pub fn value(name: &str) -> Option<u8> {
    let spec = std::env::var("BATON_FAULT").ok()?;
    let (p, v) = spec.split_once(':')?;
    if p == name {
        v.parse().ok()
    } else {
        None
    }
}

#[cfg(feature = "fault-injection")]
pub fn point(name: &str) {
    let Ok(spec) = std::env::var("BATON_FAULT") else {
        return;
    };
    match spec.split_once(':') {
        Some((p, "kill")) if p == name => {
            log::warn!("fault injection: SIGKILL at {name}");
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        Some((p, "pause")) if p == name => {
            log::warn!("fault injection: pausing {PAUSE_MS} ms at {name}");
            std::thread::sleep(std::time::Duration::from_millis(PAUSE_MS));
        }
        _ => {}
    }
}
