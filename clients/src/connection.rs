//! One TCP connection to one broker, shared by every caller: requests are written as they come and answers
//! routed back by correlation id, so many requests can be in flight at once (pipelining). The versions the
//! broker supports are learned with ApiVersions when connecting.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::error::{ClientError, Result};
use crate::sasl::ClientExchange;
use crate::security::{SaslCredentials, Security};

type Pending = Arc<Mutex<HashMap<i32, oneshot::Sender<Bytes>>>>;

/// The highest version of each API this client implements; the broker's range narrows it further.
pub fn client_max(key: ApiKey) -> i16 {
    match key {
        ApiKey::Produce => 9,
        ApiKey::Fetch => 12,
        ApiKey::ListOffsets => 7,
        ApiKey::Metadata => 12,
        ApiKey::OffsetCommit => 8,
        ApiKey::OffsetFetch => 7,
        ApiKey::FindCoordinator => 3,
        ApiKey::JoinGroup => 9,
        ApiKey::SyncGroup => 5,
        ApiKey::Heartbeat => 4,
        ApiKey::LeaveGroup => 5,
        ApiKey::InitProducerId => 4,
        ApiKey::AddPartitionsToTxn => 3,
        ApiKey::AddOffsetsToTxn => 3,
        ApiKey::EndTxn => 3,
        ApiKey::TxnOffsetCommit => 3,
        ApiKey::CreateTopics => 7,
        ApiKey::DeleteTopics => 5,
        ApiKey::DescribeConfigs => 4,
        ApiKey::IncrementalAlterConfigs => 1,
        ApiKey::CreatePartitions => 3,
        ApiKey::DescribeGroups => 5,
        ApiKey::ListGroups => 4,
        ApiKey::DeleteGroups => 2,
        ApiKey::DeleteRecords => 2,
        ApiKey::DescribeCluster => 1,
        ApiKey::OffsetDelete => 0,
        ApiKey::CreateAcls | ApiKey::DescribeAcls | ApiKey::DeleteAcls => 3,
        ApiKey::SaslHandshake => 1,
        ApiKey::SaslAuthenticate => 1,
        _ => 0,
    }
}

/// A broker in this process: the co-located processor reaches it without a socket.
pub trait InProcess: Send + Sync {
    /// Answers one request frame (without its size prefix) with a response frame (without its size prefix),
    /// or None when the request gets no answer (acks=0) or the broker closes the "connection".
    fn handle(&self, frame: Bytes) -> Pin<Box<dyn Future<Output = Option<Bytes>> + Send>>;
}

/// Hands a response frame (at least 4 bytes: it starts with the correlation id) to the request waiting for it.
fn deliver(pending: &Pending, frame: Bytes) {
    let correlation = i32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let waiter = pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&correlation);
    if let Some(w) = waiter {
        let _ = w.send(frame);
    }
}

/// Requests go to the in-process broker one at a time, in order, as over one socket.
fn spawn_in_process(
    broker: Arc<dyn InProcess>,
    pending: &Pending,
    alive: &Arc<AtomicBool>,
) -> mpsc::UnboundedSender<Bytes> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let pending = Arc::clone(pending);
    let alive = Arc::clone(alive);
    tokio::spawn(async move {
        while let Some(mut frame) = rx.recv().await {
            frame.advance(4);
            let Some(answer) = broker.handle(frame).await else {
                continue;
            };
            if answer.len() < 4 {
                break;
            }
            deliver(&pending, answer);
        }
        alive.store(false, Ordering::SeqCst);
        pending.lock().unwrap_or_else(|p| p.into_inner()).clear();
    });
    tx
}

