//! Loopback ports for the processes a test starts, which bind them after the test picked them.
//!
//! Picking a port by binding port 0 and letting it go races twice: the kernel may give the same
//! ephemeral port to the next such pick (two listeners of one proxy on one address), or to an
//! upstream's port-0 bind or an outgoing connection before the process binds it. So ports come
//! from below the kernel's ephemeral range (32768–60999 by default), one process never hands out
//! one twice, and processes start at different offsets.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU32, Ordering};

/// First port handed out.
const FIRST: u32 = 20_000;
/// How many ports follow it.
const COUNT: u32 = 12_000;

/// A loopback port nothing listens on now, never returned before by this process.
pub fn free_port() -> u16 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let offset = std::process::id().wrapping_mul(613) % COUNT;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(n < COUNT, "all {COUNT} test ports were handed out");
        let port = u16::try_from(FIRST + (offset + n) % COUNT).expect("below 32000");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `127.0.0.1:` a [`free_port`].
pub fn free_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}
