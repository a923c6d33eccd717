//! Hands the TLS connections the proxy opens to its upstreams ([`super::origination`]) to
//! Pingora as real sockets, so that Pingora pools and reuses them.
//!
//! Pingora 0.9 reuses a pooled connection only when `getpeername` of its file descriptor is the
//! peer's address; a connection Pingora did not open itself (its "virtual" sockets) has no
//! descriptor and is never reused (cloudflare/pingora#883), so every request would pay a TCP
//! and TLS handshake. Instead, each established TLS connection is paired with a Unix socket
//! connected to this process's own listener, whose path is the peer's address: Pingora speaks
//! HTTP over that socket (and pools it like any other) while a relay task moves the bytes
//! between it and the TLS connection. Either end closing closes the other.
//!
//! The listener lives in a private directory (mode 0700) under `$TMPDIR` (`/tmp`, an
//! `emptyDir` in the proxy's pod), made the first time an upstream needs TLS. It accepts only
//! connections this process made, one at a time, each right after making it.

use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use pingora::protocols::l4::socket::SocketAddr;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Mutex;

/// How long one direction of a relay may go on after the other ended (a half-closed
/// connection), before both are closed.
const HALF_CLOSED_GRACE: Duration = Duration::from_secs(10);

/// The process's handoff listener.
#[derive(Debug)]
pub struct Handoff {
    /// The listener's path, as Pingora's peer address.
    address: SocketAddr,
    path: PathBuf,
    /// Held from connecting to accepting, so that each accept takes the connection just made.
    listener: Mutex<UnixListener>,
}

impl Handoff {
    /// The process's handoff listener, made on first use (within a Tokio runtime).
    pub fn get() -> Result<&'static Handoff, String> {
        static HANDOFF: OnceLock<Result<Handoff, String>> = OnceLock::new();
        HANDOFF
            .get_or_init(|| Handoff::bind(&std::env::temp_dir()))
            .as_ref()
            .map_err(Clone::clone)
    }

    fn bind(temp: &Path) -> Result<Handoff, String> {
        let directory = temp.join(format!("gatehouse-proxy.{}", std::process::id()));
        let failed = |what: &str, e: io::Error| format!("{what} {}: {e}", directory.display());
        // A container restarted in the same pod finds its previous run's directory.
        match std::fs::remove_dir_all(&directory) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(failed("removing", e)),
            _ => {}
        }
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&directory)
            .map_err(|e| failed("creating", e))?;
        let path = directory.join("upstream-tls.sock");
        let listener = UnixListener::bind(&path).map_err(|e| failed("listening in", e))?;
        let address = std::os::unix::net::SocketAddr::from_pathname(&path)
            .map_err(|e| failed("naming a socket in", e))?;
        Ok(Handoff {
            address: SocketAddr::Unix(address),
            path,
            listener: Mutex::new(listener),
        })
    }

    /// The address of the peers whose connections come from here.
    pub fn address(&self) -> &SocketAddr {
        &self.address
    }

    /// A Unix socket that carries `connection`'s bytes both ways until either closes.
    pub async fn hand_over<C>(&self, connection: C) -> io::Result<UnixStream>
    where
        C: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (ours, theirs) = {
            let listener = self.listener.lock().await;
            let ours = UnixStream::connect(&self.path).await?;
            let theirs = loop {
                let (accepted, _) = listener.accept().await?;
                // Someone else sharing the directory's user, ahead of us in the queue.
                if accepted.peer_cred()?.pid() == Some(std::process::id() as i32) {
                    break accepted;
                }
            };
            (ours, theirs)
        };
        tokio::spawn(relay(theirs, connection));
        Ok(ours)
    }
}

/// Moves bytes between Pingora's end of the pair and the connection until both directions end
/// (either with an error), or one did [`HALF_CLOSED_GRACE`] ago.
async fn relay<C>(local: UnixStream, remote: C)
where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut local_read, mut local_write) = local.into_split();
    let (mut remote_read, mut remote_write) = tokio::io::split(remote);
    let upstream = async {
        let _ = tokio::io::copy(&mut local_read, &mut remote_write).await;
        let _ = remote_write.shutdown().await;
    };
    let downstream = async {
        let _ = tokio::io::copy(&mut remote_read, &mut local_write).await;
        let _ = local_write.shutdown().await;
    };
    tokio::pin!(upstream, downstream);
    tokio::select! {
        () = &mut upstream => {
            let _ = tokio::time::timeout(HALF_CLOSED_GRACE, downstream).await;
        }
        () = &mut downstream => {
            let _ = tokio::time::timeout(HALF_CLOSED_GRACE, upstream).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    /// A directory of its own for each test, removed at the end.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!("handoff-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&path);
            std::fs::create_dir(&path).unwrap();
            Self(path)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_a_close_reaches_the_other_end() {
        let temp = Scratch::new("both-ways");
        let handoff = Handoff::bind(temp.path()).unwrap();
        let (far, near) = tokio::io::duplex(64);
        let mut pingora_end = handoff.hand_over(near).await.unwrap();
        let mut far = far;

        // Pingora's socket is connected to the listener, the peer address it reuses by.
        let peer = pingora_end.peer_addr().unwrap();
        assert_eq!(peer.as_pathname(), Some(handoff.path.as_path()));
        assert_eq!(
            handoff.address().as_unix().unwrap().as_pathname(),
            Some(handoff.path.as_path())
        );

        pingora_end
            .write_all(b"GET / HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        let mut request = [0; 18];
        far.read_exact(&mut request).await.unwrap();
        assert_eq!(&request, b"GET / HTTP/1.1\r\n\r\n");

        far.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .await
            .unwrap();
        let mut response = [0; 27];
        pingora_end.read_exact(&mut response).await.unwrap();
        assert_eq!(&response, b"HTTP/1.1 204 No Content\r\n\r\n");

        // The upstream closing is an end of file on Pingora's side.
        drop(far);
        let mut rest = Vec::new();
        pingora_end.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn pingora_closing_closes_the_connection() {
        let temp = Scratch::new("pingora-closes");
        let handoff = Handoff::bind(temp.path()).unwrap();
        let (mut far, near) = tokio::io::duplex(64);
        let pingora_end = handoff.hand_over(near).await.unwrap();
        drop(pingora_end);
        let mut rest = Vec::new();
        far.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn concurrent_handoffs_pair_each_connection_with_its_own_socket() {
        let temp = Scratch::new("concurrent");
        let handoff = std::sync::Arc::new(Handoff::bind(temp.path()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..32u8 {
            let handoff = handoff.clone();
            tasks.push(tokio::spawn(async move {
                let (mut far, near) = tokio::io::duplex(64);
                let mut pingora_end = handoff.hand_over(near).await.unwrap();
                pingora_end.write_all(&[i]).await.unwrap();
                let mut byte = [0];
                far.read_exact(&mut byte).await.unwrap();
                byte[0]
            }));
        }
        for (i, task) in tasks.into_iter().enumerate() {
            assert_eq!(task.await.unwrap(), i as u8);
        }
    }

    #[test]
    fn a_stale_directory_of_a_previous_run_is_replaced() {
        let temp = Scratch::new("stale");
        let stale = temp
            .path()
            .join(format!("gatehouse-proxy.{}", std::process::id()));
        std::fs::create_dir(&stale).unwrap();
        std::fs::write(stale.join("upstream-tls.sock"), b"left over").unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handoff = runtime
            .block_on(async { Handoff::bind(temp.path()) })
            .unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(stale).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert!(handoff.path.exists());
    }
}
