//! MLlib's `StreamingKMeans`: each batch, every point goes to its closest centre; the centres' weights are
//! discounted by the decay factor (once per batch, or once per point with [`TimeUnit::Points`]) and each
//! centre moves to the weighted mean of its old position and its new points. A cluster whose weight falls
//! below 1e-8 of the largest one is dying: the largest is split in two in its place.

use serde::{Deserialize, Serialize};

use super::point::Vector;
use super::rng::SplitMix64;
use super::stream::StreamingLearner;
use crate::batch::BatchInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimeUnit {
    /// The decay factor applies once per batch.
    Batches,
    /// Once per point: a batch of n points discounts by decay^n.
    Points,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KMeansModel {
    pub centers: Vec<Vector>,
    /// Each centre's weight: how many points it stands for after decay.
    pub weights: Vec<f64>,
    /// Batches with points this model was trained on.
    #[serde(default)]
    pub batches: u64,
    /// Points this model was trained on.
    #[serde(default)]
    pub points: u64,
}

impl KMeansModel {
    pub fn new(centers: Vec<Vector>, weights: Vec<f64>) -> Self {
        KMeansModel {
            centers,
            weights,
            batches: 0,
            points: 0,
        }
    }

    pub fn dim(&self) -> usize {
        self.centers.first().map_or(0, Vec::len)
    }

    /// The index of the closest centre (the first of equally close ones), or None for a point of another
    /// dimension.
    pub fn predict(&self, point: &[f64]) -> Option<usize> {
        if point.len() != self.dim() {
            return None;
        }
        let mut best: Option<(usize, f64)> = None;
        for (i, c) in self.centers.iter().enumerate() {
            let d: f64 = c.iter().zip(point).map(|(a, b)| (a - b) * (a - b)).sum();
            if best.is_none_or(|(_, bd)| d < bd) {
                best = Some((i, d));
            }
        }
        best.map(|(i, _)| i)
    }

    /// One batch of MLlib's update rule. Points of another dimension are ignored; a batch with none left
    /// changes nothing (see the module docs of `ml`).
    pub fn update(&mut self, points: &[Vector], decay: f64, unit: TimeUnit) {
        let dim = self.dim();
        let k = self.centers.len();
        let mut sums = vec![vec![0.0; dim]; k];
        let mut counts = vec![0u64; k];
        for p in points {
            if let Some(i) = self.predict(p) {
                counts[i] += 1;
                for (s, x) in sums[i].iter_mut().zip(p) {
                    *s += x;
                }
            }
        }
        let n: u64 = counts.iter().sum();
        if n == 0 {
            return;
        }
        let discount = match unit {
            TimeUnit::Batches => decay,
            TimeUnit::Points => decay.powf(n as f64),
        };
        for w in &mut self.weights {
            *w *= discount;
        }
        for i in 0..k {
            if counts[i] == 0 {
                continue;
            }
            let count = counts[i] as f64;
            let updated = self.weights[i] + count;
            let lambda = count / updated.max(1e-16);
            self.weights[i] = updated;
            for (c, s) in self.centers[i].iter_mut().zip(&sums[i]) {
                *c = (1.0 - lambda) * *c + (lambda / count) * s;
            }
        }
        self.split_dying_cluster();
        self.batches += 1;
        self.points += n;
    }

    fn split_dying_cluster(&mut self) {
        let by_weight = |pick: fn(f64, f64) -> bool| {
            let mut best = 0;
            for (i, w) in self.weights.iter().enumerate() {
                if pick(*w, self.weights[best]) {
                    best = i;
                }
            }
            best
        };
        let largest = by_weight(|w, b| w > b);
        let smallest = by_weight(|w, b| w < b);
        let (max, min) = (self.weights[largest], self.weights[smallest]);
        if largest == smallest || min >= 1e-8 * max {
            return;
        }
        tracing::info!(
            smallest,
            largest,
            "k-means cluster is dying; splitting the largest in two"
        );
        let weight = (max + min) / 2.0;
        self.weights[largest] = weight;
        self.weights[smallest] = weight;
        let centre = self.centers[largest].clone();
        for (j, x) in centre.iter().enumerate() {
            let p = 1e-14 * x.abs().max(1.0);
            self.centers[largest][j] = x + p;
            self.centers[smallest][j] = x - p;
        }
    }
}

/// How the model starts.
#[derive(Debug, Clone, PartialEq)]
pub enum InitialCenters {
    Given(KMeansModel),
    /// `dim`-dimensional centres drawn from a standard normal distribution, each with `weight`.
    Random {
        dim: usize,
        weight: f64,
        seed: u64,
    },
}

/// The learner's settings (MLlib's defaults: decay factor 1.0, time unit batches).
#[derive(Debug, Clone, PartialEq)]
pub struct StreamingKMeans {
    pub k: usize,
    pub decay_factor: f64,
    pub time_unit: TimeUnit,
    pub initial: Option<InitialCenters>,
}

impl StreamingKMeans {
    pub fn new(k: usize) -> Self {
        StreamingKMeans {
            k,
            decay_factor: 1.0,
            time_unit: TimeUnit::Batches,
            initial: None,
        }
    }

    pub fn decay_factor(mut self, a: f64) -> Self {
        self.decay_factor = a;
        self
    }

    /// The decay factor that halves a point's weight after `half_life` batches or points.
    pub fn half_life(mut self, half_life: f64, unit: TimeUnit) -> Self {
        self.decay_factor = (0.5f64.ln() / half_life).exp();
        self.time_unit = unit;
        self
    }

    pub fn time_unit(mut self, unit: TimeUnit) -> Self {
        self.time_unit = unit;
        self
    }

    pub fn initial_centers(mut self, centers: Vec<Vector>, weights: Vec<f64>) -> Self {
        self.k = centers.len();
        self.initial = Some(InitialCenters::Given(KMeansModel::new(centers, weights)));
        self
    }

    pub fn initial_model(mut self, model: KMeansModel) -> Self {
        self.k = model.centers.len();
        self.initial = Some(InitialCenters::Given(model));
        self
    }

    pub fn random_centers(mut self, dim: usize, weight: f64, seed: u64) -> Self {
        self.initial = Some(InitialCenters::Random { dim, weight, seed });
        self
    }

    /// The starting model; random centres take their dimension from the first point when none was given.
    fn start(&self, first: Option<&Vector>) -> Option<KMeansModel> {
        match &self.initial {
            Some(InitialCenters::Given(m)) => Some(m.clone()),
            Some(InitialCenters::Random { dim, weight, seed }) => {
                Some(random_model(self.k, *dim, *weight, *seed))
            }
            None => first.map(|p| random_model(self.k, p.len(), 0.0, 42)),
        }
    }
}

fn random_model(k: usize, dim: usize, weight: f64, seed: u64) -> KMeansModel {
    let mut rng = SplitMix64::new(seed);
    let centers = (0..k)
        .map(|_| (0..dim).map(|_| rng.next_gaussian()).collect())
        .collect();
    KMeansModel::new(centers, vec![weight; k])
}

impl StreamingLearner for StreamingKMeans {
    type Point = Vector;
    type Model = KMeansModel;
    type Prediction = usize;

    fn train(
        &self,
        model: Option<&KMeansModel>,
        points: &[Vector],
        _: &BatchInfo,
    ) -> Option<KMeansModel> {
        let mut m = model.cloned().or_else(|| self.start(points.first()))?;
        let before = m.batches;
        m.update(points, self.decay_factor, self.time_unit);
        (m.batches > before).then_some(m)
    }

    fn predict(&self, model: &KMeansModel, features: &[f64]) -> Option<usize> {
        model.predict(features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64]) -> bool {
        a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    }

    #[test]
    fn a_batch_moves_each_centre_to_the_weighted_mean_after_decay() {
        let mut m = KMeansModel::new(vec![vec![0.0, 0.0], vec![10.0, 10.0]], vec![2.0, 1.0]);
        m.update(
            &[vec![1.0, 1.0], vec![3.0, 1.0], vec![9.0, 9.0]],
            0.5,
            TimeUnit::Batches,
        );
        // centre 0: weight 2*0.5=1, two points with mean (2,1): lambda 2/3 -> (4/3, 2/3), weight 3
        assert!(
            close(&m.centers[0], &[4.0 / 3.0, 2.0 / 3.0]),
            "{:?}",
            m.centers
        );
        // centre 1: weight 0.5, one point (9,9): lambda 1/1.5 -> 10/3 + 6 = 9.333...
        assert!(
            close(&m.centers[1], &[28.0 / 3.0, 28.0 / 3.0]),
            "{:?}",
            m.centers
        );
        assert!(close(&m.weights, &[3.0, 1.5]));
        assert_eq!((m.batches, m.points), (1, 3));
        // Per point: a batch of 3 points discounts by 0.5^3.
        let mut p = KMeansModel::new(vec![vec![0.0]], vec![8.0]);
        p.update(&[vec![1.0], vec![1.0], vec![1.0]], 0.5, TimeUnit::Points);
        assert!(close(&p.weights, &[4.0]));
        assert!(close(&p.centers[0], &[0.75]));
    }

    #[test]
    fn a_batch_without_points_of_the_model_dimension_changes_nothing() {
        let m0 = KMeansModel::new(vec![vec![0.0, 0.0]], vec![5.0]);
        let mut m = m0.clone();
        m.update(&[], 0.5, TimeUnit::Batches);
        m.update(&[vec![1.0]], 0.5, TimeUnit::Batches);
        assert_eq!(m, m0);
        assert_eq!(m.predict(&[1.0]), None);
    }

    #[test]
    fn a_dying_cluster_takes_half_of_the_largest() {
        // Decay 0 forgets the past: centre 1 gets no points and weight 0, so it is dying.
        let mut m = KMeansModel::new(vec![vec![0.0], vec![100.0]], vec![1.0, 1.0]);
        m.update(&[vec![1.0], vec![3.0]], 0.0, TimeUnit::Batches);
        assert!(close(&m.weights, &[1.0, 1.0]), "{:?}", m.weights);
        assert!(m.centers[0][0] > 2.0 && m.centers[1][0] < 2.0);
        assert!((m.centers[0][0] - 2.0).abs() < 1e-12 && (m.centers[1][0] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn random_centres_are_fixed_by_their_seed_and_half_life_sets_the_decay() {
        let km = StreamingKMeans::new(3).random_centers(2, 0.0, 9);
        let a = km.start(None).expect("model");
        assert_eq!(a, km.start(None).expect("model"));
        assert_eq!((a.centers.len(), a.dim()), (3, 2));
        let h = StreamingKMeans::new(2).half_life(4.0, TimeUnit::Points);
        assert!((h.decay_factor.powi(4) - 0.5).abs() < 1e-12);
        assert_eq!(h.time_unit, TimeUnit::Points);
    }
}
