//! Summaries with targeted quantiles over a sliding time window, computed the
//! way Prometheus' Go client computes them (statsd_exporter's summaries come
//! from it), so quantile values match statsd_exporter's for the same input:
//!
//! - each quantile objective `(q, ε)` is estimated with the biased-quantile
//!   stream of Cormode, Korn, Muthukrishnan and Srivastava ("CKMS"), with a
//!   500-sample insert buffer that is merged and compressed when full;
//! - observations wait in a buffer of `buf_cap` values (default 500) that is
//!   flushed into the streams when full, when a time window ends, or at a
//!   scrape;
//! - the window of `max_age` (default 10 minutes) is covered by `age_buckets`
//!   streams (default 5) that start `max_age / age_buckets` apart; every
//!   observation goes into all of them, the oldest is answered from and is
//!   reset when its time is over;
//! - a quantile with no observation in the window is NaN; sum and count are
//!   over all time.
//!
//! An observation may carry a weight (a StatsD sample rate of 0.1 counts
//! each value ten times). The copies are inserted one by one, as the Go
//! client inserts repeated observations, up to [`MAX_REPEATS`]; beyond that
//! (sample rates below 1/10000) the rest only adds to sum and count, which
//! bounds the work one line can cause where the Go exporter would allocate
//! an event per copy.

use std::sync::Arc;
use std::time::{Duration, Instant};

/// Insert buffer of each quantile stream (fixed in the Go implementation).
const STREAM_BUFFER: usize = 500;

/// The most copies of one weighted observation fed to the quantile streams.
pub const MAX_REPEATS: u64 = 10_000;

/// Default quantile objectives `(quantile, allowed error)`.
pub const DEFAULT_OBJECTIVES: [(f64, f64); 3] = [(0.5, 0.05), (0.9, 0.01), (0.99, 0.001)];
/// Default length of the sliding window.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// Default number of streams covering the window.
pub const DEFAULT_AGE_BUCKETS: u32 = 5;
/// Default size of the observation buffer.
pub const DEFAULT_BUF_CAP: u32 = 500;

/// How a summary is computed; zero values take the defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryConfig {
    /// `(quantile, allowed error)`, sorted by quantile without duplicates.
    objectives: Box<[(f64, f64)]>,
    stream_duration: Duration,
    age_buckets: u32,
    buf_cap: usize,
}

impl SummaryConfig {
    /// A configuration. Objectives are deduplicated by quantile (the last
    /// error given for a quantile wins) and sorted; empty objectives, a zero
    /// `max_age`, `age_buckets` or `buf_cap` take the defaults.
    pub fn new(
        objectives: &[(f64, f64)],
        max_age: Duration,
        age_buckets: u32,
        buf_cap: u32,
    ) -> Self {
        let mut objs: Vec<(f64, f64)> = Vec::with_capacity(objectives.len());
        let given = if objectives.is_empty() {
            &DEFAULT_OBJECTIVES[..]
        } else {
            objectives
        };
        for &(q, e) in given {
            match objs.iter_mut().find(|(oq, _)| *oq == q) {
                Some(o) => o.1 = e,
                None => objs.push((q, e)),
            }
        }
        objs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let max_age = if max_age.is_zero() {
            DEFAULT_MAX_AGE
        } else {
            max_age
        };
        let age_buckets = if age_buckets == 0 {
            DEFAULT_AGE_BUCKETS
        } else {
            age_buckets
        };
        let buf_cap = if buf_cap == 0 {
            DEFAULT_BUF_CAP
        } else {
            buf_cap
        };
        // A zero window step would never advance; the Go client would spin.
        let stream_duration = (max_age / age_buckets).max(Duration::from_micros(1));
        SummaryConfig {
            objectives: objs.into_boxed_slice(),
            stream_duration,
            age_buckets,
            buf_cap: buf_cap as usize,
        }
    }

    /// The quantiles reported, in increasing order.
    pub fn quantiles(&self) -> impl Iterator<Item = f64> + '_ {
        self.objectives.iter().map(|o| o.0)
    }
}

impl Default for SummaryConfig {
    fn default() -> Self {
        SummaryConfig::new(&[], Duration::ZERO, 0, 0)
    }
}

/// One entry of a quantile stream: a value standing for `width` ranks, with
/// rank uncertainty `delta`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    value: f64,
    width: f64,
    delta: f64,
}

/// A CKMS biased-quantile stream for a set of targets.
#[derive(Debug)]
struct QuantileStream {
    config: Arc<SummaryConfig>,
    buffer: Vec<Entry>,
    sorted: bool,
    list: Vec<Entry>,
    n: f64,
}

impl QuantileStream {
    fn new(config: Arc<SummaryConfig>) -> Self {
        QuantileStream {
            config,
            buffer: Vec::new(),
            sorted: true,
            list: Vec::new(),
            n: 0.0,
        }
    }