async fn spawn_socket(
    addr: &str,
    timeout: Duration,
    security: &Security,
    pending: &Pending,
    alive: &Arc<AtomicBool>,
) -> Result<mpsc::UnboundedSender<Bytes>> {
    let conn_err = |reason: String| ClientError::Connection {
        addr: addr.to_string(),
        reason,
    };
    let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| conn_err(format!("no answer within {} ms", timeout.as_millis())))?
        .map_err(|e| conn_err(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    match &security.tls {
        None => Ok(spawn_io(stream, addr, pending, alive)),
        Some(tls) => {
            let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let name = rustls::pki_types::ServerName::try_from(host.to_string())
                .map_err(|e| conn_err(format!("bad TLS server name {host}: {e}")))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(tls));
            let stream = tokio::time::timeout(timeout, connector.connect(name, stream))
                .await
                .map_err(|_| conn_err("TLS handshake timed out".into()))?
                .map_err(|e| {
                    ClientError::Authentication(format!("TLS handshake with {addr} failed: {e}"))
                })?;
            Ok(spawn_io(stream, addr, pending, alive))
        }
    }
}

/// The writer and reader tasks of one socket, plain or TLS.
fn spawn_io<S: AsyncRead + AsyncWrite + Send + 'static>(
    stream: S,
    addr: &str,
    pending: &Pending,
    alive: &Arc<AtomicBool>,
) -> mpsc::UnboundedSender<Bytes> {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let writer_alive = Arc::clone(alive);
    tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
        writer_alive.store(false, Ordering::SeqCst);
    });
    let reader_pending = Arc::clone(pending);
    let reader_alive = Arc::clone(alive);
    let peer = addr.to_string();
    tokio::spawn(async move {
        while let Ok(len) = rd.read_i32().await {
            if len < 4 {
                tracing::warn!(broker = %peer, len, "malformed response frame");
                break;
            }
            let mut frame = BytesMut::zeroed(len as usize);
            if rd.read_exact(&mut frame).await.is_err() {
                break;
            }
            deliver(&reader_pending, frame.freeze());
        }
        reader_alive.store(false, Ordering::SeqCst);
        // Dropping the senders fails every request still waiting.
        reader_pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    });
    tx
}

pub struct Connection {
    addr: String,
    client_id: StrBytes,
    timeout: Duration,
    out: mpsc::UnboundedSender<Bytes>,
    pending: Pending,
    next_correlation: AtomicI32,
    versions: HashMap<i16, (i16, i16)>,
    alive: Arc<AtomicBool>,
}

impl Connection {
    pub async fn connect(
        addr: &str,
        client_id: &str,
        timeout: Duration,
    ) -> Result<Arc<Connection>> {
        Self::open(addr, client_id, timeout, &Security::default(), None).await
    }

    /// Connects over TCP, or hands frames to `in_process` when the broker runs in this process.
    pub async fn open(
        addr: &str,
        client_id: &str,
        timeout: Duration,
        security: &Security,
        in_process: Option<&Arc<dyn InProcess>>,
    ) -> Result<Arc<Connection>> {
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let alive = Arc::new(AtomicBool::new(true));
        let tx = match in_process {
            Some(broker) => spawn_in_process(Arc::clone(broker), &pending, &alive),
            None => spawn_socket(addr, timeout, security, &pending, &alive).await?,
        };
        let mut conn = Connection {
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            timeout,
            out: tx,
            pending,
            next_correlation: AtomicI32::new(1),
            versions: HashMap::new(),
            alive,
        };
        let mut resp: ApiVersionsResponse =
            conn.call_version(&ApiVersionsRequest::default(), 3).await?;
        if resp.error_code != 0 {
            // An older broker answers an unknown ApiVersions version in v0 with its range.
            resp = conn.call_version(&ApiVersionsRequest::default(), 0).await?;
        }
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let (None, Some(creds)) = (in_process, &security.sasl) {
            conn.authenticate(creds).await?;
        }
        Ok(Arc::new(conn))
    }

