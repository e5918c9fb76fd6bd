//! Cases from statsd_exporter's exporter tests (written here from what they
//! expect), through the real parser, handler and store.

use std::time::{Duration, Instant};

use oxmon_core::metrics::{normalize, Value};
use oxmon_core::MetricFamily;

use super::*;
use crate::statsd::line::{Line, ParseCounts, Parser};
use crate::store::{Limits, Store};

struct Harness {
    handler: Handler,
    store: Store,
    stats: Arc<Stats>,
}

impl Harness {
    fn new(config: &str) -> Self {
        let mapper = Mapper::from_yaml(config, "test.yml").unwrap();
        let stats = Arc::new(Stats::default());
        Harness {
            handler: Handler::new(mapper, 1000, CacheType::Lru, stats.clone()),
            store: Store::new(Limits::default()),
            stats,
        }
    }

    fn send_at(&mut self, now: Instant, lines: &[&str]) {
        let mut writer = self.store.writer(now);
        let mut counts = ParseCounts::default();
        for text in lines {
            let mut line = Line::default();
            Parser::default().parse(text, &mut line, &mut counts);
            self.handler.handle(&mut line, &mut writer);
        }
    }

    fn send(&mut self, lines: &[&str]) {
        self.send_at(Instant::now(), lines);
    }

    fn families_at(&self, now: Instant) -> Vec<MetricFamily> {
        let mut out = Vec::new();
        self.store.collect(now, &mut out);
        normalize(&mut out);
        out
    }

    /// The value (sum for histograms and summaries) of the series of `name`
    /// with exactly `labels`.
    fn value_at(&self, now: Instant, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let fams = self.families_at(now);
        let f = fams.iter().find(|f| f.name == name)?;
        let m = f.metrics.iter().find(|m| {
            m.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| m.labels.iter().any(|(mk, mv)| mk == k && mv == v))
        })?;
        Some(match &m.value {
            Value::Single(v) => *v,
            Value::Histogram { sum, .. } | Value::Summary { sum, .. } => *sum,
        })
    }

    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.value_at(Instant::now(), name, labels)
    }

    fn stat(&self, name: &str, label: Option<&str>) -> u64 {
        self.stats.get(name, label).unwrap_or(0)
    }
}

#[test]
fn negative_counters_are_counted_not_applied() {
    let mut h = Harness::new("");
    h.send(&["foo:-1|c"]);
    assert_eq!(
        h.stat(
            "statsd_exporter_events_error_total",
            Some("illegal_negative_counter")
        ),
        1
    );
    assert_eq!(h.value("foo", &[]), None);
}

#[test]
fn inconsistent_label_sets_are_both_recorded() {
    let mut h = Harness::new(
        "mappings:\n- match: histogram.test\n  timer_type: histogram\n  name: \"histogram_test\"\n",
    );
    for name in [
        "counter_test:1|c",
        "gauge_test:1|g",
        "histogram.test:1|ms",
        "summary_test:1|ms",
    ] {
        let (n, v) = name.split_once(':').unwrap();
        h.send(&[&format!("{n}:{v}|#foo:1"), &format!("{n}:{v}|#foo:1,bar:2")]);
    }
    for name in [
        "counter_test",
        "gauge_test",
        "histogram_test",
        "summary_test",
    ] {
        assert!(h.value(name, &[("foo", "1")]).is_some(), "{name} first set");
        assert!(
            h.value(name, &[("foo", "1"), ("bar", "2")]).is_some(),
            "{name} second set"
        );
    }
    assert_eq!(h.stat("statsd_exporter_metrics_total", Some("counter")), 2);
    assert_eq!(
        h.stat("statsd_exporter_metrics_total", Some("histogram")),
        2
    );
}

#[test]
fn labels_from_mapping_captures() {
    let mut h = Harness::new(
        "mappings:\n- match: counter.test.*\n  name: \"counter_test\"\n  labels:\n    code: $1\n",
    );
    h.send(&["counter.test.200:1|c", "counter.test.300:1|c"]);
    assert_eq!(h.value("counter_test", &[("code", "200")]), Some(1.0));
    assert_eq!(h.value("counter_test", &[("code", "300")]), Some(1.0));
    assert_eq!(
        h.stat("statsd_exporter_events_actions_total", Some("map")),
        2
    );
}

