//! Learners as stream operators: the model is one value in a store checkpointed with the job's state, so it
//! commits with each batch's output and offsets and a restarted task resumes from it.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::batch::BatchInfo;
use crate::dstream::DStream;
use crate::state::KeyedStore;

/// A model updated batch by batch.
pub trait StreamingLearner: Send + Sync + Sized + 'static {
    type Point: Clone + Send + Sync + 'static;
    type Model: Clone + Send + Sync + Serialize + DeserializeOwned + 'static;
    type Prediction: Clone + Send + Sync + 'static;

    /// The model after training on one batch's points (starting one when there is none yet), or None when
    /// the batch left it unchanged (no usable points).
    fn train(
        &self,
        model: Option<&Self::Model>,
        points: &[Self::Point],
        batch: &BatchInfo,
    ) -> Option<Self::Model>;

    /// None for features the model cannot score (another dimension).
    fn predict(&self, model: &Self::Model, features: &[f64]) -> Option<Self::Prediction>;

    /// Trains on every batch of `points` (MLlib's `trainOn`).
    fn train_on(self, points: &DStream<Self::Point>) -> Trained<Self> {
        let learner = Arc::new(self);
        let store: Arc<KeyedStore<u8, Self::Model>> = Arc::new(KeyedStore::new());
        points.graph().register(Arc::clone(&store) as _);
        let (l, st) = (Arc::clone(&learner), Arc::clone(&store));
        let updates = points.transform(move |b, xs| {
            if xs.is_empty() {
                return Vec::new();
            }
            let mut s = st.lock();
            match l.train(s.map.get(&MODEL), xs, b) {
                Some(m) => {
                    s.set(MODEL, m.clone());
                    vec![m]
                }
                None => Vec::new(),
            }
        });
        Trained {
            learner,
            store,
            updates,
        }
    }
}

const MODEL: u8 = 0;

/// A model being trained on a stream.
pub struct Trained<L: StreamingLearner> {
    learner: Arc<L>,
    store: Arc<KeyedStore<u8, L::Model>>,
    updates: DStream<L::Model>,
}

impl<L: StreamingLearner> Trained<L> {
    /// The model after every batch that changed it (to send to a model topic, say).
    pub fn updates(&self) -> &DStream<L::Model> {
        &self.updates
    }

    /// The model as of the last batch computed.
    pub fn latest(&self) -> Option<L::Model> {
        self.store.lock().map.get(&MODEL).cloned()
    }

    /// Predictions for a stream of feature vectors (MLlib's `predictOn`), with the model as trained on the
    /// same batch; vectors it cannot score are dropped.
    pub fn predict_on(&self, features: &DStream<Vec<f64>>) -> DStream<L::Prediction> {
        self.predict_on_values(&features.map(|f| ((), f.clone())))
            .map(|(_, p)| p.clone())
    }

    /// The same, keeping each vector's key (MLlib's `predictOnValues`).
    pub fn predict_on_values<K: Clone + Send + Sync + 'static>(
        &self,
        features: &DStream<(K, Vec<f64>)>,
    ) -> DStream<(K, L::Prediction)> {
        let (learner, store, updates) = (
            Arc::clone(&self.learner),
            Arc::clone(&self.store),
            self.updates.clone(),
        );
        features.transform(move |b, xs| {
            // Training on this batch comes first, whichever output asks for its batch first.
            updates.compute(b);
            let s = store.lock();
            let Some(model) = s.map.get(&MODEL) else {
                return Vec::new();
            };
            xs.iter()
                .filter_map(|(k, f)| learner.predict(model, f).map(|p| (k.clone(), p)))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ml::{KMeansModel, StreamingKMeans};
    use crate::state::Graph;

    fn batch(id: u64) -> BatchInfo {
        BatchInfo {
            id,
            time_ms: 0,
            task: "s1-p0".into(),
            ranges: Vec::new(),
        }
    }

    type Build = (DStream<KMeansModel>, DStream<(String, usize)>, Arc<Graph>);

    /// Batch i holds points around (i/3, i/3) and, to predict, one point near the origin and one far out.
    fn build() -> Build {
        let points = DStream::from_fn(100, move |b| {
            if b.id == 2 {
                return Vec::new();
            }
            // Thirds: coordinates whose shortest decimal form only parses back exactly when JSON
            // numbers are read with full precision (the checkpoint is JSON).
            let x = b.id as f64 / 3.0 + 0.1;
            vec![vec![x, x], vec![x + 0.5, x / 7.0], vec![10.0 + x, 10.0]]
        });
        let trained = StreamingKMeans::new(2)
            .decay_factor(0.5)
            .initial_centers(vec![vec![0.0, 0.0], vec![10.0, 10.0]], vec![1.0, 1.0])
            .train_on(&points);
        let probes = points.transform(|_, _| {
            vec![
                ("near".to_string(), vec![0.1, 0.1]),
                ("far".to_string(), vec![20.0, 20.0]),
            ]
        });
        let predictions = trained.predict_on_values(&probes);
        let graph = Arc::clone(points.graph());
        (trained.updates().clone(), predictions, graph)
    }

    #[test]
    fn a_model_restored_from_its_changelog_trains_on_as_if_never_stopped() {
        let (updates, preds, _) = build();
        let mut straight = Vec::new();
        for id in 0..5 {
            // Predictions first: training on the batch still comes before them.
            let p = preds.compute(&batch(id));
            straight.push((
                updates.compute(&batch(id)).as_ref().clone(),
                p.as_ref().clone(),
            ));
        }
        assert!(
            straight[2].0.is_empty(),
            "an empty batch leaves the model as it was"
        );
        assert_eq!(straight[4].0[0].batches, 4);
        assert_eq!(straight[0].1, vec![("near".into(), 0), ("far".into(), 1)]);

        // Stop after batch 2, restore the checkpoint into a new graph, and go on.
        let (u1, p1, g1) = build();
        let mut changes = Vec::new();
        for id in 0..3 {
            p1.compute(&batch(id));
            u1.compute(&batch(id));
            for store in g1.stores() {
                changes.extend(store.take_changes().expect("changes"));
            }
        }
        let entries = changes
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        let (u2, p2, g2) = build();
        g2.stores()[0].restore(entries).expect("restore");
        for (id, (model, predictions)) in straight.iter().enumerate().skip(3) {
            let id = id as u64;
            assert_eq!(&*p2.compute(&batch(id)), predictions);
            assert_eq!(&*u2.compute(&batch(id)), model);
        }
    }
}
