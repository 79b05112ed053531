//! The hot-restart wire format (sans-io, `core` + `heapless`). See docs/hot-restart.md.
//!
//! Every message is one `SOCK_SEQPACKET` record: an 8-byte header (magic `BATN`, protocol
//! version, type, payload length, little-endian) and a payload. Descriptors travel as
//! `SCM_RIGHTS` ancillary data of the record that describes them (manifest batches), so a record
//! and its descriptors arrive together or not at all.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use heapless::{String, Vec};

use crate::sansio::addr::Addr;
use crate::sansio::portable::{fds_per_conn, ConnState, FlowState};
use crate::sansio::stats::Totals;

pub const MAGIC: [u8; 4] = *b"BATN";
/// Bumped on any incompatible change; a mismatch is refused and the old process keeps serving.
pub const PROTO_VERSION: u8 = 2;
pub use crate::sansio::limits::HEADER_LEN;
pub use crate::sansio::limits::MAX_FDS_PER_MSG;
pub use crate::sansio::limits::MAX_FRAME;
pub use crate::sansio::limits::MAX_HISTORY;
pub use crate::sansio::limits::TEXT_LEN;
/// Version of the connection-transfer messages (`Conns` .. `Done`), announced by the successor
/// in its ACK. On a mismatch the old process drains its connections instead: not a failure.
pub const TRANSFER_VERSION: u8 = 1;
pub use crate::sansio::limits::MAX_CONNS_PER_BATCH;
pub use crate::sansio::limits::MAX_DATA;
pub use crate::sansio::limits::MAX_HEALTH_PER_MSG;

pub type Text = String<TEXT_LEN>;

/// `s` as a message text field, cut at a character boundary to `TEXT_LEN` bytes.
pub fn text(s: &str) -> Text {
    let mut t = Text::new();
    for c in s.chars() {
        if t.push(c).is_err() {
            break;
        }
    }
    t
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MsgType {
    Hello = 1,
    Go = 2,
    Busy = 3,
    Refused = 4,
    Ready = 5,
    Manifest = 6,
    Ack = 7,
    Abort = 8,
    Conns = 9,
    Data = 10,
    Taken = 11,
    Commit = 12,
    Done = 13,
    Health = 14,
    Control = 15,
    History = 16,
}

impl MsgType {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Hello,
            2 => Self::Go,
            3 => Self::Busy,
            4 => Self::Refused,
            5 => Self::Ready,
            6 => Self::Manifest,
            7 => Self::Ack,
            8 => Self::Abort,
            9 => Self::Conns,
            10 => Self::Data,
            11 => Self::Taken,
            12 => Self::Commit,
            13 => Self::Done,
            14 => Self::Health,
            15 => Self::Control,
            16 => Self::History,
            _ => return None,
        })
    }
}

/// What a handed-over descriptor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdKind {
    /// A proxy listener (TCP, listening).
    Listener = 1,
    /// The admin listener (TCP, listening).
    Admin = 2,
    /// `reconfig.sock`'s listening unix socket.
    Reconfig = 3,
    /// The open runtime-directory lock file (its `flock` goes with it).
    Lock = 4,
    /// A pidfd of a process still draining (oldest first; the sender's own comes last).
    Pidfd = 5,
    /// The metrics listener (MOSN's prometheus sink; TCP, listening). Added without a version
    /// bump: a sender only has one when its config has a sink, and an older successor that does
    /// not know the kind refuses the manifest, so the old process keeps serving.
    Metrics = 6,
}

impl FdKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Listener,
            2 => Self::Admin,
            3 => Self::Reconfig,
            4 => Self::Lock,
            5 => Self::Pidfd,
            6 => Self::Metrics,
            _ => return None,
        })
    }
}

/// One descriptor's description; the n-th entry describes the n-th descriptor of the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: FdKind,
    pub name: Text,
    pub addr: Option<Addr>,
    /// For `Pidfd`: the process's PID (for logs).
    pub pid: u32,
}

/// Per-batch header of a manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestHead {
    pub baton_version: Text,
    pub totals: Totals,
    pub batch: u16,
    pub last: bool,
}

