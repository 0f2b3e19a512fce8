//! The reuseport program that picks which of the group's UDP sockets takes
//! a datagram (SO_ATTACH_REUSEPORT_CBPF, classic BPF: no privilege needed).
//!
//! With plain SO_REUSEPORT the kernel picks a socket by a hash of the
//! sender's address and port, so one busy sender lands on one socket. Two
//! things want otherwise:
//!
//! - `--udp-queues`: a worker reads several sockets as one queue in arrival
//!   order ([`super::queues`]); each sender's datagrams should fill all of
//!   its worker's sockets alike, so the program picks the worker by a hash
//!   of the sender's address and port (one sender, one worker, as before)
//!   and the socket within it at random.
//! - `--udp-spread`: every datagram goes to any socket of any worker at
//!   random, so every worker takes an even share of every sender. The
//!   price: one sender's lines no longer pass through one worker in order,
//!   so two updates of a gauge sent in the same interval may be applied in
//!   either order (the last one merged wins); counters, timers and sets are
//!   unaffected.

use std::io;
use std::os::fd::AsRawFd;

/// Attaches the program `sockets` need (bound in this order, all to one
/// address, `queues` per worker); plain reuseport needs none.
pub fn attach(sockets: &[std::net::UdpSocket], queues: usize, spread: bool) -> io::Result<()> {
    let Some(first) = sockets.first() else {
        return Ok(());
    };
    let count = sockets.len() as u32;
    let queues = queues.max(1) as u32;
    let workers = count / queues;
    let mut program = if spread {
        at_random(count)
    } else if queues > 1 && workers > 1 {
        by_sender_then_random(workers, queues)
    } else if queues > 1 {
        at_random(queues)
    } else {
        return Ok(());
    };
    if count < 2 {
        return Ok(());
    }
    let fprog = libc::sock_fprog {
        len: program.len() as libc::c_ushort,
        filter: program.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `program`, a valid array of `len` filter
    // instructions that lives until the call returns (the kernel copies it);
    // the option length is the size of `fprog`; the fd is open while `first`
    // is.
    let result = unsafe {
        libc::setsockopt(
            first.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_REUSEPORT_CBPF,
            std::ptr::addr_of!(fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if result != 0 {
        let e = io::Error::last_os_error();
        let flag = if spread {
            "--udp-spread"
        } else {
            "--udp-queues"
        };
        return Err(io::Error::new(
            e.kind(),
            format!("{flag}: cannot attach the reuseport program: {e} (--udp-queues 1 needs none)"),
        ));
    }
    Ok(())
}

/// One instruction.
fn op(code: u32, k: u32) -> libc::sock_filter {
    jump(code, k, 0, 0)
}

/// One conditional jump (`jt`/`jf`: instructions to skip).
fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// Loads relative to the network header (the program otherwise sees the
/// UDP payload).
const NET: u32 = libc::SKF_NET_OFF as u32;

/// `A = random % sockets`: the index of the group's socket.
fn at_random(sockets: u32) -> Vec<libc::sock_filter> {
    vec![
        op(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32,
        ),
        op(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, sockets),
        op(libc::BPF_RET | libc::BPF_A, 0),
    ]
}

/// `worker = hash(source address, source port) % workers`, then a random
/// one of its `queues` sockets. The port is read where it lies without IP
/// options (IPv4) or extension headers (IPv6); with them some other header
/// bytes of the same sender are hashed instead, which still keeps one
/// sender on one worker.
fn by_sender_then_random(workers: u32, queues: u32) -> Vec<libc::sock_filter> {
    use libc::{BPF_ABS, BPF_ADD, BPF_ALU, BPF_B, BPF_H, BPF_JA, BPF_JEQ, BPF_JMP, BPF_K};
    use libc::{
        BPF_LD, BPF_MISC, BPF_MOD, BPF_MUL, BPF_RET, BPF_RSH, BPF_TAX, BPF_W, BPF_X, BPF_XOR,
    };
    vec![
        // 0: A = IP version
        op(BPF_LD | BPF_B | BPF_ABS, NET),
        op(BPF_ALU | BPF_RSH | BPF_K, 4),
        // 2: IPv6 jumps to 8
        jump(BPF_JMP | BPF_JEQ | BPF_K, 6, 5, 0),
        // 3: IPv4: X = source address, A = source port ^ X
        op(BPF_LD | BPF_W | BPF_ABS, NET + 12),
        op(BPF_MISC | BPF_TAX, 0),
        op(BPF_LD | BPF_H | BPF_ABS, NET + 20),
        op(BPF_ALU | BPF_XOR | BPF_X, 0),
        // 7: to 12
        op(BPF_JMP | BPF_JA, 4),
        // 8: IPv6: X = last word of the source address, A = port ^ X
        op(BPF_LD | BPF_W | BPF_ABS, NET + 20),
        op(BPF_MISC | BPF_TAX, 0),
        op(BPF_LD | BPF_H | BPF_ABS, NET + 40),
        op(BPF_ALU | BPF_XOR | BPF_X, 0),
        // 12: mix (Fibonacci hashing), pick the worker, its first socket
        op(BPF_ALU | BPF_MUL | BPF_K, 0x9E37_79B1),
        op(BPF_ALU | BPF_RSH | BPF_K, 16),
        op(BPF_ALU | BPF_MOD | BPF_K, workers),
        op(BPF_ALU | BPF_MUL | BPF_K, queues),
        op(BPF_MISC | BPF_TAX, 0),
        // 17: plus a random one of its sockets
        op(
            BPF_LD | BPF_W | BPF_ABS,
            (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32,
        ),
        op(BPF_ALU | BPF_MOD | BPF_K, queues),
        op(BPF_ALU | BPF_ADD | BPF_X, 0),
        op(BPF_RET | libc::BPF_A, 0),
    ]
}
