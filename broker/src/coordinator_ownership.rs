//! Cluster mode: the group and transaction coordinators hold their keys by claim. A request for a group or
//! transactional id first makes sure this broker holds it ([`Broker::hold`]: the key is placed on this
//! broker by the freshest view of the live brokers, then claimed and loaded), and a request that changed
//! state waits for the change to be in the database ([`Broker::durable`]) before it answers. A periodic
//! sweep forgets keys placed elsewhere now or whose writes were refused, takes over the keys of brokers
//! that died (so their timers run: session expiry, transaction timeouts, half-ended transactions), and
//! applies transaction outcomes written for groups. On a single node all of this is a no-op.

use std::sync::atomic::Ordering;

use kafka_protocol::error::ResponseError;

use crate::broker::Broker;
use crate::cluster::coordinator_store::{Claimed, KeyKind};

/// A coordinator whose keys are held by claim.
pub trait KeyHolder {
    const KIND: KeyKind;
    /// The epoch at which this broker holds the key, if it does.
    fn epoch(&self, key: &str) -> Option<i64>;
    /// Installs a key's state from the rows its claim read.
    fn install(&self, key: &str, claimed: Claimed) -> Result<(), String>;
    /// Forgets the key (only if still held at `epoch`, when one is given).
    fn unload(&self, key: &str, epoch: Option<i64>);
    /// Every key held, with its epoch.
    fn held(&self) -> Vec<(String, i64)>;
}

/// The longest a request waits on the database for a claim or for its changes to be written; past it the
/// client is told to retry (and finds the coordinator again) rather than left hanging.
const DB_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

fn not_coordinator() -> i16 {
    ResponseError::NotCoordinator.code()
}

fn unavailable() -> i16 {
    ResponseError::CoordinatorNotAvailable.code()
}

impl Broker {
    fn placed_here(&self, kind: KeyKind, key: &str) -> bool {
        self.coordinator_node(kind.code() as i8, key) == self.node_id
    }

    /// Makes sure this broker holds the key, claiming it if it is placed here; NOT_COORDINATOR when it is
    /// placed on another broker. Ok(true) when it was claimed just now.
    pub async fn hold<C: KeyHolder>(&self, coordinator: &C, key: &str) -> Result<bool, i16> {
        let Some(node) = &self.cluster else {
            return Ok(false);
        };
        if coordinator.epoch(key).is_some() && self.placed_here(C::KIND, key) {
            return Ok(false);
        }
        // One claim at a time: concurrent first requests for a key must not each load it over the other.
        let _claiming = node.claiming.lock().await;
        if let Err(e) = node.refresh_live().await {
            tracing::warn!(error = %e, "cannot read the live brokers");
            return Err(unavailable());
        }
        if !self.placed_here(C::KIND, key) {
            coordinator.unload(key, None);
            return Err(not_coordinator());
        }
        if coordinator.epoch(key).is_some() {
            return Ok(false);
        }
        let claimed = match tokio::time::timeout(DB_WAIT, node.coordinators.claim(C::KIND, key))
            .await
        {
            Ok(Ok(claimed)) => claimed,
            Ok(Err(e)) => {
                tracing::warn!(kind = ?C::KIND, key, error = %e, "cannot claim a coordinator key");
                return Err(unavailable());
            }
            Err(_) => {
                tracing::warn!(kind = ?C::KIND, key, "no answer from the database to a claim");
                return Err(unavailable());
            }
        };
        let epoch = claimed.epoch;
        coordinator.install(key, claimed).map_err(|e| {
            tracing::error!(kind = ?C::KIND, key, error = %e, "unreadable coordinator state");
            unavailable()
        })?;
        tracing::debug!(kind = ?C::KIND, key, epoch, "holding coordinator key");
        Ok(true)
    }

    /// [`Broker::hold`] for a transactional id, finishing a transaction its previous holder left between
    /// prepare and complete before anything else touches it.
    pub async fn hold_txn(&self, id: &str) -> Result<(), i16> {
        if self.hold(&self.txns, id).await? {
            if let Some(plan) = self.txns.unfinished_of(id) {
                tracing::info!(
                    transactional_id = id,
                    commit = plan.commit,
                    "completing a transaction its previous coordinator left"
                );
                self.complete_transaction(&plan).await?;
                self.durable(&self.txns, id).await?;
            }
        }
        Ok(())
    }

