//! sockmap-proto LISTEN_PORT UPSTREAM_PORT [MAX_CONNS]
//!
//! The prototype of issue 16: a TCP proxy on 127.0.0.1:LISTEN_PORT to 127.0.0.1:UPSTREAM_PORT
//! whose bytes never enter user space. Each accepted client is connected to the upstream, and
//! both sockets go into a BPF SOCKHASH keyed by the *other* socket's cookie; an SK_SKB stream
//! verdict program (assembled below, no clang, no libbpf) redirects every segment that arrives
//! on one socket to the send side of its peer, in the kernel. User space only accepts, connects,
//! passes on FIN and reset, and closes. Bytes that arrive before a pair is in the map are copied
//! once by user space; a segment the verdict cannot redirect (no peer in the map) is passed to
//! the socket's own queue and copied when FIN or an error wakes user space.
//!
//! It exists to measure the CPU per request against the normal read/write path and HAProxy
//! (bench/sockmap/ab-cpu.sh) and the guarantees (bench/sockmap/guarantees.py). Not a product.
use std::io::Error;
use std::mem::size_of;

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_MAP_TYPE_SOCKHASH: u32 = 18;
const BPF_PROG_TYPE_SK_SKB: u32 = 14;
const BPF_SK_SKB_STREAM_VERDICT: u32 = 5;
const BPF_FUNC_GET_SOCKET_COOKIE: i32 = 46;
const BPF_FUNC_SK_REDIRECT_HASH: i32 = 72;
const SO_COOKIE: libc::c_int = 57;

/// One BPF instruction as the kernel reads it (struct bpf_insn).
#[repr(C)]
#[derive(Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8, // dst in the low nibble, src in the high one
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: dst | (src << 4), off, imm }
}

/// The verdict program: redirect to the socket stored under this socket's cookie; if there is
/// none, pass the segment to this socket's own receive queue (user space reads it).
fn program(map_fd: i32) -> [Insn; 13] {
    const MOV64_X: u8 = 0xbf; // r_dst = r_src
    const MOV64_K: u8 = 0xb7; // r_dst = imm
    const ADD64_K: u8 = 0x07; // r_dst += imm
    const STX_DW: u8 = 0x7b; // *(u64 *)(r_dst + off) = r_src
    const LD_IMM64: u8 = 0x18; // two slots; src 1 = BPF_PSEUDO_MAP_FD
    const CALL: u8 = 0x85;
    const JNE_K: u8 = 0x55;
    const EXIT: u8 = 0x95;
    [
        insn(MOV64_X, 6, 1, 0, 0),                       // r6 = ctx
        insn(CALL, 0, 0, 0, BPF_FUNC_GET_SOCKET_COOKIE), // r0 = cookie(skb->sk)
        insn(STX_DW, 10, 0, -8, 0),                      // key on the stack
        insn(MOV64_X, 1, 6, 0, 0),                       // r1 = ctx
        insn(LD_IMM64, 2, 1, 0, map_fd),                 // r2 = &sockhash
        insn(0, 0, 0, 0, 0),
        insn(MOV64_X, 3, 10, 0, 0), // r3 = &key
        insn(ADD64_K, 3, 0, 0, -8),
        insn(MOV64_K, 4, 0, 0, 0),                      // flags 0: egress of the peer
        insn(CALL, 0, 0, 0, BPF_FUNC_SK_REDIRECT_HASH), // SK_PASS (1) or SK_DROP (0)
        insn(JNE_K, 0, 0, 1, 0),                        // redirected: return SK_PASS
        insn(MOV64_K, 0, 0, 0, 1),                      // no peer: SK_PASS to user space
        insn(EXIT, 0, 0, 0, 0),
    ]
}

fn bpf(cmd: libc::c_long, attr: &mut [u64; 16]) -> Result<i32, Error> {
    // SAFETY: attr is a zeroed 128-byte union bpf_attr that outlives the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), size_of::<[u64; 16]>()) };
    if r < 0 {
        Err(Error::last_os_error())
    } else {
        Ok(r as i32)
    }
}

fn sockhash(max: u32) -> Result<i32, Error> {
    let mut a = [0u64; 16];
    a[0] = BPF_MAP_TYPE_SOCKHASH as u64 | (8u64 << 32); // map_type, key_size
    a[1] = 4 | ((max as u64) << 32); // value_size, max_entries
    bpf(BPF_MAP_CREATE, &mut a)
}

