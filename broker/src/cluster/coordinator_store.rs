//! The coordinators' state in the metadata database. A group or transactional id is held by one broker at
//! a time: [`CoordinatorStore::claim`] bumps the key's epoch and loads its records; from then on the
//! coordinator's changes go through one writer task, in the order they were made, each batch one
//! transaction that first locks the claims of the keys it touches and drops the changes of every key this
//! broker no longer holds at the epoch it loaded. A broker paused or cut off past its lease therefore
//! cannot overwrite what the key's new holder wrote; the refused keys are reported so the coordinator
//! forgets them and answers NOT_COORDINATOR.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use tokio_postgres::Client;

use super::db::{describe, Db, DbError};

/// FindCoordinator's key types, which name the two kinds of keys in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyKind {
    Group,
    Transaction,
}

impl KeyKind {
    pub fn code(self) -> i16 {
        match self {
            KeyKind::Group => 0,
            KeyKind::Transaction => 1,
        }
    }

    fn of(code: i16) -> Option<Self> {
        match code {
            0 => Some(KeyKind::Group),
            1 => Some(KeyKind::Transaction),
            _ => None,
        }
    }
}

/// One change to a key's records.
#[derive(Debug, Clone)]
pub enum RecordWrite {
    Put {
        record: String,
        value: String,
    },
    Delete {
        record: String,
    },
    /// A group applied the outcome of a transaction: its marker row (by `seq`) goes.
    MarkerApplied {
        seq: i64,
    },
}

/// The keys one coordinator holds, with the epoch of each claim, and the store their changes go to.
pub struct HeldKeys {
    pub records: Arc<CoordinatorStore>,
    epochs: HashMap<String, i64>,
}

impl HeldKeys {
    pub fn new(records: Arc<CoordinatorStore>) -> Self {
        HeldKeys {
            records,
            epochs: HashMap::new(),
        }
    }

    pub fn epoch(&self, key: &str) -> Option<i64> {
        self.epochs.get(key).copied()
    }

    pub fn hold(&mut self, key: &str, epoch: i64) {
        self.epochs.insert(key.to_string(), epoch);
    }

    /// Forgets the key; given an epoch, only while it is still held at that one (a newer claim's load is
    /// current). True when it was forgotten.
    pub fn release(&mut self, key: &str, epoch: Option<i64>) -> bool {
        if epoch.is_some() && self.epochs.get(key) != epoch.as_ref() {
            return false;
        }
        self.epochs.remove(key);
        true
    }

    pub fn held(&self) -> Vec<(String, i64)> {
        self.epochs.iter().map(|(k, &e)| (k.clone(), e)).collect()
    }
}

/// A key as claimed: its new epoch, its records, and (for a group) the transaction outcomes not yet applied.
#[derive(Debug, Default)]
pub struct Claimed {
    pub epoch: i64,
    pub records: Vec<(String, String)>,
    pub markers: Vec<TxnMarker>,
}

/// The outcome of one ended transaction for a group its offsets went to (Kafka's marker in
/// __consumer_offsets); a group applies its markers in `seq` order, the order they were written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMarker {
    pub group: String,
    pub producer_id: i64,
    pub commit: bool,
    pub seq: i64,
}

fn marker_of(r: &tokio_postgres::Row) -> TxnMarker {
    TxnMarker {
        group: r.get(0),
        producer_id: r.get(1),
        commit: r.get(2),
        seq: r.get(3),
    }
}

struct Queued {
    seq: u64,
    kind: KeyKind,
    key: String,
    epoch: i64,
    write: RecordWrite,
}

type Refused = Arc<Mutex<HashMap<(KeyKind, String), i64>>>;