    /// Waits until every change made so far is in the database; NOT_COORDINATOR (and the key forgotten)
    /// when a change of this key was refused or failed.
    pub async fn durable<C: KeyHolder>(&self, coordinator: &C, key: &str) -> Result<(), i16> {
        let Some(node) = &self.cluster else {
            return Ok(());
        };
        let Some(epoch) = coordinator.epoch(key) else {
            return Err(not_coordinator());
        };
        let store = &node.coordinators;
        if tokio::time::timeout(DB_WAIT, store.wait(store.queued()))
            .await
            .is_err()
        {
            // Whether it lands later is unknown: forget the key, so the next request loads what did.
            coordinator.unload(key, Some(epoch));
            return Err(unavailable());
        }
        if store.was_refused(C::KIND, key, epoch) {
            coordinator.unload(key, Some(epoch));
            return Err(not_coordinator());
        }
        Ok(())
    }

    /// For answers read from memory: the claim this broker loaded the key at is still the current one.
    pub async fn confirm_held<C: KeyHolder>(&self, coordinator: &C, key: &str) -> Result<(), i16> {
        let Some(node) = &self.cluster else {
            return Ok(());
        };
        let epoch = coordinator.epoch(key).ok_or_else(not_coordinator)?;
        match node.coordinators.still_holds(C::KIND, key, epoch).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                coordinator.unload(key, Some(epoch));
                Err(not_coordinator())
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot confirm a coordinator claim");
                Err(unavailable())
            }
        }
    }

    /// A refusal worked out from memory (a stale epoch, a transaction in the wrong state) is given only
    /// while the claim the key was loaded at is current: from a copy another broker has since claimed, it
    /// would fence or fail a client that did nothing wrong. Otherwise NOT_COORDINATOR sends the client to
    /// the key's holder.
    pub async fn confirmed_refusal<C: KeyHolder>(
        &self,
        coordinator: &C,
        key: &str,
        code: i16,
    ) -> i16 {
        match self.confirm_held(coordinator, key).await {
            Ok(()) => code,
            Err(moved) => moved,
        }
    }

    /// Forgets keys that moved or whose writes were refused; with `take_over`, also claims every key placed
    /// here that this broker does not hold (those of brokers that died), then applies group markers.
    pub async fn sweep_coordinators(&self, take_over: bool) {
        let Some(node) = &self.cluster else {
            return;
        };
        let lapsed = node.lease_lapsed.swap(false, Ordering::SeqCst);
        if lapsed {
            tracing::warn!("forgetting every group and transactional id: the lease had run out");
        }
        self.release(&self.groups, lapsed);
        self.release(&self.txns, lapsed);
        if take_over {
            match node.coordinators.keys().await {
                Ok(keys) => {
                    for (kind, key) in keys {
                        if !self.placed_here(kind, &key) {
                            continue;
                        }
                        let held = match kind {
                            KeyKind::Group => self.hold(&self.groups, &key).await.map(|_| ()),
                            KeyKind::Transaction => self.hold_txn(&key).await,
                        };
                        if let Err(code) = held {
                            tracing::debug!(
                                ?kind,
                                key,
                                code,
                                "could not take over a coordinator key"
                            );
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot list coordinator keys"),
            }
        }
        self.apply_group_markers().await;
    }

    fn release<C: KeyHolder>(&self, coordinator: &C, all: bool) {
        let Some(node) = &self.cluster else {
            return;
        };
        for (key, epoch) in coordinator.held() {
            if all
                || !self.placed_here(C::KIND, &key)
                || node.coordinators.was_refused(C::KIND, &key, epoch)
            {
                coordinator.unload(&key, Some(epoch));
            }
        }
    }

    /// Applies the transaction outcomes written for groups this broker holds.
    pub async fn apply_group_markers(&self) {
        let groups: Vec<String> = self.groups.held().into_iter().map(|(g, _)| g).collect();
        let _ = self.apply_markers_of(groups).await; // the periodic sweep tries again
    }

    /// Applies the transaction outcomes written for these groups (those this broker holds); false when
    /// they could not be read.
    pub async fn apply_markers_of(&self, groups: Vec<String>) -> bool {
        let Some(node) = &self.cluster else {
            return true;
        };
        match node.coordinators.markers(&groups).await {
            Ok(markers) => {
                self.groups.apply_markers(&markers);
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read group transaction markers");
                false
            }
        }
    }
}
