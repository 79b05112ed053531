//! Reading a config file (the std edge of `sansio::config`): bounded, on a short-lived thread.

// Config errors carry their field path inline (no allocation); built once per start-up.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

use std::io::Read;

use crate::sansio::config::{
    describe_unknown, parse_noting, Config, ConfigError, LbPolicy, UnknownKey, UnknownKeys, MAX_CONFIG_BYTES,
};

/// Why a config file could not be used.
#[derive(Debug)]
pub enum LoadError {
    Io(std::io::Error),
    /// A FIFO, a device or a directory: opening or reading it could block (a SIGHUP reload
    /// reads the config inside the event loop) or never end.
    NotRegular,
    Invalid(ConfigError),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "cannot read it: {e}"),
            Self::NotRegular => {
                f.write_str("not a regular file (a FIFO, a device or a directory); give the config file itself")
            }
            Self::Invalid(e) => write!(f, "{e}"),
        }
    }
}

pub use crate::sansio::limits::PARSE_STACK;

/// Reads and validates a config file on a short-lived thread. The parse touches over a MiB of
/// stack; a thread's stack is unmapped when it ends, so the long-running process does not keep
/// those pages resident (idle RSS).
pub fn load(path: &str) -> Result<(Config, UnknownKeys), LoadError> {
    std::thread::scope(|s| {
        let t = std::thread::Builder::new()
            .name("config".into())
            .stack_size(PARSE_STACK)
            .spawn_scoped(s, || read_file(path))
            .map_err(LoadError::Io)?;
        t.join().unwrap_or_else(|_| Err(LoadError::Io(std::io::Error::other("config parser failed"))))
    })
}

/// Reads and validates a config file. Only a regular file is read, opened without blocking (a
/// FIFO with no writer would block `open` itself), and at most `MAX_CONFIG_BYTES + 1` bytes of
/// it, so an oversize file is refused without reading it whole.
pub fn read_file(path: &str) -> Result<(Config, UnknownKeys), LoadError> {
    use std::os::unix::fs::OpenOptionsExt;
    let file =
        std::fs::OpenOptions::new().read(true).custom_flags(nix::libc::O_NONBLOCK).open(path).map_err(LoadError::Io)?;
    if !file.metadata().map_err(LoadError::Io)?.is_file() {
        return Err(LoadError::NotRegular);
    }
    let mut text = std::vec::Vec::with_capacity(crate::sansio::limits::CONFIG_READ_START);
    file.take(MAX_CONFIG_BYTES as u64 + 1).read_to_end(&mut text).map_err(LoadError::Io)?;
    parse_noting(&text).map_err(LoadError::Invalid)
}

/// One line per key baton does not know: a MOSN setting it knowingly ignores (`info`), or an
/// unknown key (`warn`), with the known key it is close to; and a warning per cluster whose
/// policy does not use the weights it was given. `out` gets each line and whether it is a warning.
pub fn describe(cfg: &Config, unknown: &UnknownKeys, mut out: impl FnMut(bool, core::fmt::Arguments<'_>)) {
    for c in &cfg.clusters {
        let unweighted = matches!(c.lb, LbPolicy::RoundRobin | LbPolicy::Random | LbPolicy::RequestRoundRobin);
        if unweighted && !crate::sansio::lb::equal_weights(&c.hosts) {
            out(
                true,
                format_args!(
                    "config: cluster \"{}\": {} does not use host weights (as in MOSN); use LB_WEIGHTED_ROUNDROBIN for weighted picks",
                    c.name,
                    c.lb.as_str()
                ),
            );
        }
    }
    for p in &unknown.paths {
        match describe_unknown(p) {
            UnknownKey::IgnoredMosn => {
                out(false, format_args!("config: MOSN setting `{p}` is not supported by baton; ignored"))
            }
            UnknownKey::NearMiss(near) => {
                out(true, format_args!("config: unknown key `{p}` ignored; did you mean `{near}`?"))
            }
            UnknownKey::Unknown => out(true, format_args!("config: unknown key `{p}` ignored")),
        }
    }
    if unknown.more > 0 {
        out(true, format_args!("config: {} more unknown keys ignored", unknown.more));
    }
}
