//! DStreams: per-batch transformations in the style of Spark Streaming.
//!
//! Each node computes its values for a batch from its parents' values for the same batch and memoizes the
//! last result, so a stream read by several operators is computed once per batch and stateful nodes
//! (windows, keyed state) advance exactly once per batch. Batches must be computed in id order from 0.
//! Keyed aggregation runs in parallel (rayon).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

use rayon::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::batch::BatchInfo;
use crate::error::ProcessorError;
use crate::state::{lock, Graph, HistoryStore, KeyedStore};

type Compute<T> = dyn Fn(&BatchInfo) -> Vec<T> + Send + Sync;

struct Node<T> {
    compute: Box<Compute<T>>,
    memo: Mutex<Option<(u64, Arc<Vec<T>>)>>,
}

/// A stream of batches of `T`.
pub struct DStream<T> {
    node: Arc<Node<T>>,
    interval_ms: u64,
    /// The job graph this stream belongs to: stateful operators register their stores with it.
    graph: Arc<Graph>,
}

impl<T> Clone for DStream<T> {
    fn clone(&self) -> Self {
        DStream {
            node: Arc::clone(&self.node),
            interval_ms: self.interval_ms,
            graph: Arc::clone(&self.graph),
        }
    }
}

fn check_multiple(
    what: &'static str,
    value_ms: u64,
    interval_ms: u64,
) -> Result<u64, ProcessorError> {
    if value_ms == 0 || interval_ms == 0 || !value_ms.is_multiple_of(interval_ms) {
        return Err(ProcessorError::NotAMultiple {
            what,
            value_ms,
            interval_ms,
        });
    }
    Ok(value_ms / interval_ms)
}

/// Whether batch `id` ends a slide (windows emit only then, as in Spark Streaming).
fn ends_slide(id: u64, slide_batches: u64) -> bool {
    (id + 1).is_multiple_of(slide_batches)
}