/// One message. A manifest batch is large (about 7 KiB) and the rest small; messages are built
/// one at a time during a handoff, on the stack, so the size is a deliberate trade for `core`-only
/// code without allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Msg {
    Hello {
        pid: u32,
        baton_version: Text,
    },
    /// Carries the answering process's PID: `SO_PEERCRED` on the connecting side of
    /// `reconfig.sock` names whoever created that socket (maybe a long-gone generation), so the
    /// new process checks `listen.sock`'s peer against this instead.
    Go {
        pid: u32,
    },
    Busy,
    Refused {
        reason: Text,
    },
    Ready,
    Manifest {
        head: ManifestHead,
        entries: Vec<Entry, MAX_FDS_PER_MSG>,
    },
    /// `transfer_version`: the version the successor accepts connections in, 0 for none;
    /// `splice`: its relay mode (connections move only between processes of the same mode).
    Ack {
        pid: u32,
        transfer_version: u8,
        splice: bool,
    },
    Abort {
        reason: Text,
    },
    /// Old to new: a batch of connections; `fds_per_conn(splice)` descriptors each, in order.
    Conns {
        batch: u16,
        splice: bool,
        conns: Vec<ConnState, MAX_CONNS_PER_BATCH>,
    },
    /// Old to new: `len` buffered bytes of `conns[conn].flows[flow]`, carried at the end of the
    /// same record (`decode` checks the length; the caller reads the bytes from the record).
    Data {
        conn: u8,
        flow: u8,
        len: u16,
    },
    /// New to old: the connections of `batch` it registered (bit i: `conns[i]`), untouched yet.
    Taken {
        batch: u16,
        mask: u64,
    },
    /// Old to new: it let go of the taken connections of `batch`; the new process may run them.
    Commit {
        batch: u16,
    },
    /// Old to new: the transfer is over; `kept` connections stay with the old process to drain.
    Done {
        moved: u32,
        kept: u32,
    },
    /// Old to new, before the first manifest batch: hosts marked down (by active checks or
    /// failed connects), so the successor does not send clients to them before its own checks
    /// run. Sent only when some host is down; added without a version bump (a successor too
    /// old to know it refuses the handoff, and the old process keeps serving).
    Health {
        hosts: Vec<HostHealth, MAX_HEALTH_PER_MSG>,
    },
    /// Old to new, before the first manifest batch (and any HEALTH): the last hot restarts and
    /// their results, oldest first, so the status page of whichever process serves shows them.
    /// Sent only when there are some; added without a version bump, like HEALTH.
    History {
        events: Vec<RestartEvent, MAX_HISTORY>,
    },
    /// Control client to the running baton, instead of HELLO (`baton status|reload|stop`).
    /// The answer is text on the same connection, ended by closing it (docs/hot-restart.md).
    Control {
        op: Control,
    },
}

/// One hot restart (or the cold start) and its result, for the status page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestartEvent {
    /// When (seconds since the Unix epoch).
    pub unix_s: u64,
    /// Whether it worked (a takeover, a cold start) or not (an aborted handoff).
    pub ok: bool,
    /// What happened, in a line (cut at `TEXT_LEN`).
    pub text: Text,
}

/// What a control client asks of the running baton.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// The instance's state as a table for people.
    Status = 1,
    /// The same as JSON (the document `/stats` serves).
    StatusJson = 2,
    /// A hot restart in place (what SIGHUP does); answered once the new process serves, or
    /// with the reason it does not.
    Reload = 3,
    /// Stop accepting, drain, exit; draining generations finish their own drains.
    Stop = 4,
    /// Close everything now, draining generations included (what SIGTERM does).
    StopNow = 5,
}

impl Control {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Status,
            2 => Self::StatusJson,
            3 => Self::Reload,
            4 => Self::Stop,
            5 => Self::StopNow,
            _ => return None,
        })
    }
}