/// How long one batch of writes may take before its connection is dropped and the batch counted as failed:
/// a database that stopped answering (a cut network, a stuck server) must not hold the coordinators up
/// for the kernel's TCP timeouts. The holder forgets the keys and loads the database's truth again.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct CoordinatorStore {
    node_id: i32,
    /// Claims and reads; the writer has a connection of its own (it needs transactions).
    db: Db,
    /// The last sequence number given out, and the writer's queue: one lock so sequence order is queue order.
    queue: Mutex<(u64, mpsc::UnboundedSender<Queued>)>,
    /// The sequence number of the last change the writer has finished with (written or refused).
    done: watch::Receiver<u64>,
    /// Keys whose changes were refused or failed, with the highest epoch that was.
    refused: Refused,
}

impl CoordinatorStore {
    /// Connects to the metadata database at `url` and starts the writer.
    pub fn start(node_id: i32, url: String) -> Arc<Self> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (done_tx, done) = watch::channel(0);
        let refused: Refused = Arc::default();
        tokio::spawn(writer(
            node_id,
            url.clone(),
            rx,
            done_tx,
            Arc::clone(&refused),
        ));
        Arc::new(CoordinatorStore {
            node_id,
            db: Db::new(url),
            queue: Mutex::new((0, tx)),
            done,
            refused,
        })
    }

    /// Takes the key over for this broker (a new epoch fences its previous holder) and reads its records.
    /// Whatever the previous holder committed before the claim is read; whatever it tries after is refused.
    pub async fn claim(&self, kind: KeyKind, key: &str) -> Result<Claimed, DbError> {
        let client = self.db.client().await?;
        let epoch: i64 = client
            .query_one(
                "INSERT INTO runnel_coordinators (kind, key, owner, epoch) VALUES ($1, $2, $3, 1)
                 ON CONFLICT (kind, key) DO UPDATE
                     SET owner = EXCLUDED.owner, epoch = runnel_coordinators.epoch + 1, claimed_at = now()
                 RETURNING epoch",
                &[&kind.code(), &key, &self.node_id],
            )
            .await?
            .get(0);
        let records = client
            .query(
                "SELECT record, value FROM runnel_coordinator_records WHERE kind = $1 AND key = $2",
                &[&kind.code(), &key],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let markers = match kind {
            KeyKind::Group => client
                .query(
                    "SELECT group_id, producer_id, commit, seq FROM runnel_group_txn_markers
                     WHERE group_id = $1 ORDER BY seq",
                    &[&key],
                )
                .await?
                .iter()
                .map(marker_of)
                .collect(),
            KeyKind::Transaction => Vec::new(),
        };
        self.lock_refused().remove(&(kind, key.to_string()));
        Ok(Claimed {
            epoch,
            records,
            markers,
        })
    }

    /// Whether this broker still holds the key at `epoch` (for answers read from memory, such as
    /// OffsetFetch, that must not come from a holder fenced since).
    pub async fn still_holds(&self, kind: KeyKind, key: &str, epoch: i64) -> Result<bool, DbError> {
        let client = self.db.client().await?;
        let row = client
            .query_opt(
                "SELECT 1 FROM runnel_coordinators
                 WHERE kind = $1 AND key = $2 AND owner = $3 AND epoch = $4",
                &[&kind.code(), &key, &self.node_id, &epoch],
            )
            .await?;
        Ok(row.is_some())
    }

    /// Every key ever claimed, for the sweep that takes over the keys placed on this broker.
    pub async fn keys(&self) -> Result<Vec<(KeyKind, String)>, DbError> {
        let client = self.db.client().await?;
        Ok(client
            .query("SELECT kind, key FROM runnel_coordinators", &[])
            .await?
            .iter()
            .filter_map(|r| Some((KeyKind::of(r.get(0))?, r.get(1))))
            .collect())
    }

    /// One record of a key as last committed, whoever holds it (a read-only look at another coordinator's
    /// state, such as the transaction a TxnOffsetCommit names).
    pub async fn record(
        &self,
        kind: KeyKind,
        key: &str,
        record: &str,
    ) -> Result<Option<String>, DbError> {
        let client = self.db.client().await?;
        Ok(client
            .query_opt(
                "SELECT value FROM runnel_coordinator_records
                 WHERE kind = $1 AND key = $2 AND record = $3",
                &[&kind.code(), &key, &record],
            )
            .await?
            .map(|r| r.get(0)))
    }

    /// Records an ended transaction's outcome for each group it carried offsets for, and wakes the
    /// groups' coordinators.
    pub async fn write_markers(
        &self,
        groups: &[String],
        producer_id: i64,
        commit: bool,
    ) -> Result<(), DbError> {
        if groups.is_empty() {
            return Ok(());
        }
        let client = self.db.client().await?;
        client
            .execute(
                "INSERT INTO runnel_group_txn_markers (group_id, producer_id, commit)
                 SELECT g, $2, $3 FROM unnest($1::text[]) AS g",
                &[&groups, &producer_id, &commit],
            )
            .await?;
        client
            .execute(
                "SELECT pg_notify($1, '')",
                &[&super::append_watch::MARKERS_CHANNEL],
            )
            .await?;
        Ok(())
    }

    /// The transaction outcomes of these groups not yet applied, in the order written.
    pub async fn markers(&self, groups: &[String]) -> Result<Vec<TxnMarker>, DbError> {
        if groups.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.db.client().await?;
        Ok(client
            .query(
                "SELECT group_id, producer_id, commit, seq FROM runnel_group_txn_markers
                 WHERE group_id = ANY($1::text[]) ORDER BY seq",
                &[&groups],
            )
            .await?
            .iter()
            .map(marker_of)
            .collect())
    }

    /// Queues changes of a key held at `epoch`; returns the sequence number to wait for.
    pub fn enqueue(&self, kind: KeyKind, key: &str, epoch: i64, writes: Vec<RecordWrite>) -> u64 {
        let mut queue = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        for write in writes {
            queue.0 += 1;
            let item = Queued {
                seq: queue.0,
                kind,
                key: key.to_string(),
                epoch,
                write,
            };
            if queue.1.send(item).is_err() {
                // The writer is gone only when the runtime is shutting down.
                self.lock_refused().insert((kind, key.to_string()), epoch);
            }
        }
        queue.0
    }

    /// The sequence number of the last change queued so far.
    pub fn queued(&self) -> u64 {
        self.queue.lock().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Waits until the writer has finished with every change up to `seq`.
    pub async fn wait(&self, seq: u64) {
        let mut done = self.done.clone();
        // An error means the writer stopped: nothing more will be written, and refusals say what was not.
        let _ = done.wait_for(|&d| d >= seq).await;
    }

    /// Whether a change of the key made at `epoch` (or later) was refused or failed.
    pub fn was_refused(&self, kind: KeyKind, key: &str, epoch: i64) -> bool {
        self.lock_refused()
            .get(&(kind, key.to_string()))
            .is_some_and(|&e| e >= epoch)
    }

    fn lock_refused(&self) -> std::sync::MutexGuard<'_, HashMap<(KeyKind, String), i64>> {
        self.refused.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The writer: batches whatever is queued into one transaction at a time, in queue order.
async fn writer(
    node_id: i32,
    url: String,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    done: watch::Sender<u64>,
    refused: Refused,
) {
    let mut client: Option<Client> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < 4096 {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let last = batch.last().map_or(0, |q| q.seq);
        let attempt = async {
            match client.as_mut().filter(|c| !c.is_closed()) {
                Some(c) => write_batch(c, node_id, &batch)
                    .await
                    .map_err(|e| describe(&e)),
                None => match super::connect(&url).await {
                    Ok(c) => write_batch(client.insert(c), node_id, &batch)
                        .await
                        .map_err(|e| describe(&e)),
                    Err(DbError::Postgres(e)) => Err(describe(&e)),
                    Err(e) => Err(e.to_string()),
                },
            }
        };
        let outcome = match tokio::time::timeout(WRITE_TIMEOUT, attempt).await {
            Ok(outcome) => outcome,
            Err(_) => {
                client = None;
                Err(format!("no answer within {WRITE_TIMEOUT:?}"))
            }
        };
        let failed: Vec<(KeyKind, String, i64)> = match outcome {
            Ok(fenced) => fenced,
            Err(e) => {
                tracing::warn!(error = %e, changes = batch.len(), "cannot write coordinator state");
                batch
                    .iter()
                    .map(|q| (q.kind, q.key.clone(), q.epoch))
                    .collect()
            }
        };
        if !failed.is_empty() {
            let mut refused = refused.lock().unwrap_or_else(|p| p.into_inner());
            for (kind, key, epoch) in failed {
                let e = refused.entry((kind, key)).or_insert(epoch);
                *e = (*e).max(epoch);
            }
        }
        let _ = done.send(last);
    }
}

/// Writes one batch; returns the keys whose changes were refused because another broker holds them now.
async fn write_batch(
    client: &mut Client,
    node_id: i32,
    batch: &[Queued],
) -> Result<Vec<(KeyKind, String, i64)>, tokio_postgres::Error> {
    let mut kinds = Vec::new();
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    for q in batch {
        if seen.insert((q.kind, q.key.as_str())) {
            kinds.push(q.kind.code());
            keys.push(q.key.clone());
        }
    }
    let tx = client.transaction().await?;
    // Locking the claims keeps a claim by another broker from slipping in before this commit.
    let held: HashSet<(i16, String, i64)> = tx
        .query(
            "SELECT c.kind, c.key, c.epoch FROM runnel_coordinators c
             JOIN unnest($2::smallint[], $3::text[]) AS k(kind, key) ON c.kind = k.kind AND c.key = k.key
             WHERE c.owner = $1
             ORDER BY c.kind, c.key
             FOR UPDATE OF c",
            &[&node_id, &kinds, &keys],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut fenced = Vec::new();
    let mut fenced_seen = HashSet::new();
    // The last change of each record wins; a record written twice in one statement would be an error.
    let mut last: HashMap<(i16, &str, &str), Option<&str>> = HashMap::new();
    let mut markers: Vec<i64> = Vec::new();
    for q in batch {
        if !held.contains(&(q.kind.code(), q.key.clone(), q.epoch)) {
            if fenced_seen.insert((q.kind, q.key.as_str(), q.epoch)) {
                fenced.push((q.kind, q.key.clone(), q.epoch));
            }
            continue;
        }
        match &q.write {
            RecordWrite::Put { record, value } => {
                last.insert(
                    (q.kind.code(), q.key.as_str(), record.as_str()),
                    Some(value.as_str()),
                );
            }
            RecordWrite::Delete { record } => {
                last.insert((q.kind.code(), q.key.as_str(), record.as_str()), None);
            }
            RecordWrite::MarkerApplied { seq } => markers.push(*seq),
        }
    }
    let (mut put_k, mut put_key, mut put_rec, mut put_val) = (vec![], vec![], vec![], vec![]);
    let (mut del_k, mut del_key, mut del_rec) = (vec![], vec![], vec![]);
    for ((kind, key, record), value) in last {
        match value {
            Some(v) => {
                put_k.push(kind);
                put_key.push(key);
                put_rec.push(record);
                put_val.push(v);
            }
            None => {
                del_k.push(kind);
                del_key.push(key);
                del_rec.push(record);
            }
        }
    }
    if !put_k.is_empty() {
        tx.execute(
            "INSERT INTO runnel_coordinator_records (kind, key, record, value)
             SELECT * FROM unnest($1::smallint[], $2::text[], $3::text[], $4::text[])
             ON CONFLICT (kind, key, record) DO UPDATE SET value = EXCLUDED.value",
            &[&put_k, &put_key, &put_rec, &put_val],
        )
        .await?;
    }
    if !del_k.is_empty() {
        tx.execute(
            "DELETE FROM runnel_coordinator_records r
             USING unnest($1::smallint[], $2::text[], $3::text[]) AS d(kind, key, record)
             WHERE r.kind = d.kind AND r.key = d.key AND r.record = d.record",
            &[&del_k, &del_key, &del_rec],
        )
        .await?;
    }
    if !markers.is_empty() {
        tx.execute(
            "DELETE FROM runnel_group_txn_markers WHERE seq = ANY($1::bigint[])",
            &[&markers],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(fenced)
}
