//! A small seeded generator (SplitMix64) for random initial centres and mini-batch sampling. Its own code,
//! not a library's, so a seed means the same numbers in every build: a batch sampled again after a crash
//! must take the same points.

pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn next_gaussian(&mut self) -> f64 {
        let u1 = 1.0 - self.next_f64();
        let u2 = self.next_f64();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_numbers_and_they_look_uniform_and_normal() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = SplitMix64::new(42);
                move |_| r.next_u64()
            })
            .collect();
        let mut r = SplitMix64::new(42);
        assert!(a.iter().all(|x| *x == r.next_u64()));
        let mut r = SplitMix64::new(7);
        let n = 20_000;
        let u: Vec<f64> = (0..n).map(|_| r.next_f64()).collect();
        assert!(u.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = u.iter().sum::<f64>() / n as f64;
        assert!((mean - 0.5).abs() < 0.01, "{mean}");
        let g: Vec<f64> = (0..n).map(|_| r.next_gaussian()).collect();
        let gm = g.iter().sum::<f64>() / n as f64;
        let var = g.iter().map(|x| (x - gm) * (x - gm)).sum::<f64>() / n as f64;
        assert!(gm.abs() < 0.03 && (var - 1.0).abs() < 0.05, "{gm} {var}");
    }
}
