//! The connection types the proxy wraps around Pingora's (the head guard, the TLS
//! connection) hand writes and Pingora's digest questions to the connection they wrap.

/// Implements `GetTimingDigest`, `GetProxyDigest` and `GetSocketDigest` for `$type` by
/// asking the connection `$inner` / `$inner_mut` name (expressions of `self`).
macro_rules! delegate_digests {
    ($type:ty, |$this:ident| $inner:expr, $inner_mut:expr) => {
        impl pingora::protocols::GetTimingDigest for $type {
            fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
                let $this = self;
                $inner.get_timing_digest()
            }

            fn get_read_pending_time(&self) -> std::time::Duration {
                let $this = self;
                $inner.get_read_pending_time()
            }

            fn get_write_pending_time(&self) -> std::time::Duration {
                let $this = self;
                $inner.get_write_pending_time()
            }
        }

        impl pingora::protocols::GetProxyDigest for $type {
            fn get_proxy_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::raw_connect::ProxyDigest>> {
                let $this = self;
                $inner.get_proxy_digest()
            }

            fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
                let $this = self;
                $inner_mut.set_proxy_digest(digest);
            }
        }

        impl pingora::protocols::GetSocketDigest for $type {
            fn get_socket_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::SocketDigest>> {
                let $this = self;
                $inner.get_socket_digest()
            }

            fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
                let $this = self;
                $inner_mut.set_socket_digest(digest);
            }
        }
    };
}

/// Implements `AsyncWrite` for `$type` by writing to its field `inner`.
macro_rules! delegate_writes {
    ($type:ty) => {
        impl tokio::io::AsyncWrite for $type {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
            }

            fn poll_shutdown(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.inner.is_write_vectored()
            }
        }
    };
}

pub(crate) use delegate_digests;
pub(crate) use delegate_writes;
