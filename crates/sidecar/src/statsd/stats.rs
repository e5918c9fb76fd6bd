//! The StatsD source's self-metrics, under statsd_exporter's names and
//! labels so its dashboards and alerts keep working:
//!
//! | metric | labels |
//! |---|---|
//! | `statsd_exporter_lines_total`, `_samples_total`, `_tags_total`, `_tag_errors_total` | |
//! | `statsd_exporter_sample_errors_total` | `reason` |
//! | `statsd_exporter_udp_packets_total`, `_udp_packet_drops_total`, `_unixgram_packets_total` | |
//! | `statsd_exporter_tcp_connections_total`, `_tcp_connection_errors_total`, `_tcp_too_long_lines_total` | |
//! | `statsd_exporter_events_total` | `type` (counter, gauge, observer) |
//! | `statsd_exporter_events_unmapped_total`, `_event_queue_flushed_total` | |
//! | `statsd_exporter_events_actions_total` | `action` (map, drop) |
//! | `statsd_exporter_events_error_total` | `reason` (empty_metric_name, illegal_negative_counter) |
//! | `statsd_exporter_events_conflict_total` | `type`, `metric_name` |
//! | `statsd_exporter_metrics_total` (gauge) | `type` (counter, gauge, histogram, summary) |
//! | `statsd_exporter_loaded_mappings` (gauge), `statsd_exporter_config_reloads_total` | `outcome` |
//! | `statsd_metric_mapper_cache_length` (gauge), `_gets_total`, `_hits_total` | |
//!
//! As in statsd_exporter, a labelled series appears once it has counted
//! something; unlabelled counters are always there.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use oxmon_core::collector::{CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::MetricFamily;

use super::line::{ParseCounts, SampleError};
use super::mapper::MetricType;
use crate::store::Kind;

/// Counters shared by the listeners, the event handler and the scrape.
#[derive(Debug, Default)]
pub struct Stats {
    pub(crate) udp_packets: AtomicU64,
    pub(crate) udp_packet_drops: AtomicU64,
    pub(crate) unixgram_packets: AtomicU64,
    pub(crate) tcp_connections: AtomicU64,
    pub(crate) tcp_errors: AtomicU64,
    pub(crate) tcp_too_long_lines: AtomicU64,
    pub(crate) lines: AtomicU64,
    pub(crate) events_flushed: AtomicU64,
    samples: AtomicU64,
    tags: AtomicU64,
    tag_errors: AtomicU64,
    sample_errors: [AtomicU64; 10],
    pub(crate) events: [AtomicU64; 3],
    pub(crate) events_unmapped: AtomicU64,
    pub(crate) actions_map: AtomicU64,
    pub(crate) actions_drop: AtomicU64,
    pub(crate) error_empty_name: AtomicU64,
    pub(crate) error_negative_counter: AtomicU64,
    pub(crate) metrics: [AtomicU64; 4],
    conflicts: Mutex<BTreeMap<(&'static str, String), u64>>,
    pub(crate) loaded_mappings: AtomicU64,
    pub(crate) reloads_ok: AtomicU64,
    pub(crate) reloads_failed: AtomicU64,
    pub(crate) cache_length: AtomicU64,
    pub(crate) cache_gets: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
}

/// Index of an event type in `events`.
pub(crate) fn event_index(t: MetricType) -> usize {
    match t {
        MetricType::Counter => 0,
        MetricType::Gauge => 1,
        MetricType::Observer => 2,
    }
}

/// Index of a store kind in `metrics`.
pub(crate) fn kind_index(k: Kind) -> usize {
    match k {
        Kind::Counter => 0,
        Kind::Gauge => 1,
        Kind::Histogram => 2,
        Kind::Summary => 3,
    }
}

impl Stats {
    /// Adds what the parser counted for a batch of lines.
    pub(crate) fn add_parsed(&self, c: &ParseCounts) {
        self.samples.fetch_add(c.samples, Relaxed);
        self.tags.fetch_add(c.tags, Relaxed);
        self.tag_errors.fetch_add(c.tag_errors, Relaxed);
        for (total, n) in self.sample_errors.iter().zip(c.sample_errors) {
            if n > 0 {
                total.fetch_add(n, Relaxed);
            }
        }
    }

    /// Counts `n` events of type `t` rejected because `name` has another
    /// type.
    pub(crate) fn add_conflict(&self, t: MetricType, name: &str, n: u64) {
        let mut conflicts = self.conflicts.lock().unwrap_or_else(|e| e.into_inner());
        *conflicts.entry((t.as_str(), name.to_string())).or_default() += n;
    }

    /// The value of a series by its metric name and one label value.
    #[cfg(test)]
    pub(crate) fn get(&self, name: &str, label: Option<&str>) -> Option<u64> {
        let mut families = Vec::new();
        self.write(&mut families);
        families
            .iter()
            .find(|f| f.name == name)?
            .metrics
            .iter()
            .find(|m| label.is_none_or(|l| m.labels.iter().any(|(_, v)| v == l)))
            .and_then(|m| match m.value {
                oxmon_core::metrics::Value::Single(v) => Some(v as u64),
                _ => None,
            })
    }