    /// The allowed rank error at rank `r`: the tightest over all targets.
    fn invariant(&self, r: f64) -> f64 {
        let mut m = f64::MAX;
        for &(q, e) in self.config.objectives.iter() {
            let f = if q * self.n <= r {
                (2.0 * e * r) / q
            } else {
                (2.0 * e * (self.n - r)) / (1.0 - q)
            };
            if f < m {
                m = f;
            }
        }
        m
    }

    fn insert(&mut self, value: f64) {
        self.buffer.push(Entry {
            value,
            width: 1.0,
            delta: 0.0,
        });
        self.sorted = false;
        if self.buffer.len() == STREAM_BUFFER {
            self.flush();
        }
    }

    fn count(&self) -> usize {
        self.buffer.len() + self.n as usize
    }

    fn reset(&mut self) {
        self.buffer.clear();
        self.list.clear();
        self.n = 0.0;
        self.sorted = true;
    }

    fn sort_buffer(&mut self) {
        if !self.sorted {
            self.sorted = true;
            self.buffer.sort_by(|a, b| a.value.total_cmp(&b.value));
        }
    }

    fn flush(&mut self) {
        self.sort_buffer();
        let samples = std::mem::take(&mut self.buffer);
        self.merge(&samples);
        self.buffer = samples;
        self.buffer.clear();
    }

    fn merge(&mut self, samples: &[Entry]) {
        let mut r = 0.0;
        let mut i = 0;
        for sample in samples {
            let mut inserted = false;
            while i < self.list.len() {
                let c = self.list[i];
                if c.value > sample.value {
                    let delta = sample.delta.max(self.invariant(r).floor() - 1.0);
                    self.list.insert(
                        i,
                        Entry {
                            value: sample.value,
                            width: sample.width,
                            delta,
                        },
                    );
                    i += 1;
                    inserted = true;
                    break;
                }
                r += c.width;
                i += 1;
            }
            if !inserted {
                self.list.push(Entry {
                    value: sample.value,
                    width: sample.width,
                    delta: 0.0,
                });
                i += 1;
            }
            self.n += sample.width;
            r += sample.width;
        }
        self.compress();
    }

    fn compress(&mut self) {
        if self.list.len() < 2 {
            return;
        }
        let mut xi = self.list.len() - 1;
        let mut x = self.list[xi];
        let mut r = self.n - 1.0 - x.width;
        for i in (0..xi).rev() {
            let c = self.list[i];
            if c.width + x.width + x.delta <= self.invariant(r) {
                x.width += c.width;
                self.list[xi] = x;
                self.list.remove(i);
                xi -= 1;
            } else {
                x = c;
                xi = i;
            }
            r -= c.width;
        }
    }

    fn query(&mut self, q: f64) -> f64 {
        if self.list.is_empty() {
            // Nothing merged yet: answer exactly from the sorted buffer.
            let len = self.buffer.len();
            if len == 0 {
                return 0.0;
            }
            let i = ((len as f64 * q).ceil() as usize).saturating_sub(1);
            self.sort_buffer();
            return self.buffer[i.min(len - 1)].value;
        }
        self.flush();
        let mut t = (q * self.n).ceil();
        t += (self.invariant(t) / 2.0).ceil();
        let mut p = self.list[0];
        let mut r = 0.0;
        for c in &self.list[1..] {
            r += p.width;
            if r + c.width + c.delta > t {
                return p.value;
            }
            p = *c;
        }
        p.value
    }
}

/// The state of one summary series.
#[derive(Debug)]
pub struct Summary {
    config: Arc<SummaryConfig>,
    streams: Vec<QuantileStream>,
    head: usize,
    head_expires: Instant,
    hot_expires: Instant,
    /// Buffered observations not yet in the streams.
    hot: Vec<f64>,
    count: u64,
    sum: f64,
}

impl Summary {
    /// An empty summary whose first window starts at `now`.
    pub fn new(config: Arc<SummaryConfig>, now: Instant) -> Self {
        let streams = (0..config.age_buckets)
            .map(|_| QuantileStream::new(config.clone()))
            .collect();
        let head_expires = now + config.stream_duration;
        Summary {
            config,
            streams,
            head: 0,
            head_expires,
            hot_expires: head_expires,
            hot: Vec::new(),
            count: 0,
            sum: 0.0,
        }
    }

    /// Records `value` observed `weight` times.
    pub fn observe(&mut self, value: f64, weight: u64, now: Instant) {
        let repeats = weight.min(MAX_REPEATS);
        for _ in 0..repeats {
            self.push(value, now);
        }
        if weight > repeats {
            self.count += weight - repeats;
            self.sum += value * (weight - repeats) as f64;
        }
    }

