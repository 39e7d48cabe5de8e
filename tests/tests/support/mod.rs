//! Starts the real `runnel` binary on 127.0.0.1:0 and talks the Kafka protocol to it over plain sockets.
#![allow(dead_code)]
// Test helpers: a failed expectation is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

/// The binary under test: $RUNNEL_BIN, else `runnel` beside this test's target directory.
pub fn binary() -> PathBuf {
    if let Ok(p) = std::env::var("RUNNEL_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/runnel
    exe.parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("runnel"))
        .expect("target directory")
}

pub struct Runnel {
    child: Child,
    pub addr: String,
    pub data_dir: tempfile::TempDir,
}

impl Runnel {
    pub fn start(sets: &[&str]) -> Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir.path());
        for s in sets {
            cmd.arg("--set").arg(s);
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", binary().display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("runnel listening on ")
            .with_context(|| format!("unexpected first line {line:?}"))?
            .to_string();
        Ok(Runnel {
            child,
            addr,
            data_dir,
        })
    }

    pub fn connect(&self) -> Result<Conn> {
        let stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Conn {
            stream,
            next_correlation: 1,
        })
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Runnel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Conn {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl Conn {
    /// Encodes and sends a request without reading the answer; returns its correlation id.
    pub fn send<R: Encodable>(&mut self, api: ApiKey, version: i16, body: &R) -> Result<i32> {
        let correlation = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(StrBytes::from_static_str("runnel-tests")));
        let mut buf = BytesMut::new();
        header.encode(&mut buf, api.request_header_version(version))?;
        body.encode(&mut buf, version)?;
        self.send_raw(&buf)?;
        Ok(correlation)
    }

    /// Sends bytes as one size-prefixed frame.
    pub fn send_raw(&mut self, frame: &[u8]) -> Result<()> {
        let mut out = Vec::with_capacity(frame.len() + 4);
        out.put_i32(frame.len() as i32);
        out.extend_from_slice(frame);
        self.stream.write_all(&out)?;
        Ok(())
    }

    /// Reads one response frame and decodes it, checking its correlation id.
    pub fn receive<R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        correlation: i32,
    ) -> Result<R> {
        let mut frame = self.read_frame()?;
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))?;
        if header.correlation_id != correlation {
            bail!(
                "expected correlation {correlation}, got {}",
                header.correlation_id
            );
        }
        let resp = R::decode(&mut frame, version)?;
        if frame.has_remaining() {
            bail!(
                "{} trailing bytes after {api:?} v{version} response",
                frame.remaining()
            );
        }
        Ok(resp)
    }

    pub fn call<Q: Encodable, R: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        body: &Q,
    ) -> Result<R> {
        let c = self.send(api, version, body)?;
        self.receive(api, version, c)
    }

    pub fn read_frame(&mut self) -> Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let mut frame = vec![0u8; i32::from_be_bytes(len).max(0) as usize];
        self.stream.read_exact(&mut frame)?;
        Ok(Bytes::from(frame))
    }

    /// True when the broker has closed this connection (a read returns end of stream or an error).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }
}

/// Apache Kafka 4.3.1 (single-node KRaft) started through scripts/kafka-ref, stopped on drop.
pub struct Kafka {
    child: Child,
    pub addr: String,
    _data_dir: tempfile::TempDir,
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

impl Kafka {
    pub fn start() -> Result<Self> {
        let lib = repo().join("tests/kafka/target/lib");
        if !lib.exists() {
            bail!(
                "Apache Kafka's jars are missing ({}); scripts/test fetches them",
                lib.display()
            );
        }
        let data_dir = tempfile::tempdir()?;
        let mut child = Command::new(repo().join("scripts/kafka-ref"))
            .arg("--port")
            .arg("0")
            .arg("--data-dir")
            .arg(data_dir.path().join("kafka"))
            .arg("--set")
            .arg("group.initial.rebalance.delay.ms=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting scripts/kafka-ref")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .split_whitespace()
            .last()
            .filter(|a| a.contains(':'))
            .with_context(|| format!("kafka-ref did not start: {line:?}"))?
            .to_string();
        Ok(Kafka {
            child,
            addr,
            _data_dir: data_dir,
        })
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
