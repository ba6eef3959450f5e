//! The HTTP server loop every role uses: HTTP/1.1 and cleartext HTTP/2
//! (prior knowledge) on one listener.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Per-stream HTTP/2 window: a whole blob can be in flight without waiting
/// for window updates.
pub const H2_STREAM_WINDOW_BYTES: u32 = 8 << 20;
/// Per-connection HTTP/2 window: several blobs in flight on one connection.
pub const H2_CONN_WINDOW_BYTES: u32 = 64 << 20;

/// Serves `router` on `listener` until `shutdown` resolves. Connections in
/// progress are dropped at shutdown; every write path is safe against that
/// (nothing is acknowledged before it is durable).
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .keep_alive(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(60));
    builder
        .http2()
        .initial_stream_window_size(H2_STREAM_WINDOW_BYTES)
        .initial_connection_window_size(H2_CONN_WINDOW_BYTES)
        .max_frame_size(1 << 20)
        .max_concurrent_streams(1024)
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20));
    let builder = std::sync::Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            _ = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        tokio::spawn(async move {
            if let Err(e) = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
