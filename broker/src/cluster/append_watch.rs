//! Long polls across brokers: every commit tells the database's `runnel_appends` channel which partitions
//! it advanced and to where (NOTIFY, delivered only if the transaction commits); each broker LISTENs on one
//! connection and wakes its waiting fetches, so a consumer on broker B sees a record produced on broker A
//! as soon as A's round commits, with no polling of the batch table. A lost connection is re-established;
//! meanwhile fetches still end at their max wait and read the index then.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_postgres::AsyncMessage;
use uuid::Uuid;

pub const CHANNEL: &str = "runnel_appends";
/// Transaction outcomes written for groups (`runnel_group_txn_markers`), for their coordinators to apply.
pub const MARKERS_CHANNEL: &str = "runnel_group_markers";

/// The newest high watermark heard of per partition, and a signal on every change. The same connection
/// hears changes of the topic catalog (`runnel_topics`).
pub struct AppendWatch {
    marks: Mutex<HashMap<(Uuid, i32), i64>>,
    changed: watch::Sender<u64>,
    /// Woken with every commit heard (the broker's waiting fetches).
    appended: Arc<Notify>,
    /// Woken with every topic change heard, and after a reconnect (changes may have been missed).
    topics_changed: Arc<Notify>,
    /// Woken with every group transaction marker heard, and after a reconnect.
    pub markers_written: Notify,
    /// Woken with every metadata document change heard (`runnel_documents`), and after a reconnect.
    pub documents_changed: Notify,
    /// Woken when a broker registered or left (`runnel_brokers`), and after a reconnect.
    pub brokers_changed: Notify,
}

impl AppendWatch {
    /// Starts listening on `url` (and keeps at it across lost connections).
    pub fn start(url: String, appended: Arc<Notify>, topics_changed: Arc<Notify>) -> Arc<Self> {
        let watch = Arc::new(AppendWatch {
            marks: Mutex::default(),
            changed: watch::Sender::new(0),
            appended,
            topics_changed,
            markers_written: Notify::new(),
            documents_changed: Notify::new(),
            brokers_changed: Notify::new(),
        });
        let me = Arc::clone(&watch);
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.listen(&url).await {
                    tracing::warn!(error = %e, "append notifications lost; reconnecting");
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        watch
    }

    async fn listen(&self, url: &str) -> Result<(), super::DbError> {
        let (client, mut connection) = super::db::handshake(&super::db::config(url)?).await?;
        let listen = async {
            client
                .batch_execute(&format!(
                    "LISTEN {CHANNEL}; LISTEN {}; LISTEN {MARKERS_CHANNEL}; LISTEN {}; LISTEN {}",
                    super::topic_table::CHANNEL,
                    super::documents::CHANNEL,
                    super::registry::CHANNEL
                ))
                .await?;
            tracing::debug!("listening for append notifications");
            // What changed while no one listened is read again.
            self.topics_changed.notify_one();
            self.markers_written.notify_one();
            self.documents_changed.notify_one();
            self.brokers_changed.notify_one();
            self.appended.notify_waiters();
            // Keep the client (and so the connection) alive while notifications flow.
            std::future::pending::<()>().await;
            Ok::<(), tokio_postgres::Error>(())
        };
        let pump = async {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) if n.channel() == CHANNEL => {
                        self.heard(n.payload())
                    }
                    Some(Ok(AsyncMessage::Notification(n))) if n.channel() == MARKERS_CHANNEL => {
                        self.markers_written.notify_one()
                    }
                    Some(Ok(AsyncMessage::Notification(n)))
                        if n.channel() == super::documents::CHANNEL =>
                    {
                        self.documents_changed.notify_one()
                    }
                    Some(Ok(AsyncMessage::Notification(n)))
                        if n.channel() == super::registry::CHANNEL =>
                    {
                        self.brokers_changed.notify_one()
                    }
                    Some(Ok(AsyncMessage::Notification(_))) => self.topics_changed.notify_one(),
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                }
            }
        };
        // The connection must be driven for LISTEN itself to complete, so both run together.
        tokio::select! {
            r = listen => Ok(r?),
            r = pump => Ok(r?),
        }
    }

    fn heard(&self, payload: &str) {
        let mut marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        for entry in payload.split(',') {
            let mut parts = entry.rsplitn(3, ':');
            let (Some(next), Some(partition), Some(topic)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let (Ok(next), Ok(partition), Ok(topic)) = (
                next.parse::<i64>(),
                partition.parse::<i32>(),
                topic.parse::<Uuid>(),
            ) else {
                continue;
            };
            let mark = marks.entry((topic, partition)).or_insert(next);
            *mark = (*mark).max(next);
        }
        drop(marks);
        self.changed.send_modify(|g| *g += 1);
        self.appended.notify_waiters();
    }

    /// The newest high watermark heard of for a partition.
    pub fn high_watermark(&self, topic: Uuid, partition: i32) -> Option<i64> {
        let marks = self.marks.lock().unwrap_or_else(|p| p.into_inner());
        marks.get(&(topic, partition)).copied()
    }

    /// Waits until the partition is heard to hold records at `offset` (its high watermark passes it), or
    /// `timeout` passes; true when it does.
    pub async fn wait_beyond(
        &self,
        topic: Uuid,
        partition: i32,
        offset: i64,
        timeout: Duration,
    ) -> bool {
        let mut changed = self.changed.subscribe();
        let passed = || {
            self.high_watermark(topic, partition)
                .is_some_and(|hw| hw > offset)
        };
        let wait = async {
            while !passed() {
                if changed.changed().await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(timeout, wait).await;
        passed()
    }
}
