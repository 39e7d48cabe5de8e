//! MLlib's `GradientDescent.runMiniBatchSGD`: for iteration i = 1..=n, the mean gradient over a sample of
//! `mini_batch_fraction` of the points, a step of `step_size / sqrt(i)` (shrinking the weights by
//! `1 - step * reg_param` first with the squared-L2 updater), stopping early once the weights move less
//! than `convergence_tol` relative to their norm.

use super::point::LabeledPoint;
use super::rng::SplitMix64;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gradient {
    /// Least squares: (w·x - y) x.
    LeastSquares,
    /// Binary logistic loss: (σ(w·x) - y) x.
    Logistic,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Updater {
    Simple,
    SquaredL2,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SgdSettings {
    pub step_size: f64,
    pub iterations: u32,
    pub mini_batch_fraction: f64,
    pub reg_param: f64,
    pub convergence_tol: f64,
}

pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn norm(v: &[f64]) -> f64 {
    dot(v, v).sqrt()
}

impl Gradient {
    /// Adds this point's gradient at `weights` to `sum`.
    fn add(self, weights: &[f64], p: &LabeledPoint, sum: &mut [f64]) {
        let margin = dot(weights, &p.features);
        let multiplier = match self {
            Gradient::LeastSquares => margin - p.label,
            Gradient::Logistic => 1.0 / (1.0 + (-margin).exp()) - p.label,
        };
        for (s, x) in sum.iter_mut().zip(&p.features) {
            *s += multiplier * x;
        }
    }
}

/// Runs SGD from `weights` over one batch's points (all of the weights' dimension). `seed` fixes the
/// samples, so a batch recomputed after a crash takes the same ones.
pub fn run(
    points: &[LabeledPoint],
    mut weights: Vec<f64>,
    gradient: Gradient,
    updater: Updater,
    s: &SgdSettings,
    seed: u64,
) -> Vec<f64> {
    let mut previous: Option<Vec<f64>> = None;
    for i in 1..=s.iterations {
        let mut rng = SplitMix64::new(seed ^ (42 + u64::from(i)).wrapping_mul(0x9E37_79B9));
        let mut sum = vec![0.0; weights.len()];
        let mut size = 0usize;
        for p in points {
            if s.mini_batch_fraction < 1.0 && rng.next_f64() >= s.mini_batch_fraction {
                continue;
            }
            gradient.add(&weights, p, &mut sum);
            size += 1;
        }
        if size == 0 {
            continue;
        }
        let step = s.step_size / f64::from(i).sqrt();
        if updater == Updater::SquaredL2 {
            let shrink = 1.0 - step * s.reg_param;
            for w in &mut weights {
                *w *= shrink;
            }
        }
        for (w, g) in weights.iter_mut().zip(&sum) {
            *w -= step * g / size as f64;
        }
        if let Some(prev) = &previous {
            let diff: Vec<f64> = prev.iter().zip(&weights).map(|(a, b)| a - b).collect();
            if norm(&diff) < s.convergence_tol * norm(&weights).max(1.0) {
                break;
            }
        }
        previous = Some(weights.clone());
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(iterations: u32) -> SgdSettings {
        SgdSettings {
            step_size: 0.5,
            iterations,
            mini_batch_fraction: 1.0,
            reg_param: 0.0,
            convergence_tol: 0.0,
        }
    }

    fn lp(label: f64, features: &[f64]) -> LabeledPoint {
        LabeledPoint {
            label,
            features: features.to_vec(),
        }
    }

    #[test]
    fn one_iteration_is_a_step_against_the_mean_gradient() {
        let pts = [lp(2.0, &[1.0, 0.0]), lp(4.0, &[0.0, 2.0])];
        let w = run(
            &pts,
            vec![0.0, 0.0],
            Gradient::LeastSquares,
            Updater::Simple,
            &settings(1),
            1,
        );
        // gradients: -2*(1,0) and -4*(0,2); mean (-1, -4); step 0.5
        assert_eq!(w, vec![0.5, 2.0]);
        let l2 = SgdSettings {
            reg_param: 0.2,
            ..settings(1)
        };
        let w = run(
            &pts,
            vec![1.0, 1.0],
            Gradient::LeastSquares,
            Updater::SquaredL2,
            &l2,
            1,
        );
        // shrink by 1 - 0.5*0.2 = 0.9 first; gradients at (1,1): -1*(1,0), -2*(0,2) -> mean (-0.5, -2)
        assert!(
            (w[0] - (0.9 + 0.25)).abs() < 1e-12 && (w[1] - (0.9 + 1.0)).abs() < 1e-12,
            "{w:?}"
        );
    }

    #[test]
    fn many_iterations_fit_a_line_and_a_separable_set() {
        let pts: Vec<LabeledPoint> = (0..20)
            .map(|i| lp(3.0 * i as f64 / 10.0, &[i as f64 / 10.0]))
            .collect();
        let w = run(
            &pts,
            vec![0.0],
            Gradient::LeastSquares,
            Updater::Simple,
            &settings(200),
            1,
        );
        assert!((w[0] - 3.0).abs() < 0.05, "{w:?}");
        let pts: Vec<LabeledPoint> = (-10..10)
            .map(|i| lp(if i >= 0 { 1.0 } else { 0.0 }, &[i as f64, 1.0]))
            .collect();
        let w = run(
            &pts,
            vec![0.0, 0.0],
            Gradient::Logistic,
            Updater::Simple,
            &settings(100),
            1,
        );
        let far = pts.iter().filter(|p| p.features[0].abs() >= 2.0);
        assert!(far.clone().count() > 10);
        assert!(
            far.clone()
                .all(|p| (dot(&w, &p.features) > 0.0) == (p.label == 1.0)),
            "{w:?}"
        );
    }

    fn least_squares(pts: &[LabeledPoint], s: &SgdSettings, seed: u64) -> Vec<f64> {
        run(
            pts,
            vec![0.0],
            Gradient::LeastSquares,
            Updater::Simple,
            s,
            seed,
        )
    }

    #[test]
    fn sampling_is_fixed_by_the_seed_and_convergence_stops_early() {
        let pts: Vec<LabeledPoint> = (0..50).map(|i| lp(i as f64, &[1.0])).collect();
        let s = SgdSettings {
            mini_batch_fraction: 0.3,
            ..settings(5)
        };
        let a = least_squares(&pts, &s, 7);
        assert_eq!(a, least_squares(&pts, &s, 7));
        assert_ne!(a, least_squares(&pts, &s, 8));
        let tol = SgdSettings {
            convergence_tol: 0.5,
            ..settings(50)
        };
        let early = least_squares(&pts, &tol, 1);
        let full = least_squares(&pts, &settings(50), 1);
        assert_ne!(early, full);
    }
}