/// One host's health as it moves to the successor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostHealth {
    pub cluster: Text,
    pub host: Addr,
    /// Marked down by active checks, with the checks passed / failed in a row.
    pub check_down: bool,
    pub checks_passed: u8,
    pub checks_failed: u8,
    /// Marked down by failed connects: milliseconds of `down_time` left (0: up), and the
    /// failures in a row.
    pub passive_left_ms: u64,
    pub consecutive: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodecError {
    Short,
    BadMagic,
    Version(u8),
    UnknownType(u8),
    LengthMismatch,
    BadEntry,
    BadText,
    TooMany,
    Overflow,
    BadData,
    UnknownControl(u8),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Short => f.write_str("truncated message"),
            Self::BadMagic => f.write_str("not a baton handoff message (bad magic)"),
            Self::Version(v) => write!(f, "handoff protocol version {v}, this baton speaks {PROTO_VERSION}"),
            Self::UnknownType(t) => write!(f, "unknown message type {t}"),
            Self::LengthMismatch => f.write_str("message length does not match its header"),
            Self::BadEntry => f.write_str("malformed manifest entry"),
            Self::BadText => f.write_str("text field is not UTF-8 or too long"),
            Self::TooMany => f.write_str("more manifest entries than one batch may hold"),
            Self::Overflow => f.write_str("message larger than MAX_FRAME"),
            Self::BadData => f.write_str("malformed connection transfer record"),
            Self::UnknownControl(v) => write!(f, "unknown control request {v}"),
        }
    }
}

/// Writes into a fixed buffer; `Overflow` when it does not fit.
struct Out<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl Out<'_> {
    fn put(&mut self, b: &[u8]) -> Result<(), CodecError> {
        let end = self.len + b.len();
        self.buf.get_mut(self.len..end).ok_or(CodecError::Overflow)?.copy_from_slice(b);
        self.len = end;
        Ok(())
    }
    fn u8(&mut self, v: u8) -> Result<(), CodecError> {
        self.put(&[v])
    }
    fn u16(&mut self, v: u16) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }
    fn u32(&mut self, v: u32) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> Result<(), CodecError> {
        self.put(&v.to_le_bytes())
    }
    fn text(&mut self, s: &str) -> Result<(), CodecError> {
        let n = s.len().min(TEXT_LEN);
        self.u8(n as u8)?;
        self.put(&s.as_bytes()[..n])
    }
    /// Family 0 (none), 4 or 6 (16 bytes of IP and a port), or 1: a unix socket path (a length
    /// byte and the path).
    fn addr(&mut self, a: Option<&Addr>) -> Result<(), CodecError> {
        let (fam, ip, port) = match a {
            None => (0u8, [0u8; 16], 0u16),
            Some(Addr::Ip(SocketAddr::V4(v))) => {
                let mut ip = [0u8; 16];
                ip[..4].copy_from_slice(&v.ip().octets());
                (4, ip, v.port())
            }
            Some(Addr::Ip(SocketAddr::V6(v))) => (6, v.ip().octets(), v.port()),
            Some(Addr::Unix(p)) => {
                self.u8(1)?;
                self.u8(p.len() as u8)?;
                return self.put(p.as_bytes());
            }
        };
        self.u8(fam)?;
        self.put(&ip)?;
        self.u16(port)
    }
}

/// Reads from a record's payload.
struct In<'a> {
    b: &'a [u8],
}

impl<'a> In<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CodecError> {
        if self.b.len() < n {
            return Err(CodecError::Short);
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, CodecError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().map_err(|_| CodecError::Short)?))
    }
    fn u32(&mut self) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().map_err(|_| CodecError::Short)?))
    }
    fn u64(&mut self) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().map_err(|_| CodecError::Short)?))
    }
    fn flag(&mut self) -> Result<bool, CodecError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(CodecError::BadEntry),
        }
    }
    fn text(&mut self) -> Result<Text, CodecError> {
        let n = self.u8()? as usize;
        let s = core::str::from_utf8(self.take(n)?).map_err(|_| CodecError::BadText)?;
        let mut t = Text::new();
        t.push_str(s).map_err(|_| CodecError::BadText)?;
        Ok(t)
    }
    fn addr(&mut self) -> Result<Option<Addr>, CodecError> {
        let fam = self.u8()?;
        if fam == 1 {
            let len = self.u8()? as usize;
            let path = core::str::from_utf8(self.take(len)?).map_err(|_| CodecError::BadEntry)?;
            return Addr::unix(path).map(Some).ok_or(CodecError::BadEntry);
        }
        let ip: [u8; 16] = self.take(16)?.try_into().map_err(|_| CodecError::Short)?;
        let port = self.u16()?;
        match fam {
            0 => Ok(None),
            4 => Ok(Some(Addr::Ip(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])), port)))),
            6 => Ok(Some(Addr::Ip(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)))),
            _ => Err(CodecError::BadEntry),
        }
    }
}

