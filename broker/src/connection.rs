//! One client connection: read size-prefixed frames, handle them one at a time and write each response
//! before reading the next request's result, so responses leave in request order (as Kafka guarantees).

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

use crate::broker::Broker;
use crate::dispatch::{dispatch, Reply};

pub async fn serve(stream: TcpStream, peer: SocketAddr, broker: Arc<Broker>) {
    let _ = stream.set_nodelay(true);
    broker.metrics.connection_opened();
    let max = broker.config.max_request_bytes();
    let (rd, wr) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 * 1024, rd);
    let mut writer = BufWriter::with_capacity(64 * 1024, wr);
    // A failed read of the length means the peer closed (or reset): nothing to log.
    while let Ok(len) = reader.read_i32().await {
        if len < 0 || len as usize > max {
            tracing::warn!(%peer, len, max, "closing connection: request size out of bounds (socket.request.max.bytes)");
            break;
        }
        let mut frame = BytesMut::zeroed(len as usize);
        if let Err(e) = reader.read_exact(&mut frame).await {
            tracing::debug!(%peer, error = %e, "connection closed mid-frame");
            break;
        }
        match dispatch(&broker, frame.freeze(), peer).await {
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
