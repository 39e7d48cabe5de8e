//! One client connection: the listener's transport (TLS when it says so), SASL before anything else on SASL
//! listeners, then size-prefixed frames handled one at a time (a produce answered once durable while the
//! next request is read), responses leaving in request order (as Kafka guarantees).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};

use crate::broker::Broker;
use crate::dispatch::{dispatch_pipelined, Caller, Dispatched};
use crate::protocol::FixedHeader;
use crate::request::Reply;
use crate::security::authenticator::{Authenticator, Gate};
use crate::security::{Listener, Principal};

/// A TLS handshake that has not finished by then is dropped (a peer that connects and stays silent would
/// otherwise hold a slot until the idle timeout).
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection until the peer closes, it sits idle for `connections.max.idle.ms`, a request is
/// refused, or the broker shuts down (checked between requests, so a request in flight is answered first).
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    broker: Arc<Broker>,
    listener: Arc<Listener>,
    shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    broker.metrics.connection_opened();
    match &listener.tls {
        None => {
            let auth = Authenticator::new(Arc::clone(&listener), Principal::anonymous());
            frames(stream, peer, &broker, auth, shutdown).await;
        }
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
            match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => match tls_principal(&listener, &stream) {
                    Ok(principal) => {
                        let auth = Authenticator::new(Arc::clone(&listener), principal);
                        frames(stream, peer, &broker, auth, shutdown).await;
                    }
                    Err(reason) => {
                        broker.metrics.authentication(&listener.name, "SSL", false);
                        tracing::info!(%peer, listener = %listener.name, %reason, "closing connection");
                    }
                },
                // Plaintext to a TLS port, an untrusted or missing client certificate, ...: the client's
                // own TLS error tells it what happened; the broker notes it quietly.
                Ok(Err(e)) => {
                    broker.metrics.authentication(&listener.name, "SSL", false);
                    tracing::info!(%peer, listener = %listener.name, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    tracing::info!(%peer, listener = %listener.name, "TLS handshake timed out")
                }
            }
        }
    }
    broker.metrics.connection_closed();
}

/// The principal a TLS connection starts with: its client certificate's subject mapped by
/// `ssl.principal.mapping.rules`, or ANONYMOUS without one.
fn tls_principal(
    listener: &Listener,
    stream: &tokio_rustls::server::TlsStream<TcpStream>,
) -> Result<Principal, String> {
    let Some(cert) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    else {
        return Ok(Principal::anonymous());
    };
    let subject = crate::security::tls::certificate_subject(cert)
        .ok_or("cannot read the client certificate's subject")?;
    listener
        .principal_mapper
        .map(&subject)
        .map(Principal::user)
        .ok_or_else(|| format!("no ssl.principal.mapping.rules rule matches '{subject}'"))
}

/// How many answers a connection may have queued: produce requests past the first are read and their
/// appends begun while earlier ones wait for durability (Kafka clients keep up to five in flight).
const MAX_QUEUED_ANSWERS: usize = 8;

/// One answer on its way to the writer, in request order.
enum Answer<'a> {
    /// `more`: further requests were already buffered when it was queued, so the write can wait for
    /// theirs and leave in one go.
    Reply(Dispatched<'a>, bool),
    /// Answered once everything queued before it is written.
    Drained(oneshot::Sender<()>),
}

/// Reads requests and writes answers side by side. Requests are handled one at a time, in order, except
/// that a produce is answered later: the next request is read while its appends become durable, so
/// pipelined produce requests share commit rounds. Anything else waits until every earlier answer is out,
/// so it sees those appends done, as it would on Kafka.
async fn frames<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    peer: SocketAddr,
    broker: &Broker,
    auth: Authenticator,
    shutdown: watch::Receiver<bool>,
) {
    let (rd, wr) = tokio::io::split(stream);
    let reader = BufReader::with_capacity(64 * 1024, rd);
    let writer = BufWriter::with_capacity(64 * 1024, wr);
    let (answers, queued) = mpsc::channel(MAX_QUEUED_ANSWERS);
    let read = read_requests(reader, peer, broker, auth, shutdown, answers);
    let write = write_answers(writer, peer, queued);
    tokio::pin!(read, write);
    tokio::select! {
        // The reader stopped (peer closed, idle, shutdown, a refused request): what it queued still goes out.
        _ = &mut read => write.await,
        // A write failed or an answer closes the connection: nothing more is read.
        _ = &mut write => {}
    }
}

async fn read_requests<'a, R: AsyncRead + Unpin>(
    mut reader: BufReader<R>,
    peer: SocketAddr,
    broker: &'a Broker,
    mut auth: Authenticator,
    mut shutdown: watch::Receiver<bool>,
    answers: mpsc::Sender<Answer<'a>>,
) {
    let max = broker.config.max_request_bytes();
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms());
    let mut later_queued = false;
    loop {
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            read = tokio::time::timeout(idle, read_frame(&mut reader, auth.frame_limit(max))) => match read {
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
        let is_produce =
            FixedHeader::peek(&frame).is_some_and(|h| h.api_key == ApiKey::Produce as i16);
        if later_queued && !is_produce {
            let (done, drained) = oneshot::channel();
            if answers.send(Answer::Drained(done)).await.is_err() || drained.await.is_err() {
                break;
            }
            later_queued = false;
        }
        let (answer, mute) = match auth.on_frame(broker, &frame) {
            Gate::Answered(reply) => (Dispatched::Ready(reply), Duration::ZERO),
            Gate::Dispatch => {
                let caller = Caller {
                    peer,
                    listener: Arc::clone(auth.listener()),
                    principal: Arc::clone(auth.principal()),
                };
                dispatch_pipelined(broker, frame, &caller).await
            }
        };
        let closes = matches!(
            answer,
            Dispatched::Ready(Reply::Close(_) | Reply::FrameThenClose(..))
        );
        later_queued |= matches!(answer, Dispatched::Later(_));
        let more = !reader.buffer().is_empty() && mute.is_zero();
        if answers.send(Answer::Reply(answer, more)).await.is_err() || closes {
            break;
        }
        // Over quota: the response goes out (with throttle_time_ms); nothing more is read for that long,
        // as Kafka mutes the channel. Shutdown still ends the wait.
        if !mute.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(mute) => {}
                _ = shutdown.changed() => break,
            }
        }
    }
}

async fn write_answers<W: AsyncWrite + Unpin>(
    mut writer: BufWriter<W>,
    peer: SocketAddr,
    mut queued: mpsc::Receiver<Answer<'_>>,
) {
    while let Some(answer) = queued.recv().await {
        let (reply, more) = match answer {
            Answer::Reply(answer, more) => (answer.reply().await, more),
            Answer::Drained(done) => {
                if writer.flush().await.is_err() {
                    break;
                }
                let _ = done.send(());
                continue;
            }
        };
        match reply {
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
            Reply::FrameThenClose(bytes, reason) => {
                let _ = writer.write_all(&bytes).await;
                tracing::info!(%peer, %reason, "closing connection");
                break;
            }
        }
        // Answers to pipelined requests go out together in one write.
        if !more && queued.is_empty() && writer.flush().await.is_err() {
            break;
        }
    }
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
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