    fn write(&self, families: &mut Vec<MetricFamily>) {
        let mut out = Vec::with_capacity(24);
        let plain_counters: [(&'static str, &'static str, &AtomicU64); 13] = [
            (
                "statsd_exporter_lines_total",
                "The total number of StatsD lines received.",
                &self.lines,
            ),
            (
                "statsd_exporter_samples_total",
                "The total number of StatsD samples received.",
                &self.samples,
            ),
            (
                "statsd_exporter_tags_total",
                "The total number of DogStatsD tags processed.",
                &self.tags,
            ),
            (
                "statsd_exporter_tag_errors_total",
                "The number of errors parsing DogStatsD tags.",
                &self.tag_errors,
            ),
            (
                "statsd_exporter_udp_packets_total",
                "The total number of StatsD packets received over UDP.",
                &self.udp_packets,
            ),
            (
                "statsd_exporter_udp_packet_drops_total",
                "The total number of dropped StatsD packets which received over UDP.",
                &self.udp_packet_drops,
            ),
            (
                "statsd_exporter_unixgram_packets_total",
                "The total number of StatsD packets received over Unixgram.",
                &self.unixgram_packets,
            ),
            (
                "statsd_exporter_tcp_connections_total",
                "The total number of TCP connections handled.",
                &self.tcp_connections,
            ),
            (
                "statsd_exporter_tcp_connection_errors_total",
                "The number of errors encountered reading from TCP.",
                &self.tcp_errors,
            ),
            (
                "statsd_exporter_tcp_too_long_lines_total",
                "The number of lines discarded due to being too long.",
                &self.tcp_too_long_lines,
            ),
            (
                "statsd_exporter_events_unmapped_total",
                "The total number of StatsD events no mapping was found for.",
                &self.events_unmapped,
            ),
            (
                "statsd_exporter_event_queue_flushed_total",
                "Number of times events were flushed to exporter",
                &self.events_flushed,
            ),
            (
                "statsd_metric_mapper_cache_gets_total",
                "The count of total metric cache gets.",
                &self.cache_gets,
            ),
        ];
        for (name, help, v) in plain_counters {
            out.push(oxmon_core::counter(name, help, v.load(Relaxed) as f64));
        }
        out.push(oxmon_core::counter(
            "statsd_metric_mapper_cache_hits_total",
            "The count of total metric cache hits.",
            self.cache_hits.load(Relaxed) as f64,
        ));
        out.push(oxmon_core::gauge(
            "statsd_metric_mapper_cache_length",
            "The count of unique metrics currently cached.",
            self.cache_length.load(Relaxed) as f64,
        ));
        out.push(oxmon_core::gauge(
            "statsd_exporter_loaded_mappings",
            "The current number of configured metric mappings.",
            self.loaded_mappings.load(Relaxed) as f64,
        ));

        let labelled = |name: &'static str,
                        help: &'static str,
                        gauge: bool,
                        label: &'static str,
                        series: &[(&'static str, &AtomicU64)]| {
            let mut f = if gauge {
                MetricFamily::gauge(name, help)
            } else {
                MetricFamily::counter(name, help)
            };
            for (value, count) in series {
                let n = count.load(Relaxed);
                if n > 0 {
                    f.add(&[(label, value)], n as f64);
                }
            }
            f
        };
        let errors: Vec<(&'static str, &AtomicU64)> = SampleError::ALL
            .iter()
            .zip(&self.sample_errors)
            .map(|(e, c)| (e.reason(), c))
            .collect();
        out.push(labelled(
            "statsd_exporter_sample_errors_total",
            "The total number of errors parsing StatsD samples.",
            false,
            "reason",
            &errors,
        ));
        out.push(labelled(
            "statsd_exporter_events_total",
            "The total number of StatsD events seen.",
            false,
            "type",
            &[
                ("counter", &self.events[0]),
                ("gauge", &self.events[1]),
                ("observer", &self.events[2]),
            ],
        ));
        out.push(labelled(
            "statsd_exporter_events_actions_total",
            "The total number of StatsD events by action.",
            false,
            "action",
            &[("map", &self.actions_map), ("drop", &self.actions_drop)],
        ));
        out.push(labelled(
            "statsd_exporter_events_error_total",
            "The total number of StatsD events discarded due to errors.",
            false,
            "reason",
            &[
                ("empty_metric_name", &self.error_empty_name),
                ("illegal_negative_counter", &self.error_negative_counter),
            ],
        ));
        out.push(labelled(
            "statsd_exporter_metrics_total",
            "The total number of metrics.",
            true,
            "type",
            &[
                ("counter", &self.metrics[0]),
                ("gauge", &self.metrics[1]),
                ("histogram", &self.metrics[2]),
                ("summary", &self.metrics[3]),
            ],
        ));
        out.push(labelled(
            "statsd_exporter_config_reloads_total",
            "The number of configuration reloads.",
            false,
            "outcome",
            &[
                ("success", &self.reloads_ok),
                ("failure", &self.reloads_failed),
            ],
        ));
        let mut conflicts = MetricFamily::counter(
            "statsd_exporter_events_conflict_total",
            "The total number of StatsD events with conflicting names.",
        );
        for ((t, name), n) in self
            .conflicts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            conflicts.add_owned(
                vec![
                    (Cow::Borrowed("metric_name"), name.as_str().into()),
                    (Cow::Borrowed("type"), (*t).into()),
                ],
                *n as f64,
            );
        }
        out.push(conflicts);
        families.extend(out.into_iter().filter(|f| !f.is_empty()));
    }
}

/// The collector exposing [`Stats`].
pub struct StatsCollector(pub Arc<Stats>);

impl SyncCollector for StatsCollector {
    fn name(&self) -> &'static str {
        "statsd"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        self.0.write(out);
        Ok(())
    }
}
