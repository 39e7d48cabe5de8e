//! Cluster membership by leases: each broker holds a row in `runnel_brokers` that its heartbeat keeps
//! alive; live brokers are the rows whose lease has not run out by the database's clock. A new start of the
//! same node id takes the row over only once the old lease has expired, and every later write names the
//! incarnation, so two processes never both believe they are node N.

use std::time::Duration;

use tokio_postgres::Client;
use uuid::Uuid;

/// Told on every registration and clean leave, so the other brokers list the change at once rather than
/// at their next heartbeat (a broker restarted on a new address would otherwise be listed at its old one).
pub const CHANNEL: &str = "runnel_brokers";

async fn announce(client: &Client, node_id: i32) -> Result<(), tokio_postgres::Error> {
    client
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &node_id.to_string()],
        )
        .await
        .map(|_| ())
}

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("node id {0} is held by another live broker (its lease has not run out); pick another --node-id or stop that broker")]
    NodeIdInUse(i32),
    #[error("node id {0} was taken over by another broker while this one was away; this broker must stop")]
    Lost(i32),
    #[error("metadata database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

/// A broker as Metadata lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveBroker {
    pub node_id: i32,
    /// Advertised listeners, `NAME://HOST:PORT,...`.
    pub listeners: String,
    pub rack: Option<String>,
}

/// What a heartbeat found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Renewal {
    /// The lease had run out before this renewal (a pause, a lost database): others may have treated this
    /// broker as dead meanwhile, so what it owned by lease must be claimed again.
    pub had_expired: bool,
}

/// This broker's registration.
pub struct Registry {
    client: Client,
    node_id: i32,
    incarnation: Uuid,
    session_timeout: Duration,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Registry {
    /// Registers `node_id`, taking over its row only if the previous holder's lease has run out.
    pub async fn register(
        client: Client,
        node_id: i32,
        listeners: &str,
        rack: Option<&str>,
        session_timeout: Duration,
    ) -> Result<Self, RegistryError> {
        let incarnation = Uuid::new_v4();
        let taken = client
            .query_opt(
                "INSERT INTO runnel_brokers (node_id, incarnation, listeners, rack, lease_until)
                 VALUES ($1, $2, $3, $4, now() + $5::bigint * interval '1 millisecond')
                 ON CONFLICT (node_id) DO UPDATE
                     SET incarnation = EXCLUDED.incarnation, listeners = EXCLUDED.listeners,
                         rack = EXCLUDED.rack, started_at = now(), lease_until = EXCLUDED.lease_until
                     WHERE runnel_brokers.lease_until < now()
                 RETURNING incarnation",
                &[
                    &node_id,
                    &incarnation,
                    &listeners,
                    &rack,
                    &millis(session_timeout),
                ],
            )
            .await?;
        if taken.is_none() {
            return Err(RegistryError::NodeIdInUse(node_id));
        }
        announce(&client, node_id).await?;
        tracing::info!(node_id, %incarnation, "registered in the cluster");
        Ok(Registry {
            client,
            node_id,
            incarnation,
            session_timeout,
        })
    }

    /// The same registration over a new connection (the old one was lost with the database).
    pub fn reconnected(self, client: Client) -> Self {
        Registry { client, ..self }
    }

    pub fn is_connected(&self) -> bool {
        !self.client.is_closed()
    }

    pub fn node_id(&self) -> i32 {
        self.node_id
    }

    pub fn incarnation(&self) -> Uuid {
        self.incarnation
    }

    /// Extends the lease by the session timeout; `Lost` when another start of this node id holds the row.
    pub async fn heartbeat(&self) -> Result<Renewal, RegistryError> {
        let row = self
            .client
            .query_opt(
                "WITH old AS (
                     SELECT lease_until FROM runnel_brokers
                     WHERE node_id = $1 AND incarnation = $2 FOR UPDATE
                 )
                 UPDATE runnel_brokers b
                 SET lease_until = now() + $3::bigint * interval '1 millisecond'
                 FROM old
                 WHERE b.node_id = $1 AND b.incarnation = $2
                 RETURNING old.lease_until < now()",
                &[
                    &self.node_id,
                    &self.incarnation,
                    &millis(self.session_timeout),
                ],
            )
            .await?;
        match row {
            Some(r) => Ok(Renewal {
                had_expired: r.get(0),
            }),
            None => Err(RegistryError::Lost(self.node_id)),
        }
    }

    /// The brokers whose lease holds now, by node id.
    pub async fn live(&self) -> Result<Vec<LiveBroker>, RegistryError> {
        live_brokers(&self.client).await
    }

    /// Gives the row up (a clean stop), so the others stop listing this broker at once.
    pub async fn leave(&self) -> Result<(), RegistryError> {
        self.client
            .execute(
                "DELETE FROM runnel_brokers WHERE node_id = $1 AND incarnation = $2",
                &[&self.node_id, &self.incarnation],
            )
            .await?;
        announce(&self.client, self.node_id).await?;
        tracing::info!(node_id = self.node_id, "left the cluster");
        Ok(())
    }
}

/// The brokers whose lease holds now, by node id (also for tools that are not brokers).
pub async fn live_brokers(client: &Client) -> Result<Vec<LiveBroker>, RegistryError> {
    let rows = client
        .query(
            "SELECT node_id, listeners, rack FROM runnel_brokers
             WHERE lease_until > now() ORDER BY node_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| LiveBroker {
            node_id: r.get(0),
            listeners: r.get(1),
            rack: r.get(2),
        })
        .collect())
}