fn msg_type(m: &Msg) -> MsgType {
    match m {
        Msg::Hello { .. } => MsgType::Hello,
        Msg::Go { .. } => MsgType::Go,
        Msg::Busy => MsgType::Busy,
        Msg::Refused { .. } => MsgType::Refused,
        Msg::Ready => MsgType::Ready,
        Msg::Manifest { .. } => MsgType::Manifest,
        Msg::Ack { .. } => MsgType::Ack,
        Msg::Abort { .. } => MsgType::Abort,
        Msg::Conns { .. } => MsgType::Conns,
        Msg::Data { .. } => MsgType::Data,
        Msg::Taken { .. } => MsgType::Taken,
        Msg::Commit { .. } => MsgType::Commit,
        Msg::Done { .. } => MsgType::Done,
        Msg::Health { .. } => MsgType::Health,
        Msg::Control { .. } => MsgType::Control,
        Msg::History { .. } => MsgType::History,
    }
}

/// Encodes `m` into `buf` and returns the record's length. `Data` records are built with
/// `encode_data`, which appends their bytes.
pub fn encode(m: &Msg, buf: &mut [u8]) -> Result<usize, CodecError> {
    encode_with(m, &[], buf)
}

/// Encodes a `Data` record carrying `bytes` (at most `MAX_DATA`).
pub fn encode_data(conn: u8, flow: u8, bytes: &[u8], buf: &mut [u8]) -> Result<usize, CodecError> {
    if bytes.len() > MAX_DATA {
        return Err(CodecError::Overflow);
    }
    encode_with(&Msg::Data { conn, flow, len: bytes.len() as u16 }, bytes, buf)
}

