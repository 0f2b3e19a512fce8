//! `--udp-spread`: datagrams of one sender spread over every UDP worker.
//!
//! With plain SO_REUSEPORT the kernel picks a group's socket by a hash of
//! the sender's address and port, so one busy sender lands on one worker and
//! the other cores idle. A classic BPF program attached to the group
//! (SO_ATTACH_REUSEPORT_CBPF) picks the socket instead: here a random index
//! per datagram, so every worker takes an even share of every sender. The
//! price: one sender's lines no longer pass through one worker in order, so
//! two updates of a gauge sent in the same interval may be applied in either
//! order (the last one merged wins); counters, timers and sets are unaffected.

use std::io;
use std::os::fd::AsRawFd;

/// Attaches the spreading program to the reuseport group of `sockets`
/// (bound in this order, all to one address): datagram goes to socket
/// `random % sockets.len()`. One socket needs nothing.
pub fn attach(sockets: &[std::net::UdpSocket]) -> io::Result<()> {
    let Some(first) = sockets.first() else {
        return Ok(());
    };
    if sockets.len() < 2 {
        return Ok(());
    }
    let mut program = program(sockets.len() as u32);
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
        return Err(io::Error::new(
            e.kind(),
            format!("--udp-spread: cannot attach the reuseport program: {e}"),
        ));
    }
    Ok(())
}

/// `A = random; A %= workers; return A`: the index of the group's socket.
fn program(workers: u32) -> [libc::sock_filter; 3] {
    let op = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    [
        op(
            libc::BPF_LD | libc::BPF_W | libc::BPF_ABS,
            (libc::SKF_AD_OFF + libc::SKF_AD_RANDOM) as u32,
        ),
        op(libc::BPF_ALU | libc::BPF_MOD | libc::BPF_K, workers),
        op(libc::BPF_RET | libc::BPF_A, 0),
    ]
}
