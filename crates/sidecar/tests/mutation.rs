//! Seeded mutation tests: many thousands of mutated StatsD lines through the
//! parser, the mapper and the store, mutated mapping files through the
//! loader, mutated health bodies through the health-body reader and
//! mutated config files through the config loader. Nothing may panic,
//! per-line buffers must stay bounded by the line, and whatever arrives,
//! the scrape must stay valid exposition text.

use std::sync::Arc;
use std::time::Instant;

use oxmon_core::encode::{encode, Format};
use oxmon_core::metrics::normalize;
use oxmon_sidecar::config::{Config, Flags};
use oxmon_sidecar::health::BodyReader;
use oxmon_sidecar::statsd::handler::Handler;
use oxmon_sidecar::statsd::line::{Line, ParseCounts, Parser, TagStyles};
use oxmon_sidecar::statsd::mapper::{CacheType, Mapper, MetricType};
use oxmon_sidecar::statsd::stats::Stats;
use oxmon_sidecar::store::{Limits, Store};

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const CORPUS: &[&str] = &[
    "foo:2|c",
    "foo:-10|g",
    "foo:+3|g|@0.2",
    "foo:200|ms|@0.1",
    "foo:0.01|d|@0.2|#tag1:bar,#tag2:baz",
    "foo#tag1=bar,tag2=baz:100|c",
    "foo,tag1=bar,tag2=baz:100|c",
    "foo.[tag1=bar,tag2=baz]test:100|c",
    "foo:100|c|#tag1:value|c:container123",
    "foo_timing:0.5:120:3000:10:20000:0.01|ms|@0.5|#tag1:bar,tag2:baz",
    "model.inference.resnet:20|ms",
    "model.queue.length:12|g",
    "request_time.get.200.x.y.z:1|h",
    "test.dispatcher.FooProcessor.send.succeeded:1|c",
    "a.b.c:1|c:2|g:3|ms",
    "foo:1|c|T1656581400",
    "0x1p-2:0x1p-2|h",
    "x:1e400|c",
];

const ALPHABET: &[u8] = b":|#@,=[].-+*${}_cgmshdT0123456789eE\xc3\xa9\xff\x00 \r";

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(7) {
            0 => {
                let at = rng.below(len + 1);
                v.insert(at, ALPHABET[rng.below(ALPHABET.len())]);
            }
            1 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below(len - at);
                v.drain(at..at + n);
            }
            2 if len > 0 => {
                let at = rng.below(len);
                let n = 1 + rng.below((len - at).min(16));
                let copy: Vec<u8> = v[at..at + n].to_vec();
                let to = rng.below(v.len() + 1);
                v.splice(to..to, copy);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                v[at] = ALPHABET[rng.below(ALPHABET.len())];
            }
            4 => {
                let other = CORPUS[rng.below(CORPUS.len())].as_bytes();
                let at = rng.below(len + 1);
                v.splice(at..at, other.iter().copied());
            }
            5 => v.extend(std::iter::repeat_n(b'a', rng.below(300))),
            _ => {
                let at = rng.below(len + 1);
                v.insert(at, (rng.next() & 0xff) as u8);
            }
        }
    }
    v
}

const MAPPING: &str = r#"
defaults:
  observer_type: histogram
  ttl: 1h
mappings:
- match: "model.inference.*"
  name: "model_inference_duration_seconds"
  labels: {model: "$1", odd: "${2}%$1"}
- match: "test.dispatcher.*.*.*"
  name: "dispatcher_${1}_events_total"
  labels: {action: "$2", outcome: "$3"}
- match: "*.*"
  name: "pair_$1"
  observer_type: summary
  summary_options: {max_age: 1m, age_buckets: 2, buf_cap: 10}
- match: "(.*)\\.(\\w+)-(.*)"
  match_type: regex
  name: "re_${2}"
  labels: {first: "$1", rest: "$3", named: "$nope"}
- match: "noise\\..*"
  match_type: regex
  name: dropped
  action: drop
"#;