fn encode_with(m: &Msg, data: &[u8], buf: &mut [u8]) -> Result<usize, CodecError> {
    let mut o = Out { buf, len: HEADER_LEN };
    match m {
        Msg::Hello { pid, baton_version } => {
            o.u32(*pid)?;
            o.text(baton_version)?;
        }
        Msg::Busy | Msg::Ready => {}
        Msg::Go { pid } => o.u32(*pid)?,
        Msg::Refused { reason } | Msg::Abort { reason } => o.text(reason)?,
        Msg::Ack { pid, transfer_version, splice } => {
            o.u32(*pid)?;
            o.u8(*transfer_version)?;
            o.u8(*splice as u8)?;
        }
        Msg::Conns { batch, splice, conns } => {
            o.u16(*batch)?;
            o.u8(*splice as u8)?;
            o.u8(conns.len() as u8)?;
            for c in conns {
                o.addr(Some(&c.listener))?;
                o.text(&c.cluster)?;
                o.addr(Some(&c.host))?;
                for f in &c.flows {
                    o.u32(f.pending)?;
                    o.u8(f.eof as u8)?;
                    o.u8(f.shut as u8)?;
                    o.u64(f.bytes)?;
                }
                o.u64(c.idle_left_ms)?;
            }
        }
        Msg::Data { conn, flow, len } => {
            if *len as usize != data.len() {
                return Err(CodecError::BadData);
            }
            o.u8(*conn)?;
            o.u8(*flow)?;
            o.u16(*len)?;
            o.put(data)?;
        }
        Msg::Taken { batch, mask } => {
            o.u16(*batch)?;
            o.u64(*mask)?;
        }
        Msg::Commit { batch } => o.u16(*batch)?,
        Msg::Control { op } => o.u8(*op as u8)?,
        Msg::History { events } => {
            o.u8(events.len() as u8)?;
            for e in events {
                o.u64(e.unix_s)?;
                o.u8(e.ok as u8)?;
                o.text(&e.text)?;
            }
        }
        Msg::Done { moved, kept } => {
            o.u32(*moved)?;
            o.u32(*kept)?;
        }
        Msg::Health { hosts } => {
            o.u8(hosts.len() as u8)?;
            for h in hosts {
                o.text(&h.cluster)?;
                o.addr(Some(&h.host))?;
                o.u8(h.check_down as u8)?;
                o.u8(h.checks_passed)?;
                o.u8(h.checks_failed)?;
                o.u64(h.passive_left_ms)?;
                o.u8(h.consecutive)?;
            }
        }
        Msg::Manifest { head, entries } => {
            o.text(&head.baton_version)?;
            let t = &head.totals;
            for v in [t.accepted, t.refused, t.rx, t.tx, t.upstream_failures, t.idle_timeouts, t.generation] {
                o.u64(v)?;
            }
            o.u16(head.batch)?;
            o.u8(head.last as u8)?;
            o.u8(entries.len() as u8)?;
            for e in entries {
                o.u8(e.kind as u8)?;
                o.text(&e.name)?;
                o.addr(e.addr.as_ref())?;
                o.u32(e.pid)?;
            }
        }
    }
    let len = o.len;
    if len > MAX_FRAME {
        return Err(CodecError::Overflow);
    }
    let payload = (len - HEADER_LEN) as u16;
    let b = &mut o.buf[..HEADER_LEN];
    b[..4].copy_from_slice(&MAGIC);
    b[4] = PROTO_VERSION;
    b[5] = msg_type(m) as u8;
    b[6..8].copy_from_slice(&payload.to_le_bytes());
    Ok(len)
}

/// Decodes one record. Checks magic, version and length before anything else.
pub fn decode(rec: &[u8]) -> Result<Msg, CodecError> {
    if rec.len() < HEADER_LEN {
        return Err(CodecError::Short);
    }
    if rec[..4] != MAGIC {
        return Err(CodecError::BadMagic);
    }
    // BUSY and REFUSED keep their layout in every version (type 3 and 4, a text reason), so a
    // successor of another version still learns why it was turned away
    let frozen = matches!(rec[5], 3 | 4);
    if rec[4] != PROTO_VERSION && !frozen {
        return Err(CodecError::Version(rec[4]));
    }
    let ty = MsgType::from_u8(rec[5]).ok_or(CodecError::UnknownType(rec[5]))?;
    let len = u16::from_le_bytes([rec[6], rec[7]]) as usize;
    if rec.len() != HEADER_LEN + len {
        return Err(CodecError::LengthMismatch);
    }
    let mut i = In { b: &rec[HEADER_LEN..] };
    let m = match ty {
        MsgType::Hello => Msg::Hello { pid: i.u32()?, baton_version: i.text()? },
        MsgType::Go => Msg::Go { pid: i.u32()? },
        MsgType::Busy => Msg::Busy,
        MsgType::Ready => Msg::Ready,
        MsgType::Refused => Msg::Refused { reason: i.text()? },
        MsgType::Abort => Msg::Abort { reason: i.text()? },
        MsgType::Ack => Msg::Ack { pid: i.u32()?, transfer_version: i.u8()?, splice: i.flag()? },
        MsgType::Manifest => decode_manifest(&mut i)?,
        MsgType::Conns => decode_conns(&mut i)?,
        MsgType::Data => {
            let (conn, flow, len) = (i.u8()?, i.u8()?, i.u16()?);
            if flow > 1 || i.take(len as usize).is_err() {
                return Err(CodecError::BadData);
            }
            Msg::Data { conn, flow, len }
        }
        MsgType::Taken => Msg::Taken { batch: i.u16()?, mask: i.u64()? },
        MsgType::Commit => Msg::Commit { batch: i.u16()? },
        MsgType::Done => Msg::Done { moved: i.u32()?, kept: i.u32()? },
        MsgType::Health => decode_health(&mut i)?,
        MsgType::History => {
            let count = i.u8()? as usize;
            if count > MAX_HISTORY {
                return Err(CodecError::TooMany);
            }
            let mut events = Vec::new();
            for _ in 0..count {
                let e = RestartEvent { unix_s: i.u64()?, ok: i.flag()?, text: i.text()? };
                events.push(e).map_err(|_| CodecError::TooMany)?;
            }
            Msg::History { events }
        }
        MsgType::Control => {
            let v = i.u8()?;
            Msg::Control { op: Control::from_u8(v).ok_or(CodecError::UnknownControl(v))? }
        }
    };
    if !i.b.is_empty() {
        return Err(CodecError::LengthMismatch);
    }
    Ok(m)
}

