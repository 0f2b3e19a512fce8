//! The few libc calls that std does not wrap: CPU accounting, send buffer size
//! and timer slack.

use std::os::fd::AsRawFd;

/// User and system CPU seconds this process has used so far.
pub(crate) fn cpu_self() -> (f64, f64) {
    // SAFETY: rusage is a plain C struct for which all-zero is valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we pass, which outlives the call.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    (tv(ru.ru_utime), tv(ru.ru_stime))
}

pub(crate) fn set_sndbuf(sock: &impl AsRawFd, bytes: usize) {
    let v: libc::c_int = bytes.min(i32::MAX as usize) as libc::c_int;
    // SAFETY: setsockopt reads sizeof(c_int) bytes from &v. Failure only
    // means a smaller buffer, which is fine.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            &v as *const libc::c_int as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Precise short sleeps keep pacing smooth at high rates.
pub(crate) fn set_timer_slack_1us() {
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer; failure is harmless.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
}