fn label_name_ok(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[test]
fn mutated_lines_never_panic_and_stay_bounded() {
    let mut rng = Rng(0x5eed_0123_4567_89ab);
    let mapper = Mapper::from_yaml(MAPPING, "mutation.yml").unwrap();
    let stats = Arc::new(Stats::default());
    let mut handler = Handler::new(mapper, 500, CacheType::Lru, stats.clone());
    let store = Store::new(Limits {
        max_series_per_metric: 50,
        default_ttl: None,
    });
    let parsers = [
        Parser::default(),
        Parser {
            styles: TagStyles {
                dogstatsd: false,
                influxdb: true,
                librato: false,
                signalfx: true,
            },
        },
    ];
    let mut counts = ParseCounts::default();
    let mut lines = 0;
    for round in 0..40_000 {
        let seed = CORPUS[rng.below(CORPUS.len())].as_bytes();
        let input = mutate(&mut rng, seed);
        let parser = &parsers[round % parsers.len()];
        let mut line = Line::default();
        parser.parse_bytes(&input, &mut line, &mut counts);
        lines += 1;
        // Per-line buffers are bounded by the line itself.
        assert!(line.labels.len() <= input.len() + 1, "{input:?}");
        assert!(line.samples.len() <= input.len(), "{input:?}");
        assert!(line.name.len() <= input.len(), "{input:?}");
        for (k, _) in &line.labels {
            assert!(label_name_ok(k), "label {k:?} from {input:?}");
        }
        for s in &line.samples {
            assert!(s.weight >= 1, "{input:?}");
        }
        let mut writer = store.writer(Instant::now());
        handler.handle(&mut line, &mut writer);
    }
    assert_eq!(lines, 40_000);
    assert!(counts.samples > 0 && counts.sample_errors.iter().sum::<u64>() > 0);

    // Whatever came in, the scrape is valid exposition in both formats.
    let mut families = Vec::new();
    store.collect(Instant::now(), &mut families);
    normalize(&mut families);
    assert!(!families.is_empty());
    for f in &families {
        assert!(
            f.metrics.len() <= 50,
            "{} has {} series",
            f.name,
            f.metrics.len()
        );
    }
    for format in [Format::Text, Format::OpenMetrics] {
        let mut text = Vec::new();
        encode(&families, format, &mut text);
        let text = String::from_utf8(text).expect("exposition is UTF-8");
        if let Err(e) = oxmon_testkit::try_parse(&text) {
            let line = text.lines().nth(e.line - 1).unwrap_or("");
            panic!("{format:?} exposition invalid: {e}: {line:?}");
        }
    }
}

#[test]
fn mutated_names_through_the_mapper() {
    let mut rng = Rng(0xfeed_beef_0bad_f00d);
    let mapper = Mapper::from_yaml(MAPPING, "mutation.yml").unwrap();
    let kinds = [MetricType::Counter, MetricType::Gauge, MetricType::Observer];
    let mut matched = 0;
    for _ in 0..20_000 {
        let seed = CORPUS[rng.below(CORPUS.len())];
        let seed = seed.split(':').next().unwrap_or(seed);
        let name = String::from_utf8_lossy(&mutate(&mut rng, seed.as_bytes())).into_owned();
        if let Some(m) = mapper.lookup(&name, kinds[rng.below(3)]) {
            matched += 1;
            // Expansion only uses the name's own text and the templates.
            assert!(m.name.len() <= name.len() + 64, "{name:?} -> {:?}", m.name);
        }
    }
    assert!(matched > 100, "the mapper matched only {matched} names");
}

#[test]
fn mutated_mapping_files_load_or_fail_cleanly() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut loaded = 0;
    for _ in 0..3_000 {
        let text = mutate(&mut rng, MAPPING.as_bytes());
        let text = String::from_utf8_lossy(&text);
        match Mapper::from_yaml(&text, "mutated.yml") {
            Ok(m) => {
                loaded += 1;
                let _ = m.lookup("model.inference.x", MetricType::Observer);
            }
            Err(e) => assert!(e.to_string().contains("mutated.yml"), "{e}"),
        }
    }
    assert!(loaded > 0);
}