fn decode_conns(i: &mut In<'_>) -> Result<Msg, CodecError> {
    let batch = i.u16()?;
    let splice = i.flag()?;
    let count = i.u8()? as usize;
    if count > MAX_CONNS_PER_BATCH || count * fds_per_conn(splice) > MAX_FDS_PER_MSG {
        return Err(CodecError::TooMany);
    }
    let mut conns = Vec::new();
    for _ in 0..count {
        let listener = i.addr()?.ok_or(CodecError::BadData)?;
        let cluster = i.text()?;
        let host = i.addr()?.ok_or(CodecError::BadData)?;
        let mut flows = [FlowState::default(); 2];
        for f in flows.iter_mut() {
            *f = FlowState { pending: i.u32()?, eof: i.flag()?, shut: i.flag()?, bytes: i.u64()? };
            // a FIN passed on means nothing is left to write
            if f.shut && (!f.eof || f.pending > 0) {
                return Err(CodecError::BadData);
            }
        }
        let idle_left_ms = i.u64()?;
        let c = ConnState { listener, cluster, host, flows, idle_left_ms };
        conns.push(c).map_err(|_| CodecError::TooMany)?;
    }
    Ok(Msg::Conns { batch, splice, conns })
}

fn decode_health(i: &mut In<'_>) -> Result<Msg, CodecError> {
    let count = i.u8()? as usize;
    if count > MAX_HEALTH_PER_MSG {
        return Err(CodecError::TooMany);
    }
    let mut hosts = Vec::new();
    for _ in 0..count {
        let cluster = i.text()?;
        let host = i.addr()?.ok_or(CodecError::BadEntry)?;
        let check_down = i.flag()?;
        let (checks_passed, checks_failed) = (i.u8()?, i.u8()?);
        let (passive_left_ms, consecutive) = (i.u64()?, i.u8()?);
        let h = HostHealth { cluster, host, check_down, checks_passed, checks_failed, passive_left_ms, consecutive };
        hosts.push(h).map_err(|_| CodecError::TooMany)?;
    }
    Ok(Msg::Health { hosts })
}

fn decode_manifest(i: &mut In<'_>) -> Result<Msg, CodecError> {
    let baton_version = i.text()?;
    let mut v = [0u64; 7];
    for x in v.iter_mut() {
        *x = i.u64()?;
    }
    let totals = Totals {
        accepted: v[0],
        refused: v[1],
        rx: v[2],
        tx: v[3],
        upstream_failures: v[4],
        idle_timeouts: v[5],
        generation: v[6],
    };
    let batch = i.u16()?;
    let last = match i.u8()? {
        0 => false,
        1 => true,
        _ => return Err(CodecError::BadEntry),
    };
    let count = i.u8()? as usize;
    if count > MAX_FDS_PER_MSG {
        return Err(CodecError::TooMany);
    }
    let mut entries = Vec::new();
    for _ in 0..count {
        let kind = FdKind::from_u8(i.u8()?).ok_or(CodecError::BadEntry)?;
        let e = Entry { kind, name: i.text()?, addr: i.addr()?, pid: i.u32()? };
        entries.push(e).map_err(|_| CodecError::TooMany)?;
    }
    Ok(Msg::Manifest { head: ManifestHead { baton_version, totals, batch, last }, entries })
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