    /// SaslHandshake v1, then SaslAuthenticate until the mechanism's exchange is complete.
    async fn authenticate(&self, creds: &SaslCredentials) -> Result<()> {
        let refused = |what: String| ClientError::Authentication(format!("{}: {what}", self.addr));
        let hs: SaslHandshakeResponse = self
            .call_version(
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_string(creds.mechanism.clone())),
                1,
            )
            .await?;
        if hs.error_code != 0 {
            let offered: Vec<String> = hs.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(refused(format!(
                "the broker does not enable {} (it offers {})",
                creds.mechanism,
                offered.join(", ")
            )));
        }
        let mut exchange = ClientExchange::new(creds)?;
        let mut message = exchange.first();
        loop {
            let resp: SaslAuthenticateResponse = self
                .call_version(
                    &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message)),
                    1,
                )
                .await?;
            if resp.error_code != 0 {
                return Err(refused(resp.error_message.map_or_else(
                    || format!("error {}", resp.error_code),
                    |m| m.to_string(),
                )));
            }
            match exchange.next(&resp.auth_bytes)? {
                Some(next) => message = next,
                None => return Ok(()),
            }
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    /// The version to use for an API: the highest this client implements that the broker supports.
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        let (lo, hi) = self.versions.get(&(key as i16)).copied().ok_or_else(|| {
            ClientError::Protocol(format!("broker {} does not support {key:?}", self.addr))
        })?;
        let crate_range = key.valid_versions();
        let v = client_max(key).min(hi).min(crate_range.max);
        if v < lo.max(crate_range.min) {
            return Err(ClientError::Protocol(format!(
                "no common version of {key:?} with broker {} (it supports {lo}-{hi})",
                self.addr
            )));
        }
        Ok(v)
    }

    fn encode<R: Request>(&self, req: &R, version: i16) -> Result<(i32, Bytes)> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| ClientError::Protocol(format!("unknown api key {}", R::KEY)))?;
        let correlation = self.next_correlation.fetch_add(1, Ordering::Relaxed);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .and_then(|()| req.encode(&mut buf, version))
            .map_err(|e| ClientError::Protocol(format!("cannot encode {key:?} v{version}: {e}")))?;
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        Ok((correlation, buf.freeze()))
    }

    /// Sends a request with the version [`Connection::version`] picks and waits for its answer.
    pub async fn call<R: Request>(&self, req: &R) -> Result<R::Response> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| ClientError::Protocol(format!("unknown api key {}", R::KEY)))?;
        let version = self.version(key)?;
        self.call_version(req, version).await
    }

    /// Sends a request in a given version and waits for its answer.
    pub async fn call_version<R: Request>(&self, req: &R, version: i16) -> Result<R::Response> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| ClientError::Protocol(format!("unknown api key {}", R::KEY)))?;
        let (correlation, frame) = self.encode(req, version)?;
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(correlation, tx);
        if !self.is_alive() || self.out.send(frame).is_err() {
            self.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&correlation);
            return Err(self.closed());
        }
        let frame = match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(f)) => f,
            Ok(Err(_)) => return Err(self.closed()),
            Err(_) => {
                self.pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&correlation);
                return Err(ClientError::Timeout {
                    what: format!("{key:?} to {}", self.addr),
                    ms: self.timeout.as_millis() as u64,
                });
            }
        };
        let mut body = frame;
        ResponseHeader::decode(&mut body, key.response_header_version(version))
            .map_err(|e| ClientError::Protocol(format!("bad {key:?} response header: {e}")))?;
        let resp = R::Response::decode(&mut body, version).map_err(|e| {
            ClientError::Protocol(format!("cannot decode {key:?} v{version} response: {e}"))
        })?;
        if body.has_remaining() {
            tracing::debug!(
                ?key,
                version,
                trailing = body.remaining(),
                "trailing bytes in response"
            );
        }
        Ok(resp)
    }

    /// Sends a request that gets no answer (Produce with acks=0).
    pub fn send_only<R: Request>(&self, req: &R) -> Result<()> {
        let key = ApiKey::try_from(R::KEY)
            .map_err(|_| ClientError::Protocol(format!("unknown api key {}", R::KEY)))?;
        let (_, frame) = self.encode(req, self.version(key)?)?;
        self.out.send(frame).map_err(|_| self.closed())
    }

    fn closed(&self) -> ClientError {
        ClientError::Connection {
            addr: self.addr.clone(),
            reason: "connection closed".into(),
        }
    }
}