impl<T: Clone + Send + Sync + 'static> DStream<T> {
    /// A stream whose values for a batch are `f(batch)`: a pure function of the batch, so a recomputed batch
    /// gives the same values.
    pub fn from_fn(
        interval_ms: u64,
        f: impl Fn(&BatchInfo) -> Vec<T> + Send + Sync + 'static,
    ) -> Self {
        Self::in_graph(Arc::new(Graph::default()), interval_ms, f)
    }

    pub(crate) fn in_graph(
        graph: Arc<Graph>,
        interval_ms: u64,
        f: impl Fn(&BatchInfo) -> Vec<T> + Send + Sync + 'static,
    ) -> Self {
        DStream {
            node: Arc::new(Node {
                compute: Box::new(f),
                memo: Mutex::new(None),
            }),
            interval_ms,
            graph,
        }
    }

    /// A stream in the same job graph as this one.
    fn sibling<U: Clone + Send + Sync + 'static>(
        &self,
        f: impl Fn(&BatchInfo) -> Vec<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        DStream::in_graph(Arc::clone(&self.graph), self.interval_ms, f)
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    /// The job graph's stateful stores, for checkpoints.
    pub fn graph(&self) -> &Arc<Graph> {
        &self.graph
    }

    /// The values of this stream for a batch (computed at most once per batch).
    pub fn compute(&self, batch: &BatchInfo) -> Arc<Vec<T>> {
        let mut memo = lock(&self.node.memo);
        if let Some((id, v)) = memo.as_ref() {
            if *id == batch.id {
                return Arc::clone(v);
            }
        }
        let v = Arc::new((self.node.compute)(batch));
        *memo = Some((batch.id, Arc::clone(&v)));
        v
    }

    fn derive<U: Clone + Send + Sync + 'static>(
        &self,
        f: impl Fn(&BatchInfo, &[T]) -> Vec<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        let parent = self.clone();
        self.sibling(move |b| f(b, &parent.compute(b)))
    }

    pub fn map<U: Clone + Send + Sync + 'static>(
        &self,
        f: impl Fn(&T) -> U + Send + Sync + 'static,
    ) -> DStream<U> {
        self.derive(move |_, xs| xs.iter().map(&f).collect())
    }

    pub fn flat_map<U: Clone + Send + Sync + 'static, I: IntoIterator<Item = U>>(
        &self,
        f: impl Fn(&T) -> I + Send + Sync + 'static,
    ) -> DStream<U> {
        self.derive(move |_, xs| xs.iter().flat_map(&f).collect())
    }

    pub fn filter(&self, f: impl Fn(&T) -> bool + Send + Sync + 'static) -> DStream<T> {
        self.derive(move |_, xs| xs.iter().filter(|x| f(x)).cloned().collect())
    }

    /// Pairs each value with a key.
    pub fn key_by<K: Clone + Send + Sync + 'static>(
        &self,
        f: impl Fn(&T) -> K + Send + Sync + 'static,
    ) -> DStream<(K, T)> {
        self.derive(move |_, xs| xs.iter().map(|x| (f(x), x.clone())).collect())
    }

    /// An arbitrary function of each whole batch.
    pub fn transform<U: Clone + Send + Sync + 'static>(
        &self,
        f: impl Fn(&BatchInfo, &[T]) -> Vec<U> + Send + Sync + 'static,
    ) -> DStream<U> {
        self.derive(f)
    }

    /// Both streams' values, this one's first.
    pub fn union(&self, other: &DStream<T>) -> DStream<T> {
        let (a, b) = (self.clone(), other.clone());
        self.sibling(move |batch| {
            let mut v = a.compute(batch).as_ref().clone();
            v.extend(b.compute(batch).iter().cloned());
            v
        })
    }

    /// One value per batch: how many values it had.
    pub fn count(&self) -> DStream<u64> {
        self.derive(|_, xs| vec![xs.len() as u64])
    }

    /// One value per non-empty batch: all its values combined with `f`.
    pub fn reduce(&self, f: impl Fn(&T, &T) -> T + Send + Sync + 'static) -> DStream<T> {
        self.derive(move |_, xs| {
            let mut it = xs.iter();
            let first = it.next().cloned();
            first
                .map(|f0| it.fold(f0, |acc, x| f(&acc, x)))
                .into_iter()
                .collect()
        })
    }

    /// The values of the last `length` ms, emitted every `slide` ms (both multiples of the batch interval).
    pub fn window(&self, length_ms: u64, slide_ms: u64) -> Result<DStream<T>, ProcessorError>
    where
        T: Serialize + DeserializeOwned,
    {
        let length = check_multiple("window length", length_ms, self.interval_ms)?;
        let slide = check_multiple("window slide", slide_ms, self.interval_ms)?;
        let parent = self.clone();
        let store: Arc<HistoryStore<T, ()>> = Arc::new(HistoryStore::new(length));
        self.graph.register(Arc::clone(&store) as _);
        Ok(self.sibling(move |b| {
            let mut h = store.lock();
            h.push(b.id, parent.compute(b));
            if ends_slide(b.id, slide) {
                h.batches
                    .iter()
                    .flat_map(|(_, v)| v.iter().cloned())
                    .collect()
            } else {
                Vec::new()
            }
        }))
    }

    /// How many values fell in each window.
    pub fn count_by_window(
        &self,
        length_ms: u64,
        slide_ms: u64,
    ) -> Result<DStream<u64>, ProcessorError>
    where
        T: Serialize + DeserializeOwned,
    {
        let slide = check_multiple("window slide", slide_ms, self.interval_ms)?;
        let w = self.window(length_ms, slide_ms)?;
        Ok(w.transform(move |b, xs| {
            if ends_slide(b.id, slide) {
                vec![xs.len() as u64]
            } else {
                Vec::new()
            }
        }))
    }

    /// Each window's values combined with `f`.
    pub fn reduce_by_window(
        &self,
        f: impl Fn(&T, &T) -> T + Send + Sync + 'static,
        length_ms: u64,
        slide_ms: u64,
    ) -> Result<DStream<T>, ProcessorError>
    where
        T: Serialize + DeserializeOwned,
    {
        Ok(self.window(length_ms, slide_ms)?.reduce(f))
    }
}

