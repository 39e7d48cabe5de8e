//! Kafka's sampled rate (org.apache.kafka.common.metrics.stats.Rate over SampledStat): values summed into
//! `quota.window.num` samples of `quota.window.size.seconds`, the rate taken over the samples' span but at
//! least over all but one full window, so a burst right after a quiet period is not mistaken for a huge
//! rate. The throttle time for a rate over its quota is Kafka's: (rate - quota) / quota × window.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct Windows {
    pub samples: usize,
    pub sample: Duration,
}

impl Default for Windows {
    /// Kafka's defaults: 11 samples of 1 s.
    fn default() -> Self {
        Windows {
            samples: 11,
            sample: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    start: Instant,
    value: f64,
}

#[derive(Debug)]
pub struct SampledRate {
    windows: Windows,
    samples: Vec<Sample>,
}

impl SampledRate {
    pub fn new(windows: Windows, now: Instant) -> Self {
        SampledRate {
            windows,
            samples: vec![Sample {
                start: now,
                value: 0.0,
            }],
        }
    }

    pub fn record(&mut self, value: f64, now: Instant) {
        self.expire(now);
        let sample = self.windows.sample;
        match self.samples.last_mut() {
            Some(last) if now.duration_since(last.start) < sample => last.value += value,
            _ => self.samples.push(Sample { start: now, value }),
        }
        if self.samples.len() > self.windows.samples {
            let excess = self.samples.len() - self.windows.samples;
            self.samples.drain(..excess);
        }
    }

    fn expire(&mut self, now: Instant) {
        let span = self.windows.sample * self.windows.samples as u32;
        self.samples.retain(|s| now.duration_since(s.start) < span);
    }

    /// The span the rate is measured over, in seconds (Kafka's `Rate.windowSize`).
    fn window_secs(&self, now: Instant) -> f64 {
        let sample = self.windows.sample.as_secs_f64();
        let oldest = self.samples.first().map_or(now, |s| s.start);
        let mut elapsed = now.duration_since(oldest).as_secs_f64();
        let full = (elapsed / sample).floor();
        let min_full = self.windows.samples.saturating_sub(1) as f64;
        if full < min_full {
            elapsed += (min_full - full) * sample;
        }
        elapsed.max(sample)
    }

    /// Units per second over the window.
    pub fn rate(&mut self, now: Instant) -> f64 {
        self.expire(now);
        let total: f64 = self.samples.iter().map(|s| s.value).sum();
        total / self.window_secs(now)
    }

    /// How long the client must wait for its rate to fall back to `quota` (zero when within it), capped
    /// at the whole window as Kafka caps it.
    pub fn throttle(&mut self, quota: f64, now: Instant) -> Duration {
        if quota <= 0.0 {
            return Duration::ZERO;
        }
        let rate = self.rate(now);
        if rate <= quota {
            return Duration::ZERO;
        }
        let window = self.window_secs(now);
        let secs = ((rate - quota) / quota * window)
            .min((self.windows.sample * self.windows.samples as u32).as_secs_f64());
        Duration::from_secs_f64(secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_at_the_quota_is_not_throttled_and_a_burst_is() {
        let start = Instant::now();
        let mut r = SampledRate::new(Windows::default(), start);
        // 1000 units per second for 20 s: at the quota.
        for i in 0..200 {
            let now = start + Duration::from_millis(100 * i);
            r.record(100.0, now);
            if i > 110 {
                let rate = r.rate(now);
                assert!((900.0..=1100.0).contains(&rate), "rate {rate} at {i}");
            }
        }
        let now = start + Duration::from_millis(20_000);
        assert!(r.throttle(2000.0, now).is_zero());
        // A burst of 10,000 over a ~10 s window of 1000/s: rate ≈ 2000/s, 2× a 1000/s quota.
        r.record(10_000.0, now);
        let t = r.throttle(1000.0, now);
        assert!(
            t > Duration::from_secs(5) && t <= Duration::from_secs(11),
            "{t:?}"
        );
    }

    #[test]
    fn the_first_burst_is_measured_over_the_minimum_window() {
        let start = Instant::now();
        let mut r = SampledRate::new(Windows::default(), start);
        r.record(10_000.0, start);
        // Over at least 10 full windows: 1000/s, not 10,000/s in an instant.
        assert!((r.rate(start) - 1000.0).abs() < 1.0);
        assert!(r.throttle(1000.0, start).is_zero());
        assert!(r.throttle(500.0, start) >= Duration::from_secs(9));
    }
}