fn load(map_fd: i32) -> Result<i32, String> {
    let prog = program(map_fd);
    let license = b"GPL\0";
    let mut log = vec![0u8; 65536];
    let mut a = [0u64; 16];
    a[0] = BPF_PROG_TYPE_SK_SKB as u64 | ((prog.len() as u64) << 32);
    a[1] = prog.as_ptr() as u64;
    a[2] = license.as_ptr() as u64;
    a[3] = 1 | ((log.len() as u64) << 32); // log_level 1, log_size
    a[4] = log.as_mut_ptr() as u64;
    // kern_version, prog_flags (a[5]), prog_name (a[6..8]), prog_ifindex, expected_attach_type (a[8])
    a[8] = (BPF_SK_SKB_STREAM_VERDICT as u64) << 32;
    bpf(BPF_PROG_LOAD, &mut a).map_err(|e| {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        format!("loading the verdict program: {e}\nverifier log:\n{}", String::from_utf8_lossy(&log[..end]))
    })
}

fn attach(prog: i32, map_fd: i32) -> Result<(), Error> {
    let mut a = [0u64; 16];
    a[0] = map_fd as u64 | ((prog as u64) << 32); // target_fd, attach_bpf_fd
    a[1] = BPF_SK_SKB_STREAM_VERDICT as u64; // attach_type, attach_flags 0
    bpf(BPF_PROG_ATTACH, &mut a).map(|_| ())
}

fn map_update(map_fd: i32, key: u64, sock: i32) -> Result<(), Error> {
    let val = sock as u32;
    let mut a = [0u64; 16];
    a[0] = map_fd as u64;
    a[1] = &key as *const u64 as u64;
    a[2] = &val as *const u32 as u64;
    a[3] = 0; // BPF_ANY
    bpf(BPF_MAP_UPDATE_ELEM, &mut a).map(|_| ())
}

fn map_delete(map_fd: i32, key: u64) {
    let mut a = [0u64; 16];
    a[0] = map_fd as u64;
    a[1] = &key as *const u64 as u64;
    let _ = bpf(BPF_MAP_DELETE_ELEM, &mut a);
}

fn cookie(fd: i32) -> u64 {
    let mut c = 0u64;
    let mut len = size_of::<u64>() as libc::socklen_t;
    // SAFETY: c and len are valid for the call.
    unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, SO_COOKIE, &mut c as *mut u64 as *mut _, &mut len) };
    c
}

fn addr(port: u16) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain data.
    let mut a: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    a.sin_family = libc::AF_INET as u16;
    a.sin_port = port.to_be();
    a.sin_addr.s_addr = u32::from_be_bytes([127, 0, 0, 1]).to_be();
    a
}

fn check(r: libc::c_int, what: &str) -> i32 {
    if r < 0 {
        eprintln!("sockmap-proto: {what}: {}", Error::last_os_error());
        std::process::exit(1);
    }
    r
}

struct Pair {
    peer: i32,
    eof: bool, // this side has sent FIN (read 0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: sockmap-proto LISTEN_PORT UPSTREAM_PORT [MAX_CONNS]");
        std::process::exit(2);
    }
    let lport: u16 = args[1].parse().expect("LISTEN_PORT");
    let uport: u16 = args[2].parse().expect("UPSTREAM_PORT");
    let max: usize = args.get(3).map(|s| s.parse().expect("MAX_CONNS")).unwrap_or(1024);
    let map = sockhash(2 * max as u32).unwrap_or_else(|e| {
        eprintln!("sockmap-proto: creating the SOCKHASH: {e}");
        std::process::exit(1)
    });
    let prog = load(map).unwrap_or_else(|e| {
        eprintln!("sockmap-proto: {e}");
        std::process::exit(1)
    });
    attach(prog, map).unwrap_or_else(|e| {
        eprintln!("sockmap-proto: attaching the verdict program: {e}");
        std::process::exit(1)
    });
    // SAFETY: plain socket calls on descriptors this function owns.
    unsafe {
        let l = check(
            libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0),
            "socket",
        );
        let one: libc::c_int = 1;
        libc::setsockopt(l, libc::SOL_SOCKET, libc::SO_REUSEADDR, &one as *const _ as *const _, 4);
        libc::setsockopt(l, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const _, 4);
        let la = addr(lport);
        check(libc::bind(l, &la as *const _ as *const _, size_of::<libc::sockaddr_in>() as u32), "bind");
        check(libc::listen(l, 4096), "listen");
        let ep = check(libc::epoll_create1(libc::EPOLL_CLOEXEC), "epoll");
        let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: l as u64 };
        check(libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, l, &mut ev), "epoll_ctl");
        let mut pairs: Vec<Option<Pair>> = (0..(2 * max + 64)).map(|_| None).collect();
        let mut evs = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
        let mut buf = vec![0u8; 65536];
        let mut live = 0usize;
        loop {
            let n = libc::epoll_wait(ep, evs.as_mut_ptr(), evs.len() as i32, -1);
            if n < 0 {
                continue;
            }
            for e in &evs[..n as usize] {
                let fd = e.u64 as i32;
                if fd == l {
                    loop {
                        let c = libc::accept4(
                            l,
                            std::ptr::null_mut(),
                            std::ptr::null_mut(),
                            libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                        );
                        if c < 0 {
                            break;
                        }
                        if live >= max || c as usize + 2 >= pairs.len() {
                            libc::close(c);
                            continue;
                        }
                        let u = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                        let ua = addr(uport);
                        if u < 0
                            || libc::connect(u, &ua as *const _ as *const _, size_of::<libc::sockaddr_in>() as u32) < 0
                        {
                            libc::close(c);
                            if u >= 0 {
                                libc::close(u);
                            }
                            continue;
                        }
                        let fl = libc::fcntl(u, libc::F_GETFL);
                        libc::fcntl(u, libc::F_SETFL, fl | libc::O_NONBLOCK);
                        libc::setsockopt(u, libc::IPPROTO_TCP, libc::TCP_NODELAY, &one as *const _ as *const _, 4);
                        // Each socket is stored under its peer's cookie: a segment arriving on
                        // c looks up cookie(c) and finds u, and the other way round.
                        let (kc, ku) = (cookie(c), cookie(u));
                        if map_update(map, kc, u).is_err() || map_update(map, ku, c).is_err() {
                            map_delete(map, kc);
                            libc::close(c);
                            libc::close(u);
                            continue;
                        }
                        pairs[c as usize] = Some(Pair { peer: u, eof: false });
                        pairs[u as usize] = Some(Pair { peer: c, eof: false });
                        live += 1;
                        for s in [c, u] {
                            // Only FIN and errors wake user space: with EPOLLIN, every redirected
                            // segment would wake the proxy for a read that finds nothing (the
                            // verdict path calls the socket's data_ready after each one).
                            let mut ev = libc::epoll_event { events: libc::EPOLLRDHUP as u32, u64: s as u64 };
                            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s, &mut ev);
                            // Bytes queued before the pair entered the map are still on the
                            // socket: copy them here.
                            copy(s, &mut pairs, &mut buf, ep, map, &mut live);
                        }
                    }
                } else {
                    copy(fd, &mut pairs, &mut buf, ep, map, &mut live);
                }
            }
        }
    }
}

