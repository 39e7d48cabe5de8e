//! The metadata database: a connection, and the schema migrations in `broker/migrations/`, applied in
//! order under an advisory lock so brokers starting together apply each one once.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, NoTls};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("metadata database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    #[error("metadata database: no answer to a new connection within {0:?}")]
    Handshake(Duration),
    #[error("metadata database: no answer within {0:?}")]
    NoAnswer(Duration),
}

/// A database error with its cause: tokio-postgres' own text is only "db error" for a server's answer.
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => match std::error::Error::source(e) {
            Some(cause) => format!("{e}: {cause}"),
            None => e.to_string(),
        },
    }
}

/// Every migration, oldest first; a released one is never edited, only followed by a new one.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/0001_brokers.sql")),
    (2, include_str!("../../migrations/0002_batches.sql")),
    (
        3,
        include_str!("../../migrations/0003_topics_and_transactions.sql"),
    ),
    (4, include_str!("../../migrations/0004_coordinators.sql")),
    (
        5,
        include_str!("../../migrations/0005_object_references.sql"),
    ),
    (6, include_str!("../../migrations/0006_documents.sql")),
    (7, include_str!("../../migrations/0007_commit_function.sql")),
    (8, include_str!("../../migrations/0008_txn_marker_rows.sql")),
    (9, include_str!("../../migrations/0009_topic_replicas.sql")),
];

/// Any constant both sides agree on: the advisory lock serialising migrations across brokers.
const MIGRATION_LOCK: i64 = 0x7275_6e6e_656c; // "runnel"

/// The connection settings of `url`, with a connect timeout and TCP keepalives unless the URL sets them: a
/// database behind a cut network must fail a connect or a query within seconds, not hang it (the defaults
/// would wait for the kernel's TCP timeouts, minutes).
pub fn config(url: &str) -> Result<tokio_postgres::Config, DbError> {
    let mut config: tokio_postgres::Config = url.parse()?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(5));
    }
    if config.get_options().is_none() {
        // A broker cut off in the middle of a transaction must not keep its row locks (partitions' offsets,
        // coordinator claims) until the server's TCP keepalive notices, hours by default: the server ends
        // such a session itself, and a statement waits for a lock only so long.
        config.options("-c idle_in_transaction_session_timeout=10000 -c lock_timeout=10000");
    }
    config
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3)
        // Keepalives only probe an idle connection; this bounds a query whose bytes the peer never acknowledges.
        .tcp_user_timeout(Duration::from_secs(10));
    Ok(config)
}

/// The whole of opening a connection (TCP, then the server's startup answers) may take this long:
/// tokio-postgres' connect timeout covers only the TCP part, and a server that accepts but never answers
/// (a stuck proxy, a half-cut network) would otherwise hang the caller for good.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens a connection with `config`, giving up after [`HANDSHAKE_TIMEOUT`].
pub async fn handshake(
    config: &tokio_postgres::Config,
) -> Result<
    (
        Client,
        tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
    ),
    DbError,
> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, config.connect(NoTls)).await {
        Ok(connected) => Ok(connected?),
        Err(_) => Err(DbError::Handshake(HANDSHAKE_TIMEOUT)),
    }
}

/// Connects to the metadata database; the connection's I/O runs on its own task until the client drops.
pub async fn connect(url: &str) -> Result<Client, DbError> {
    let (client, connection) = handshake(&config(url)?).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "metadata database connection ended");
        }
    });
    Ok(client)
}

/// Brings the schema to the newest version; returns the versions applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, DbError> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS runnel_schema_migrations (
             version    INTEGER PRIMARY KEY,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )
    .await?;
    let done: Vec<i32> = tx
        .query("SELECT version FROM runnel_schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS {
        if done.contains(version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO runnel_schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .await?;
        applied.push(*version);
    }
    tx.commit().await?;
    if !applied.is_empty() {
        tracing::info!(versions = ?applied, "metadata schema migrated");
    }
    Ok(applied)
}

/// A connection for queries that is re-made when the database comes back after losing it (a restart, a
/// network cut). A tokio-postgres client pipelines concurrent queries on one connection, so one is shared.
pub struct Db {
    url: String,
    client: tokio::sync::Mutex<Option<Arc<Client>>>,
}

impl Db {
    pub fn new(url: String) -> Self {
        Db {
            url,
            client: tokio::sync::Mutex::new(None),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The live connection, connecting first if there is none or it has closed.
    pub async fn client(&self) -> Result<Arc<Client>, DbError> {
        let mut slot = self.client.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(c));
        }
        let fresh = Arc::new(connect(&self.url).await?);
        *slot = Some(Arc::clone(&fresh));
        Ok(fresh)
    }
}
