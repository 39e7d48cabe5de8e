//! The topic catalog of a cluster, in `runnel_topics`: every change is one database transaction that
//! also creates or drops the partitions' rows and tells the `runnel_topics` channel, so every broker's
//! in-memory mirror follows within a notification (and a periodic re-read covers a lost one).

use std::collections::BTreeMap;

use runnel_storage::TopicMeta;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, GenericClient};
use uuid::Uuid;

use super::batch_index;

pub const CHANNEL: &str = "runnel_topics";

#[derive(Debug, thiserror::Error)]
pub enum TopicTableError {
    #[error("topic already exists: {0}")]
    Exists(String),
    #[error("unknown topic: {0}")]
    Unknown(String),
    #[error("metadata database: {0}")]
    Postgres(#[from] tokio_postgres::Error),
}

fn meta_of(row: &tokio_postgres::Row) -> TopicMeta {
    let configs: serde_json::Value = row.get(3);
    let configs = configs
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let assignments: serde_json::Value = row.get(6);
    TopicMeta {
        id: row.get(0),
        name: row.get(1),
        partitions: row.get(2),
        configs,
        internal: row.get(4),
        replication_factor: row.get(5),
        assignments: assignments_of(&assignments),
    }
}

/// `{"partition": [node ids]}`; entries that do not parse are left out (Metadata then places them).
fn assignments_of(json: &serde_json::Value) -> BTreeMap<i32, Vec<i32>> {
    let Some(map) = json.as_object() else {
        return BTreeMap::new();
    };
    map.iter()
        .filter_map(|(p, nodes)| {
            let nodes = nodes
                .as_array()?
                .iter()
                .map(|n| n.as_i64().and_then(|n| i32::try_from(n).ok()))
                .collect::<Option<Vec<i32>>>()?;
            Some((p.parse().ok()?, nodes))
        })
        .collect()
}

fn assignments_json(assignments: &BTreeMap<i32, Vec<i32>>) -> serde_json::Value {
    serde_json::Value::Object(
        assignments
            .iter()
            .map(|(p, nodes)| (p.to_string(), serde_json::json!(nodes)))
            .collect(),
    )
}

const COLUMNS: &str =
    "topic_id, name, partitions, configs, internal, replication_factor, assignments";

fn configs_json(configs: &BTreeMap<String, String>) -> serde_json::Value {
    serde_json::Value::Object(
        configs
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect(),
    )
}

pub async fn load_all(client: &impl GenericClient) -> Result<Vec<TopicMeta>, TopicTableError> {
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM runnel_topics ORDER BY name"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(meta_of).collect())
}

async fn notify(tx: &impl GenericClient, name: &str) -> Result<(), tokio_postgres::Error> {
    tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &name])
        .await?;
    Ok(())
}

/// Records a new topic and its partitions.
pub async fn create(client: &mut Client, meta: &TopicMeta) -> Result<(), TopicTableError> {
    let tx = client.transaction().await?;
    let inserted = tx
        .execute(
            &format!("INSERT INTO runnel_topics ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"),
            &[
                &meta.id,
                &meta.name,
                &meta.partitions,
                &configs_json(&meta.configs),
                &meta.internal,
                &meta.replication_factor,
                &assignments_json(&meta.assignments),
            ],
        )
        .await;
    match inserted {
        Ok(_) => {}
        Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            return Err(TopicTableError::Exists(meta.name.clone()))
        }
        Err(e) => return Err(e.into()),
    }
    batch_index::create_partitions(&tx, meta.id, meta.partitions).await?;
    notify(&tx, &meta.name).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a topic with every row of its partitions; the objects its batches were in are left to the
/// collector of unreferenced objects.
pub async fn delete(client: &mut Client, name: &str) -> Result<TopicMeta, TopicTableError> {
    let tx = client.transaction().await?;
    let row = tx
        .query_opt(
            &format!("DELETE FROM runnel_topics WHERE name = $1 RETURNING {COLUMNS}"),
            &[&name],
        )
        .await?
        .ok_or_else(|| TopicTableError::Unknown(name.to_string()))?;
    let meta = meta_of(&row);
    for table in [
        "runnel_batches",
        "runnel_producer_batches",
        "runnel_txn_open",
        "runnel_txn_aborted",
        "runnel_partitions",
    ] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE topic_id = $1"),
            &[&meta.id],
        )
        .await?;
    }
    notify(&tx, name).await?;
    tx.commit().await?;
    Ok(meta)
}

/// Grows a topic to `count` partitions, adding `assignments` (the new partitions' named replicas).
pub async fn set_partitions(
    client: &mut Client,
    topic_id: Uuid,
    name: &str,
    count: i32,
    assignments: &BTreeMap<i32, Vec<i32>>,
) -> Result<(), TopicTableError> {
    let tx = client.transaction().await?;
    let changed = tx
        .execute(
            "UPDATE runnel_topics SET partitions = $2, assignments = assignments || $3
             WHERE topic_id = $1 AND partitions < $2",
            &[&topic_id, &count, &assignments_json(assignments)],
        )
        .await?;
    if changed == 0 {
        return Err(TopicTableError::Unknown(name.to_string()));
    }
    batch_index::create_partitions(&tx, topic_id, count).await?;
    notify(&tx, name).await?;
    tx.commit().await?;
    Ok(())
}

/// Replaces a topic's config overrides.
pub async fn set_configs(
    client: &mut Client,
    name: &str,
    configs: &BTreeMap<String, String>,
) -> Result<(), TopicTableError> {
    let tx = client.transaction().await?;
    let changed = tx
        .execute(
            "UPDATE runnel_topics SET configs = $2 WHERE name = $1",
            &[&name, &configs_json(configs)],
        )
        .await?;
    if changed == 0 {
        return Err(TopicTableError::Unknown(name.to_string()));
    }
    notify(&tx, name).await?;
    tx.commit().await?;
    Ok(())
}