/// Reads what user space was given on `fd` and writes it to the peer; on EOF passes the FIN
/// on, on an error resets both; closes the pair when both sides have finished.
unsafe fn copy(fd: i32, pairs: &mut [Option<Pair>], buf: &mut [u8], ep: i32, map: i32, live: &mut usize) {
    let Some(p) = pairs[fd as usize].as_ref() else { return };
    let peer = p.peer;
    loop {
        let n = libc::recv(fd, buf.as_mut_ptr() as *mut _, buf.len(), libc::MSG_DONTWAIT);
        if n > 0 {
            let mut off = 0;
            while off < n as usize {
                let w = libc::send(peer, buf[off..].as_ptr() as *const _, n as usize - off, libc::MSG_NOSIGNAL);
                if w <= 0 {
                    if w < 0 && Error::last_os_error().raw_os_error() == Some(libc::EAGAIN) {
                        let mut pfd = libc::pollfd { fd: peer, events: libc::POLLOUT, revents: 0 };
                        libc::poll(&mut pfd, 1, 1000);
                        continue;
                    }
                    return close_pair(fd, peer, pairs, ep, map, live, true);
                }
                off += w as usize;
            }
            continue;
        }
        if n == 0 {
            if let Some(p) = pairs[fd as usize].as_mut() {
                if !p.eof {
                    p.eof = true;
                    libc::shutdown(peer, libc::SHUT_WR);
                    let mut ev = libc::epoll_event { events: 0, u64: fd as u64 };
                    libc::epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, &mut ev);
                }
            }
            if pairs[peer as usize].as_ref().is_some_and(|q| q.eof) {
                close_pair(fd, peer, pairs, ep, map, live, false);
            }
            return;
        }
        let err = Error::last_os_error().raw_os_error();
        if err == Some(libc::EAGAIN) {
            return;
        }
        return close_pair(fd, peer, pairs, ep, map, live, true);
    }
}

unsafe fn close_pair(a: i32, b: i32, pairs: &mut [Option<Pair>], ep: i32, map: i32, live: &mut usize, reset: bool) {
    for s in [a, b] {
        map_delete(map, cookie(s));
        libc::epoll_ctl(ep, libc::EPOLL_CTL_DEL, s, std::ptr::null_mut());
        if reset {
            let lg = libc::linger { l_onoff: 1, l_linger: 0 };
            libc::setsockopt(
                s,
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                &lg as *const _ as *const _,
                size_of::<libc::linger>() as u32,
            );
        }
        libc::close(s);
        pairs[s as usize] = None;
    }
    *live -= 1;
}