    fn push(&mut self, value: f64, now: Instant) {
        if now > self.hot_expires {
            self.flush(now);
        }
        self.hot.push(value);
        if self.hot.len() >= self.config.buf_cap {
            self.flush(now);
        }
    }

    /// Moves buffered observations into the streams and retires streams
    /// whose time is over.
    fn flush(&mut self, now: Instant) {
        while now > self.hot_expires {
            self.hot_expires += self.config.stream_duration;
        }
        for &value in &self.hot {
            for stream in &mut self.streams {
                stream.insert(value);
            }
            self.count += 1;
            self.sum += value;
        }
        self.hot.clear();
        while self.hot_expires != self.head_expires {
            self.streams[self.head].reset();
            self.head = (self.head + 1) % self.streams.len();
            self.head_expires += self.config.stream_duration;
        }
    }

    /// `(quantiles, sum, count)` as of `now`.
    pub fn read(&mut self, now: Instant) -> (Vec<(f64, f64)>, f64, u64) {
        self.flush(now);
        let head = &mut self.streams[self.head];
        let empty = head.count() == 0;
        let quantiles = self
            .config
            .objectives
            .iter()
            .map(|&(q, _)| (q, if empty { f64::NAN } else { head.query(q) }))
            .collect();
        (quantiles, self.sum, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary() -> (Summary, Instant) {
        let now = Instant::now();
        (Summary::new(Arc::new(SummaryConfig::default()), now), now)
    }

    #[test]
    fn small_sets_are_exact() {
        let (mut s, now) = summary();
        for v in [5.0, 1.0, 4.0, 2.0, 3.0] {
            s.observe(v, 1, now);
        }
        let (q, sum, count) = s.read(now);
        assert_eq!(q, vec![(0.5, 3.0), (0.9, 5.0), (0.99, 5.0)]);
        assert_eq!((sum, count), (15.0, 5));
    }

    #[test]
    fn empty_window_is_nan_but_keeps_sum_and_count() {
        let (mut s, now) = summary();
        s.observe(300.0, 1, now);
        let (q, sum, count) = s.read(now);
        assert_eq!(q[0], (0.5, 300.0));
        // After the whole window has passed every stream has been reset.
        let later = now + DEFAULT_MAX_AGE + Duration::from_secs(1);
        let (q, sum2, count2) = s.read(later);
        assert!(q.iter().all(|(_, v)| v.is_nan()), "{q:?}");
        assert_eq!((sum2, count2), (sum, count));
    }

    #[test]
    fn window_slides_by_age_bucket() {
        let (mut s, now) = summary();
        s.observe(1.0, 1, now);
        // One bucket (2 minutes) later the old value is still in the head.
        let t1 = now + Duration::from_secs(121);
        s.observe(100.0, 1, t1);
        let (q, _, _) = s.read(t1);
        assert_eq!(q[0].1, 1.0);
        assert_eq!(q[2].1, 100.0);
    }

    #[test]
    fn large_streams_stay_within_the_error_bounds() {
        let (mut s, now) = summary();
        // 0..10000 shuffled deterministically.
        let n = 10_000u64;
        let mut x = 1u64;
        for _ in 0..n {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.observe((x % n) as f64, 1, now);
        }
        let (q, _, count) = s.read(now);
        assert_eq!(count, n);
        for (quantile, value) in q {
            let allowed = DEFAULT_OBJECTIVES
                .iter()
                .find(|o| o.0 == quantile)
                .unwrap()
                .1;
            let rank = value / n as f64;
            assert!(
                (rank - quantile).abs() <= allowed + 0.01,
                "q{quantile}: {value}"
            );
        }
        // Compression keeps the streams small.
        assert!(s.streams.iter().all(|st| st.list.len() < 1000));
    }

    #[test]
    fn weights_count_each_observation() {
        let (mut s, now) = summary();
        s.observe(2.0, 10, now);
        s.observe(4.0, 1_000_000, now);
        let (q, sum, count) = s.read(now);
        assert_eq!(count, 1_000_010);
        assert_eq!(sum, 20.0 + 4_000_000.0);
        assert_eq!(q[0].1, 4.0);
        assert_eq!(s.streams[0].count(), 10 + MAX_REPEATS as usize);
    }

    #[test]
    fn config_dedups_and_sorts_objectives() {
        let c = SummaryConfig::new(
            &[(0.9, 0.1), (0.5, 0.05), (0.9, 0.01)],
            Duration::ZERO,
            0,
            0,
        );
        assert_eq!(&*c.objectives, &[(0.5, 0.05), (0.9, 0.01)]);
        assert_eq!(c.stream_duration, Duration::from_secs(120));
        assert_eq!(c.buf_cap, 500);
    }
}
