//! One client connection: read size-prefixed frames, handle them one at a time and write each response
//! before reading the next request's result, so responses leave in request order (as Kafka guarantees).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::broker::Broker;
use crate::dispatch::dispatch;
use crate::request::Reply;

/// Serves one connection until the peer closes, it sits idle for `connections.max.idle.ms`, a request is
/// refused, or the broker shuts down (checked between requests, so a request in flight is answered first).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    broker.metrics.connection_opened();
    let max = broker.config.max_request_bytes();
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms());
    let (rd, wr) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, rd);
    let mut writer = BufWriter::with_capacity(64 * 1024, wr);
    loop {
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            read = tokio::time::timeout(idle, read_frame(&mut reader, max)) => match read {
                Err(_) => {
                    tracing::info!(%peer, idle_ms = idle.as_millis() as u64, "closing idle connection (connections.max.idle.ms)");
                    break;
                }
                Ok(Ok(Some(frame))) => frame,
                // The peer closed (or reset) between requests: nothing to log.
                Ok(Ok(None)) => break,
                Ok(Err(reason)) => {
                    tracing::warn!(%peer, %reason, "closing connection");
                    break;
                }
            },
        };
        match dispatch(&broker, frame, peer).await {
            Reply::Frame(bytes) => {
                if writer.write_all(&bytes).await.is_err() {
                    break;
                }
            }
            Reply::Nothing => {}
            Reply::Close(reason) => {
                tracing::warn!(%peer, %reason, "closing connection");
                break;
            }
        }
        // Responses to pipelined requests already buffered go out together in one write.
        if reader.buffer().is_empty() && writer.flush().await.is_err() {
            break;
        }
    }
    let _ = writer.flush().await;
    broker.metrics.connection_closed();
}

/// Reads one size-prefixed request frame; `None` when the peer closed before a new one began. The buffer
/// grows with the bytes that arrive, so a peer announcing 100 MiB and sending a trickle costs a trickle.
async fn read_frame(
    reader: &mut (impl AsyncRead + Unpin),
    max: usize,
) -> Result<Option<Bytes>, String> {
    let Ok(len) = reader.read_i32().await else {
        return Ok(None);
    };
    if len < 0 || len as usize > max {
        return Err(format!(
            "request size {len} out of bounds (socket.request.max.bytes = {max})"
        ));
    }
    let len = len as usize;
    let mut frame = Vec::with_capacity(len.min(64 * 1024));
    let got = (&mut *reader)
        .take(len as u64)
        .read_to_end(&mut frame)
        .await
        .map_err(|e| format!("connection failed mid-frame: {e}"))?;
    if got < len {
        return Err(format!(
            "connection closed mid-frame ({got} of {len} bytes)"
        ));
    }
    Ok(Some(Bytes::from(frame)))
}
