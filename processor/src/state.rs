//! State that survives a crash. Every stateful operator registers a store with its job graph; after each
//! batch the runtime takes the store's changes and writes them to the job's changelog topic inside the
//! batch's transaction (so state, output and source offsets commit together), and a restarted or moved
//! task hands the latest value of every key back with [`Checkpointed::restore`].

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::StateError;

/// A changed key and its new value (None deletes it).
pub type Change = (Vec<u8>, Option<Vec<u8>>);

/// The latest value of every key of a store, as read back from the changelog.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

pub trait Checkpointed: Send + Sync {
    /// What changed since the last call.
    fn take_changes(&self) -> Result<Vec<Change>, StateError>;
    /// Replaces the state with checkpointed entries (the latest value of every key).
    fn restore(&self, entries: Entries) -> Result<(), StateError>;
}

/// The stateful operators of one job graph, in the order they were built (which names them in the
/// changelog, so a job must build its graph the same way on every start).
#[derive(Default)]
pub struct Graph {
    stores: Mutex<Vec<Arc<dyn Checkpointed>>>,
}

impl Graph {
    pub fn register(&self, store: Arc<dyn Checkpointed>) {
        lock(&self.stores).push(store);
    }

    pub fn stores(&self) -> Vec<Arc<dyn Checkpointed>> {
        lock(&self.stores).clone()
    }
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn encode<T: Serialize + ?Sized>(v: &T) -> Result<Vec<u8>, StateError> {
    serde_json::to_vec(v).map_err(StateError::Serialize)
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(b).map_err(StateError::Deserialize)
}

/// Per-key state with the keys changed since the last checkpoint.
pub struct Keyed<K, X> {
    pub map: HashMap<K, X>,
    dirty: HashSet<K>,
}

impl<K: Eq + Hash + Clone, X> Keyed<K, X> {
    pub fn set(&mut self, k: K, x: X) {
        self.dirty.insert(k.clone());
        self.map.insert(k, x);
    }

    pub fn remove(&mut self, k: &K) -> Option<X> {
        let old = self.map.remove(k);
        if old.is_some() {
            self.dirty.insert(k.clone());
        }
        old
    }
}

pub struct KeyedStore<K, X>(Mutex<Keyed<K, X>>);

impl<K, X> Default for KeyedStore<K, X> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K, X> KeyedStore<K, X> {
    pub fn new() -> Self {
        KeyedStore(Mutex::new(Keyed {
            map: HashMap::new(),
            dirty: HashSet::new(),
        }))
    }

    pub fn lock(&self) -> MutexGuard<'_, Keyed<K, X>> {
        lock(&self.0)
    }
}

impl<K, X> Checkpointed for KeyedStore<K, X>
where
    K: Eq + Hash + Clone + Serialize + DeserializeOwned + Send + Sync,
    X: Serialize + DeserializeOwned + Send + Sync,
{
    fn take_changes(&self) -> Result<Vec<Change>, StateError> {
        let mut s = self.lock();
        let dirty: Vec<K> = s.dirty.drain().collect();
        dirty
            .into_iter()
            .map(|k| Ok((encode(&k)?, s.map.get(&k).map(encode).transpose()?)))
            .collect()
    }

    fn restore(&self, entries: Entries) -> Result<(), StateError> {
        let mut map = HashMap::new();
        for (k, v) in entries {
            map.insert(decode(&k)?, decode(&v)?);
        }
        *self.lock() = Keyed {
            map,
            dirty: HashSet::new(),
        };
        Ok(())
    }
}

/// The values of the last `length` batches (a window), plus whatever the operator derives from them
/// (`derived`, rebuilt from the history after a restore). Batch `id` is stored under slot `id % length`, so
/// the changelog keeps exactly the window.
pub struct History<T, A> {
    pub batches: VecDeque<(u64, Arc<Vec<T>>)>,
    pub derived: Option<A>,
    length: u64,
    entered: Option<(u64, Arc<Vec<T>>)>,
}

impl<T, A> History<T, A> {
    /// Adds a batch and drops the one that left the window, returning it.
    pub fn push(&mut self, id: u64, values: Arc<Vec<T>>) -> Option<Arc<Vec<T>>> {
        self.entered = Some((id, Arc::clone(&values)));
        self.batches.push_back((id, values));
        if self.batches.len() as u64 > self.length {
            return self.batches.pop_front().map(|(_, v)| v);
        }
        None
    }
}

pub struct HistoryStore<T, A>(Mutex<History<T, A>>);

impl<T, A> HistoryStore<T, A> {
    pub fn new(length: u64) -> Self {
        HistoryStore(Mutex::new(History {
            batches: VecDeque::new(),
            derived: None,
            length,
            entered: None,
        }))
    }

    pub fn lock(&self) -> MutexGuard<'_, History<T, A>> {
        lock(&self.0)
    }
}

impl<T, A> Checkpointed for HistoryStore<T, A>
where
    T: Serialize + DeserializeOwned + Send + Sync,
    A: Send,
{
    fn take_changes(&self) -> Result<Vec<Change>, StateError> {
        let mut h = self.lock();
        let length = h.length;
        match h.entered.take() {
            Some((id, values)) => Ok(vec![(
                encode(&(id % length))?,
                Some(encode(&(id, &*values))?),
            )]),
            None => Ok(Vec::new()),
        }
    }

    fn restore(&self, entries: Entries) -> Result<(), StateError> {
        let mut batches: Vec<(u64, Vec<T>)> = entries
            .iter()
            .map(|(_, v)| decode(v))
            .collect::<Result<_, _>>()?;
        batches.sort_by_key(|(id, _)| *id);
        let mut h = self.lock();
        let skip = batches.len().saturating_sub(h.length as usize);
        h.batches = batches
            .into_iter()
            .skip(skip)
            .map(|(id, v)| (id, Arc::new(v)))
            .collect();
        h.derived = None;
        h.entered = None;
        Ok(())
    }
}