#[test]
fn conflicting_metrics() {
    let config =
        "mappings:\n- match: histogram.*\n  timer_type: histogram\n  name: \"histogram_${1}\"\n";
    // (lines, metric, labels, expected value of the first event's series)
    type Case<'a> = (&'a [&'a str], &'a str, &'a [(&'a str, &'a str)], f64);
    let cases: &[Case] = &[
        (&["cvg_test:1|c", "cvg_test:2|g"], "cvg_test", &[], 1.0),
        (
            &[
                "cvgl_test:1|c|#tag:1",
                "cvgl_test:2|c|#tag:2",
                "cvgl_test:3|g|#tag:1",
            ],
            "cvgl_test",
            &[("tag", "1")],
            1.0,
        ),
        (
            &[
                "cvgsl_test:1|c|#tag:1",
                "cvgsl_test:2|c|#tag:1",
                "cvgsl_test:3|g|#tag:1",
            ],
            "cvgsl_test",
            &[("tag", "1")],
            3.0,
        ),
        (&["gvc_test:2|g", "gvc_test:1|c"], "gvc_test", &[], 2.0),
        (
            &["histogram_test1:1|c", "histogram.test1:2|ms"],
            "histogram_test1",
            &[],
            1.0,
        ),
        (
            &["histogram_test1_sum:1|c", "histogram.test1:2|ms"],
            "histogram_test1_sum",
            &[],
            1.0,
        ),
        (
            &["histogram_test2_count:1|c", "histogram.test2:2|ms"],
            "histogram_test2_count",
            &[],
            1.0,
        ),
        (
            &["histogram_test3_bucket:1|c", "histogram.test3:2|ms"],
            "histogram_test3_bucket",
            &[],
            1.0,
        ),
        (&["cvsq_test:1|c", "cvsq_test:2|ms"], "cvsq_test", &[], 1.0),
        (&["cvsc_count:1|c", "cvsc:2|ms"], "cvsc_count", &[], 1.0),
        (&["cvss_sum:1|c", "cvss:2|ms"], "cvss_sum", &[], 1.0),
    ];
    for (lines, metric, labels, want) in cases {
        let mut h = Harness::new(config);
        h.send(lines);
        assert_eq!(h.value(metric, labels), Some(*want), "{lines:?}");
    }
    let mut h = Harness::new(config);
    h.send(&["x:1|c", "x:2|g", "x:3|g"]);
    assert_eq!(
        h.stat("statsd_exporter_events_conflict_total", Some("x")),
        2
    );
    assert_eq!(h.stat("statsd_exporter_events_total", Some("counter")), 1);
    let mut h = Harness::new(config);
    h.send(&[
        "cvsc_count:1|c",
        "cvsc:2|ms",
        "histogram_test2_count:1|c",
        "histogram.test2:2|ms",
    ]);
    assert!(h.value("cvsc", &[]).is_none());
    assert!(h.value("histogram_test2", &[]).is_none());
}

#[test]
fn empty_metric_names_are_errors() {
    let mut h = Harness::new("mappings:\n- match: .*_bar\n  match_type: regex\n  name: \"${1}\"\n");
    h.send(&["foo_bar:1|c"]);
    assert_eq!(
        h.stat(
            "statsd_exporter_events_error_total",
            Some("empty_metric_name")
        ),
        1
    );
    let mut h = Harness::new("");
    h.send(&["#tag=v:1|c", "[a=b]:1|c"]);
    assert_eq!(
        h.stat(
            "statsd_exporter_events_error_total",
            Some("empty_metric_name")
        ),
        2
    );
    assert!(h.families_at(Instant::now()).is_empty());
}

#[test]
fn summaries_without_mapping_have_default_quantiles() {
    let mut h = Harness::new("");
    h.send(&["default_foo:300|h"]);
    let fams = h.families_at(Instant::now());
    let f = fams.iter().find(|f| f.name == "default_foo").unwrap();
    let Value::Summary {
        quantiles,
        sum,
        count,
    } = &f.metrics[0].value
    else {
        panic!("not a summary")
    };
    assert_eq!(quantiles, &vec![(0.5, 300.0), (0.9, 300.0), (0.99, 300.0)]);
    assert_eq!((*sum, *count), (300.0, 1));
    assert_eq!(f.help, DEFAULT_HELP);
}

#[test]
fn histograms_keep_seconds() {
    let mut h = Harness::new("defaults:\n  observer_type: histogram\n");
    h.send(&["foo:300|ms"]);
    assert_eq!(h.value("foo", &[]), Some(0.3));
}

#[test]
fn counters_increment() {
    let mut h = Harness::new("");
    h.send(&["foo_counter:1|c|#foo:bar", "foo_counter:1|c|#foo:bar"]);
    assert_eq!(h.value("foo_counter", &[("foo", "bar")]), Some(2.0));
}

#[test]
fn ttl_expiration() {
    let mut h = Harness::new(
        "defaults:\n  ttl: 1s\nmappings:\n- match: bazqux.*\n  name: bazqux\n  ttl: 2s\n",
    );
    let t0 = Instant::now();
    h.send_at(t0, &["foobar:200|g", "bazqux.main:42|h"]);
    assert_eq!(h.value_at(t0, "foobar", &[]), Some(200.0));
    assert_eq!(h.value_at(t0, "bazqux", &[]), Some(42.0));
    let t1 = t0 + Duration::from_millis(1010);
    assert_eq!(h.value_at(t1, "foobar", &[]), None);
    assert_eq!(h.value_at(t1, "bazqux", &[]), Some(42.0));
    let t2 = t0 + Duration::from_millis(2200);
    assert_eq!(h.value_at(t2, "bazqux", &[]), None);
}

#[test]
fn invalid_utf8_tag_values_drop_only_their_line() {
    let mut h = Harness::new("");
    let packet = b"bar:200|c|#tag:value\nbar:200|c|#tag:\xc3\x28invalid";
    let mut writer = h.store.writer(Instant::now());
    let mut counts = ParseCounts::default();
    for raw in packet.split(|&b| b == b'\n') {
        let mut line = Line::default();
        Parser::default().parse_bytes(raw, &mut line, &mut counts);
        h.handler.handle(&mut line, &mut writer);
    }
    drop(writer);
    assert_eq!(h.value("bar", &[("tag", "value")]), Some(200.0));
    assert_eq!(counts.sample_errors.iter().sum::<u64>(), 1);
}

#[test]
fn drop_action_scale_help_and_honor_labels() {
    let mut h = Harness::new(
        "mappings:\n- match: noise.*\n  name: dropped\n  action: drop\n- match: model.accuracy\n  name: model_prediction_accuracy_percent\n  scale: 100\n  help: Accuracy.\n- match: req.*\n  name: requests\n  honor_labels: true\n  labels:\n    env: prod\n    path: $1\n- match: req2.*\n  name: requests2\n  labels:\n    env: prod\n",
    );
    h.send(&[
        "noise.a:1|c",
        "model.accuracy:0.93|g",
        "req.home:1|c|#env:dev",
        "req2.x:1|c|#env:dev",
    ]);
    assert_eq!(
        h.stat("statsd_exporter_events_actions_total", Some("drop")),
        1
    );
    assert_eq!(h.value("dropped", &[]), None);
    assert_eq!(
        h.value("model_prediction_accuracy_percent", &[]),
        Some(93.0)
    );
    let fams = h.families_at(Instant::now());
    assert_eq!(
        fams.iter()
            .find(|f| f.name == "model_prediction_accuracy_percent")
            .unwrap()
            .help,
        "Accuracy."
    );
    assert_eq!(
        h.value("requests", &[("env", "dev"), ("path", "home")]),
        Some(1.0)
    );
    assert_eq!(h.value("requests2", &[("env", "prod")]), Some(1.0));
}

#[test]
fn mapping_labels_stay_on_the_line() {
    // As in statsd_exporter, where a line's events share one label map, a
    // label added by the counter's mapping is on the gauge too.
    let mut h = Harness::new(
        "mappings:\n- match: multi\n  match_metric_type: counter\n  name: multi_total\n  labels:\n    from: counter\n- match: multi\n  match_metric_type: gauge\n  name: multi_now\n",
    );
    h.send(&["multi:1|c:5|g"]);
    assert_eq!(h.value("multi_total", &[("from", "counter")]), Some(1.0));
    assert_eq!(h.value("multi_now", &[("from", "counter")]), Some(5.0));
}

#[test]
fn sample_rates_weight_events() {
    let mut h = Harness::new("defaults:\n  observer_type: histogram\n");
    h.send(&["t:100|ms|@0.1", "c:1|c|@0.5"]);
    let fams = h.families_at(Instant::now());
    let Value::Histogram { count, .. } =
        fams.iter().find(|f| f.name == "t").unwrap().metrics[0].value
    else {
        panic!()
    };
    assert_eq!(count, 10);
    assert_eq!(h.stat("statsd_exporter_events_total", Some("observer")), 10);
    assert_eq!(h.value("c", &[]), Some(2.0));
}

#[test]
fn cache_hits_and_reload() {
    let mut h = Harness::new("mappings:\n- match: a.*\n  name: first\n");
    h.send(&["a.x:1|c", "a.x:1|c"]);
    assert_eq!(h.stat("statsd_metric_mapper_cache_gets_total", None), 2);
    assert_eq!(h.stat("statsd_metric_mapper_cache_hits_total", None), 1);
    h.handler.set_mapper(
        Mapper::from_yaml(
            "mappings:\n- match: a.*\n  name: second\n- match: b\n  name: b\n",
            "x",
        )
        .unwrap(),
    );
    h.send(&["a.x:1|c"]);
    assert_eq!(h.value("second", &[]), Some(1.0));
    assert_eq!(h.stat("statsd_exporter_loaded_mappings", None), 2);
}