const HEALTH_BODIES: &[&str] = &[
    r#"{"status":"UP","checks":{"database":"UP","cache":{"status":"DOWN"}}}"#,
    r#"{"status":"healthy","components":{"model":"ok"}}"#,
    r#"{"status":"Healthy","entries":{"db":{"status":"Healthy","duration":"00:00:00.01"}}}"#,
    r#"{"status":"DOWN","checks":[{"name":"db","status":"UP"},{"name":"disk","status":"DOWN"}]}"#,
    r#"{"status":"pass","checks":{"db:rt":[{"status":"pass"},{"status":"warn"}]}}"#,
    r#"{"status":true,"details":{"components":{"a":true,"b":[[["x"]]]}}}"#,
    "OK",
];

#[test]
fn mutated_health_bodies_read_or_fail_cleanly() {
    let mut rng = Rng(0x4ea1_7b0d_1e5f_0042);
    let readers = [
        BodyReader::default(),
        BodyReader::new(
            Some("details.components"),
            Some("status"),
            Some(&["pass".into(), "UP".into()]),
        )
        .unwrap(),
    ];
    let (mut read, mut failed) = (0, 0);
    for round in 0..30_000 {
        let seed = HEALTH_BODIES[rng.below(HEALTH_BODIES.len())].as_bytes();
        let mut body = mutate(&mut rng, seed);
        if round % 500 == 0 {
            // Deep nesting: serde_json's depth limit answers, not the stack.
            body = [b"[".repeat(100_000), body].concat();
        }
        match readers[round % 2].read(&body) {
            Ok(h) => {
                read += 1;
                // Components come from the body's own text.
                assert!(h.components.len() <= body.len() / 4, "{body:?}");
                for (name, _) in &h.components {
                    assert!(name.len() <= body.len(), "{body:?}");
                }
            }
            Err(e) => {
                failed += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(
        read > 1_000 && failed > 1_000,
        "read {read}, failed {failed}"
    );
}

const CONFIG: &str = r#"health:
  interval: 15s
  timeout: 2s
  targets:
  - url: http://127.0.0.1:8080/health
    name: api
    components_path: checks
    up_values: [UP, ok]
    headers: {Accept: application/json}
  - {url: 'https://[::1]:8443/ready', tls: {insecure_skip_verify: true}}
relay:
  targets:
  - url: http://127.0.0.1:8080/metrics
    prefix: app_
    labels: {source: app}
    max_series: 500
statsd:
  mapping:
    defaults: {observer_type: histogram}
    mappings:
    - match: "model.inference.*"
      name: model_inference_duration_seconds
      labels: {model: "$1"}
    - match: 'queue\.(.*)'
      match_type: regex
      name: queue_$1
limits:
  max_series_per_metric: 1000
  series_ttl: 10m
"#;

#[test]
fn mutated_config_files_load_or_fail_cleanly() {
    let mut rng = Rng(0xc0f1_6000_dead_beef);
    let flags = Flags {
        health: Default::default(),
        relay: Default::default(),
        statsd_mapping: None,
        store: Default::default(),
    };
    assert!(Config::from_yaml(CONFIG, "mutated.yml", &flags).is_ok());
    let mut loaded = 0;
    for _ in 0..3_000 {
        let text = mutate(&mut rng, CONFIG.as_bytes());
        let text = String::from_utf8_lossy(&text);
        match Config::from_yaml(&text, "mutated.yml", &flags) {
            Ok(_) => loaded += 1,
            Err(e) => {
                let e = e.to_string();
                assert!(e.contains("mutated.yml"), "{e}");
                // A line, when given, is a line of the file.
                if let Some(n) = e
                    .split(" line ")
                    .nth(1)
                    .and_then(|r| r.split([':', ' ']).next())
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    assert!(n >= 1 && n <= text.lines().count() + 1, "{e}\n{text}");
                }
            }
        }
    }
    assert!(loaded > 0);
}
