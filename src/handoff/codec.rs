//! The hot-restart wire format (sans-io, `core` + `heapless`). See docs/hot-restart.md.
//!
//! Every message is one `SOCK_SEQPACKET` record: an 8-byte header (magic `BATN`, protocol
//! version, type, payload length, little-endian) and a payload. Descriptors travel as
//! `SCM_RIGHTS` ancillary data of the record that describes them (manifest batches), so a record
//! and its descriptors arrive together or not at all.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use heapless::{String, Vec};

use crate::stats::Totals;

pub const MAGIC: [u8; 4] = *b"BATN";
/// Bumped on any incompatible change; a mismatch is refused and the old process keeps serving.
pub const PROTO_VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
/// Largest record: a full manifest batch is about 6 KiB.
pub const MAX_FRAME: usize = 16 * 1024;
/// Descriptors per record. Linux allows 253 (`SCM_MAX_FD`); batches of 64 keep each record
/// small and make batching an everyday path rather than an untested corner.
pub const MAX_FDS_PER_MSG: usize = 64;
/// Longest name or text carried (listener names are `NAME_LEN`).
pub const TEXT_LEN: usize = 64;

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
}

impl FdKind {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => Self::Listener,
            2 => Self::Admin,
            3 => Self::Reconfig,
            4 => Self::Lock,
            5 => Self::Pidfd,
            _ => return None,
        })
    }
}

/// One descriptor's description; the n-th entry describes the n-th descriptor of the record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: FdKind,
    pub name: Text,
    pub addr: Option<SocketAddr>,
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
    Ack {
        pid: u32,
    },
    Abort {
        reason: Text,
    },
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
    fn addr(&mut self, a: Option<SocketAddr>) -> Result<(), CodecError> {
        let (fam, ip, port) = match a {
            None => (0u8, [0u8; 16], 0u16),
            Some(SocketAddr::V4(v)) => {
                let mut ip = [0u8; 16];
                ip[..4].copy_from_slice(&v.ip().octets());
                (4, ip, v.port())
            }
            Some(SocketAddr::V6(v)) => (6, v.ip().octets(), v.port()),
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
    fn text(&mut self) -> Result<Text, CodecError> {
        let n = self.u8()? as usize;
        let s = core::str::from_utf8(self.take(n)?).map_err(|_| CodecError::BadText)?;
        let mut t = Text::new();
        t.push_str(s).map_err(|_| CodecError::BadText)?;
        Ok(t)
    }
    fn addr(&mut self) -> Result<Option<SocketAddr>, CodecError> {
        let fam = self.u8()?;
        let ip: [u8; 16] = self.take(16)?.try_into().map_err(|_| CodecError::Short)?;
        let port = self.u16()?;
        match fam {
            0 => Ok(None),
            4 => Ok(Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])), port))),
            6 => Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))),
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
    }
}

/// Encodes `m` into `buf` and returns the record's length.
pub fn encode(m: &Msg, buf: &mut [u8]) -> Result<usize, CodecError> {
    let mut o = Out { buf, len: HEADER_LEN };
    match m {
        Msg::Hello { pid, baton_version } => {
            o.u32(*pid)?;
            o.text(baton_version)?;
        }
        Msg::Busy | Msg::Ready => {}
        Msg::Go { pid } => o.u32(*pid)?,
        Msg::Refused { reason } | Msg::Abort { reason } => o.text(reason)?,
        Msg::Ack { pid } => o.u32(*pid)?,
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
                o.addr(e.addr)?;
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
    if rec[4] != PROTO_VERSION {
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
        MsgType::Ack => Msg::Ack { pid: i.u32()? },
        MsgType::Manifest => decode_manifest(&mut i)?,
    };
    if !i.b.is_empty() {
        return Err(CodecError::LengthMismatch);
    }
    Ok(m)
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
mod tests {
    use super::*;

    fn text(s: &str) -> Text {
        let mut t = Text::new();
        t.push_str(s).unwrap();
        t
    }

    fn manifest(n: usize) -> Msg {
        let mut entries = Vec::new();
        for k in 0..n {
            let addr = if k % 2 == 0 { "127.0.0.1:2045" } else { "[::1]:80" };
            entries
                .push(Entry {
                    kind: FdKind::Listener,
                    name: text("proxyListener"),
                    addr: Some(addr.parse().unwrap()),
                    pid: 0,
                })
                .unwrap();
        }
        let totals =
            Totals { accepted: 1, refused: 2, rx: 3, tx: 4, upstream_failures: 5, idle_timeouts: 6, generation: 7 };
        Msg::Manifest { head: ManifestHead { baton_version: text("0.1.0"), totals, batch: 3, last: true }, entries }
    }

    #[test]
    fn every_message_round_trips() {
        let msgs = [
            Msg::Hello { pid: 42, baton_version: text("0.1.0") },
            Msg::Go { pid: 7 },
            Msg::Busy,
            Msg::Refused { reason: text("no") },
            Msg::Ready,
            manifest(0),
            manifest(MAX_FDS_PER_MSG),
            Msg::Ack { pid: 9 },
            Msg::Abort { reason: text("port taken") },
        ];
        let mut buf = [0u8; MAX_FRAME];
        for m in msgs {
            let n = encode(&m, &mut buf).unwrap();
            assert_eq!(decode(&buf[..n]).unwrap(), m);
        }
    }

    #[test]
    fn malformed_records_are_refused_not_panicked_on() {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&manifest(3), &mut buf).unwrap();
        let good = &buf[..n];
        assert_eq!(decode(&good[..5]), Err(CodecError::Short));
        let mut bad = [0u8; 64];
        bad[..8].copy_from_slice(b"XXXX\x01\x01\x00\x00");
        assert_eq!(decode(&bad[..8]), Err(CodecError::BadMagic));
        let mut v = good.to_vec_in_test();
        v[4] = 2;
        assert_eq!(decode(&v), Err(CodecError::Version(2)));
        v[4] = PROTO_VERSION;
        v[5] = 99;
        assert_eq!(decode(&v), Err(CodecError::UnknownType(99)));
        // every truncation is an error, never a panic
        for cut in 0..n {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        // a length field that lies
        let mut v = good.to_vec_in_test();
        v[6] = v[6].wrapping_add(1);
        assert_eq!(decode(&v), Err(CodecError::LengthMismatch));
        // corrupt every byte in turn: decode returns something, never panics
        for k in HEADER_LEN..n {
            let mut v = good.to_vec_in_test();
            v[k] ^= 0xff;
            let _ = decode(&v);
        }
    }

    trait ToVecInTest {
        fn to_vec_in_test(&self) -> heapless::Vec<u8, MAX_FRAME>;
    }
    impl ToVecInTest for [u8] {
        fn to_vec_in_test(&self) -> heapless::Vec<u8, MAX_FRAME> {
            heapless::Vec::from_slice(self).unwrap()
        }
    }
}