impl<T: Clone + Send + Sync + Eq + Hash + Ord + Serialize + DeserializeOwned + 'static> DStream<T> {
    /// How often each distinct value occurs in the batch.
    pub fn count_by_value(&self) -> DStream<(T, u64)> {
        self.map(|x| (x.clone(), 1u64)).reduce_by_key(|a, b| a + b)
    }

    /// How often each distinct value occurs in each window.
    pub fn count_by_value_and_window(
        &self,
        length_ms: u64,
        slide_ms: u64,
    ) -> Result<DStream<(T, u64)>, ProcessorError> {
        self.map(|x| (x.clone(), 1u64))
            .reduce_by_key_and_window(|a, b| a + b, length_ms, slide_ms)
    }
}

/// Combines values per key, in parallel over the batch.
fn reduce_pairs<K, V>(xs: &[(K, V)], f: &(impl Fn(&V, &V) -> V + Sync)) -> HashMap<K, V>
where
    K: Clone + Send + Sync + Eq + Hash,
    V: Clone + Send + Sync,
{
    let merge = |mut acc: HashMap<K, V>, (k, v): (K, V)| {
        let merged = match acc.get(&k) {
            Some(old) => f(old, &v),
            None => v,
        };
        acc.insert(k, merged);
        acc
    };
    xs.par_iter()
        .cloned()
        .fold(HashMap::new, merge)
        .reduce(HashMap::new, |a, b| b.into_iter().fold(a, merge))
}

/// A batch's values by key, in arrival order.
fn group_values<K: Clone + Eq + Hash, W: Clone>(xs: &[(K, W)]) -> HashMap<K, Vec<W>> {
    let mut m: HashMap<K, Vec<W>> = HashMap::new();
    for (k, w) in xs {
        m.entry(k.clone()).or_default().push(w.clone());
    }
    m
}

fn sorted<K: Ord, V>(m: HashMap<K, V>) -> Vec<(K, V)> {
    let mut v: Vec<(K, V)> = m.into_iter().collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

impl<K, V> DStream<(K, V)>
where
    K: Clone + Send + Sync + Eq + Hash + Ord + Serialize + DeserializeOwned + 'static,
    V: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    pub fn map_values<W: Clone + Send + Sync + 'static>(
        &self,
        f: impl Fn(&V) -> W + Send + Sync + 'static,
    ) -> DStream<(K, W)> {
        self.map(move |(k, v)| (k.clone(), f(v)))
    }

    /// Values combined per key within each batch (keys in order).
    pub fn reduce_by_key(
        &self,
        f: impl Fn(&V, &V) -> V + Send + Sync + 'static,
    ) -> DStream<(K, V)> {
        self.derive(move |_, xs| sorted(reduce_pairs(xs, &f)))
    }

    /// All of a batch's values per key, in arrival order.
    pub fn group_by_key(&self) -> DStream<(K, Vec<V>)> {
        self.derive(|_, xs| sorted(group_values(xs)))
    }

    /// Inner join with a static dataset.
    pub fn join<W: Clone + Send + Sync + 'static>(
        &self,
        table: Arc<HashMap<K, W>>,
    ) -> DStream<(K, (V, W))> {
        self.derive(move |_, xs| {
            xs.iter()
                .filter_map(|(k, v)| table.get(k).map(|w| (k.clone(), (v.clone(), w.clone()))))
                .collect()
        })
    }

    /// Left outer join with a static dataset.
    pub fn left_join<W: Clone + Send + Sync + 'static>(
        &self,
        table: Arc<HashMap<K, W>>,
    ) -> DStream<(K, (V, Option<W>))> {
        self.derive(move |_, xs| {
            xs.iter()
                .map(|(k, v)| (k.clone(), (v.clone(), table.get(k).cloned())))
                .collect()
        })
    }

    /// Inner join with another stream, batch by batch (Spark's DStream join): every pair of values with
    /// the same key in the same batch, in this stream's order, then the other's.
    pub fn join_stream<W: Clone + Send + Sync + 'static>(
        &self,
        other: &DStream<(K, W)>,
    ) -> DStream<(K, (V, W))> {
        let other = other.clone();
        self.derive(move |b, xs| {
            let by_key = group_values(&other.compute(b));
            xs.iter()
                .flat_map(|(k, v)| {
                    by_key
                        .get(k)
                        .into_iter()
                        .flatten()
                        .map(move |w| (k.clone(), (v.clone(), w.clone())))
                })
                .collect()
        })
    }

    /// Left outer join with another stream, batch by batch: values without a match get None.
    pub fn left_join_stream<W: Clone + Send + Sync + 'static>(
        &self,
        other: &DStream<(K, W)>,
    ) -> DStream<(K, (V, Option<W>))> {
        let other = other.clone();
        self.derive(move |b, xs| {
            let by_key = group_values(&other.compute(b));
            let mut out = Vec::new();
            for (k, v) in xs {
                match by_key.get(k) {
                    Some(ws) => {
                        out.extend(ws.iter().map(|w| (k.clone(), (v.clone(), Some(w.clone())))))
                    }
                    None => out.push((k.clone(), (v.clone(), None))),
                }
            }
            out
        })
    }

    /// Values combined per key over each window, recomputed from the window's batches.
    pub fn reduce_by_key_and_window(
        &self,
        f: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        length_ms: u64,
        slide_ms: u64,
    ) -> Result<DStream<(K, V)>, ProcessorError> {
        let slide = check_multiple("window slide", slide_ms, self.interval_ms)?;
        let w = self.window(length_ms, slide_ms)?;
        Ok(w.transform(move |b, xs| {
            if ends_slide(b.id, slide) {
                sorted(reduce_pairs(xs, &f))
            } else {
                Vec::new()
            }
        }))
    }

    /// The incremental form: the window's running result is updated with the batch that enters (`f`) and
    /// the batch that leaves (`inverse`), instead of recomputing the whole window. Keys whose value
    /// `keep` rejects (e.g. a count back at zero) are dropped.
    pub fn reduce_by_key_and_window_inv(
        &self,
        f: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        inverse: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        keep: impl Fn(&V) -> bool + Send + Sync + 'static,
        length_ms: u64,
        slide_ms: u64,
    ) -> Result<DStream<(K, V)>, ProcessorError> {
        let length = check_multiple("window length", length_ms, self.interval_ms)?;
        let slide = check_multiple("window slide", slide_ms, self.interval_ms)?;
        let f = Arc::new(f);
        let per_batch = Arc::clone(&f);
        let combine = self.reduce_by_key(move |a, b| per_batch(a, b));
        // The running totals are derived from the window's batches: rebuilt from them after a restore.
        let store: Arc<HistoryStore<(K, V), HashMap<K, V>>> = Arc::new(HistoryStore::new(length));
        self.graph.register(Arc::clone(&store) as _);
        let add = move |totals: &mut HashMap<K, V>, batch: &[(K, V)]| {
            for (k, v) in batch {
                let merged = match totals.get(k) {
                    Some(old) => f(old, v),
                    None => v.clone(),
                };
                totals.insert(k.clone(), merged);
            }
        };
        Ok(self.sibling(move |b| {
            let mut h = store.lock();
            let mut totals = match h.derived.take() {
                Some(t) => t,
                None => {
                    let mut t = HashMap::new();
                    for (_, batch) in &h.batches {
                        add(&mut t, batch);
                    }
                    t.retain(|_, v| keep(v));
                    t
                }
            };
            let entering = combine.compute(b);
            add(&mut totals, &entering);
            if let Some(leaving) = h.push(b.id, entering) {
                for (k, v) in leaving.iter() {
                    if let Some(old) = totals.get(k).cloned() {
                        totals.insert(k.clone(), inverse(&old, v));
                    }
                }
            }
            totals.retain(|_, v| keep(v));
            let out = if ends_slide(b.id, slide) {
                sorted(totals.clone())
            } else {
                Vec::new()
            };
            h.derived = Some(totals);
            out
        }))
    }

    /// Keyed state carried from batch to batch (Spark's updateStateByKey): for every key with state or with
    /// values in the batch, `f(values, old state)` gives the new state, or None to drop the key. Emits the
    /// whole state after each batch, keys in order.
    pub fn update_state_by_key<S>(
        &self,
        f: impl Fn(&[V], Option<&S>) -> Option<S> + Send + Sync + 'static,
    ) -> DStream<(K, S)>
    where
        S: Clone + Send + Sync + PartialEq + Serialize + DeserializeOwned + 'static,
    {
        let store: Arc<KeyedStore<K, S>> = Arc::new(KeyedStore::new());
        self.graph.register(Arc::clone(&store) as _);
        self.derive(move |_, xs| {
            let mut st = store.lock();
            let mut grouped: HashMap<K, Vec<V>> = HashMap::new();
            for (k, v) in xs {
                grouped.entry(k.clone()).or_default().push(v.clone());
            }
            let mut keys: Vec<K> = st.map.keys().cloned().collect();
            keys.extend(grouped.keys().filter(|k| !st.map.contains_key(*k)).cloned());
            for k in keys {
                let values = grouped.get(&k).map_or(&[][..], Vec::as_slice);
                match f(values, st.map.get(&k)) {
                    Some(new) => {
                        if st.map.get(&k) != Some(&new) {
                            st.set(k, new);
                        }
                    }
                    None => {
                        st.remove(&k);
                    }
                }
            }
            sorted(st.map.clone())
        })
    }

    /// Keyed state with per-record output and idle timeouts (Spark's mapWithState): `f(key, Some(value),
    /// state, false)` for each record in order; a key that saw no record for `timeout_ms` gets a last call
    /// `f(key, None, state, true)` and its state is dropped. Setting the state to None drops it too.
    pub fn map_with_state<S, U>(
        &self,
        timeout_ms: Option<u64>,
        f: impl Fn(&K, Option<&V>, &mut Option<S>, bool) -> Option<U> + Send + Sync + 'static,
    ) -> Result<DStream<U>, ProcessorError>
    where
        S: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
        U: Clone + Send + Sync + 'static,
    {
        let timeout = timeout_ms
            .map(|t| check_multiple("state timeout", t, self.interval_ms))
            .transpose()?;
        // key → (state, id of the last batch with a record for it)
        let store: Arc<KeyedStore<K, (S, u64)>> = Arc::new(KeyedStore::new());
        self.graph.register(Arc::clone(&store) as _);
        Ok(self.derive(move |b, xs| {
            let mut st = store.lock();
            let mut out = Vec::new();
            for (k, v) in xs {
                let mut state = st.map.get(k).map(|(s, _)| s.clone());
                if let Some(u) = f(k, Some(v), &mut state, false) {
                    out.push(u);
                }
                match state {
                    Some(s) => st.set(k.clone(), (s, b.id)),
                    None => {
                        st.remove(k);
                    }
                }
            }
            if let Some(t) = timeout {
                let mut idle: Vec<K> = st
                    .map
                    .iter()
                    .filter(|(_, (_, last))| b.id >= last + t)
                    .map(|(k, _)| k.clone())
                    .collect();
                idle.sort();
                for k in idle {
                    if let Some((s, _)) = st.remove(&k) {
                        if let Some(u) = f(&k, None, &mut Some(s), true) {
                            out.push(u);
                        }
                    }
                }
            }
            out
        }))
    }
}
