//! Seeded mutation tests: many thousands of mutated StatsD lines through the
//! parser, the mapper and the store, mutated mapping files through the
//! loader, mutated health bodies through the health-body reader, mutated
//! config files through the config loader, and mutated log lines (JSON,
//! regex, CRI, Docker) through the log line parsers and their metrics, and
//! mutated route patterns through the route matcher. Nothing may
//! panic, per-line buffers must stay bounded by the line, and whatever
//! arrives, the scrape must stay valid exposition text.

use std::sync::Arc;
use std::time::Instant;

use oxmon_core::encode::{encode, Format};
use oxmon_core::metrics::normalize;
use oxmon_sidecar::config::{Config, Flags};
use oxmon_sidecar::health::BodyReader;
use oxmon_sidecar::logs;
use oxmon_sidecar::route::{Routes, OTHER};
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
    mutate_with(rng, input, CORPUS, ALPHABET)
}

/// Applies 1 to 4 random edits: inserted, deleted, duplicated or replaced
/// bytes from `alphabet`, a piece of `corpus` spliced in, a long run.
fn mutate_with(rng: &mut Rng, input: &[u8], corpus: &[&str], alphabet: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(7) {
            0 => {
                let at = rng.below(len + 1);
                v.insert(at, alphabet[rng.below(alphabet.len())]);
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
                v[at] = alphabet[rng.below(alphabet.len())];
            }
            4 => {
                let other = corpus[rng.below(corpus.len())].as_bytes();
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

/// JSON lines, then a regex line, CRI lines, Docker lines.
const LOG_CORPUS: &[&str] = &[
    r#"{"time":"2024-05-01T10:00:00Z","level":"info","method":"GET","path":"/users/7","status":200,"duration_ms":12.5,"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"}"#,
    r#"{"level":"ERROR","msg":"a\"b\\c\n\u00e9\ud83d\ude00","metadata":{"duration_ms":"8","model":"resnet"},"event":"login_failed"}"#,
    r#"{"endpoint":"/v1/models/x/predict","method":"post","status":"503","nested":{"a":[1,{"b":[]}],"c":null},"ok":true}"#,
    r#"{"level":30,"status":1e400,"duration_ms":-5,"path":"","method":""}"#,
    "GET /users/1 200 0.010 WARN",
    "2024-05-01T10:00:00.123456789Z stdout F {\"status\":200,\"method\":\"GET\",\"path\":\"/a\"}",
    "2024-05-01T10:00:00.123456789Z stderr P {\"level\":",
    "2024-05-01T10:00:00.123456789Z stdout F:x ",
    r#"{"log":"{\"status\":200,\"method\":\"GET\",\"path\":\"/a\"}\n","stream":"stdout","time":"t"}"#,
    r#"{"log":"{\"level\":","stream":"stderr","time":"t"}"#,
];

const LOG_ALPHABET: &[u8] = b"{}[]\":,\\/u0123456789abcdefPF .-eE\n\t\xc3\xa9\xff\x00 \r";

fn log_section(format: logs::Format) -> logs::LogsConfig {
    let mut c: logs::LogsConfig = serde_yaml::from_str(
        r#"
paths: [/nonexistent/*.log]
max_line_bytes: 512
fields:
  duration_ms: [duration_ms, metadata.duration_ms]
http:
  routes: ["/users/{id}", "/v1/models/{model}/predict"]
metrics:
  - name: app_auth_failures_total
    type: counter
    match: {event: login_failed}
    labels: {level: level, path: path}
  - name: model_duration_seconds
    type: histogram
    value: metadata.duration_ms
    scale: 0.001
    labels: {model: metadata.model}
  - name: app_status
    type: gauge
    value: status
    match_regex: {method: "(?i)get|post"}
"#,
    )
    .unwrap();
    c.format = format;
    // CRI messages are read as JSON, Docker ones with the regex.
    if matches!(format, logs::Format::Regex | logs::Format::Docker) {
        c.regex = Some(
            r"(?P<method>[A-Za-z]+) (?P<path>\S+) (?P<status>\d+)(?: (?P<duration_ms>[\d.]+))?(?: (?P<level>\w+))?"
                .into(),
        );
        c.metrics.clear();
    }
    c
}

#[test]
fn mutated_log_lines_never_panic_and_stay_bounded() {
    use logs::json::Values;
    use logs::line::Joiner;
    use logs::pipeline::{count_parse_error, Batch, Fields, Pipeline};

    let mut rng = Rng(0x10c5_feed_cafe_d00d);
    let store = Store::new(Limits {
        max_series_per_metric: 50,
        default_ttl: None,
    });
    let formats = [
        logs::Format::Json,
        logs::Format::Regex,
        logs::Format::Cri,
        logs::Format::Docker,
    ];
    let mut pipelines: Vec<Pipeline> = formats
        .iter()
        .map(|f| Pipeline::compile(&log_section(*f)).unwrap())
        .collect();
    let mut joiners: Vec<Joiner> = formats.iter().map(|_| Joiner::default()).collect();
    let mut values = Values::default();
    let mut batch = Batch::default();
    let (mut parsed, mut failed) = (0u64, 0u64);
    let mut longest = 0;
    for round in 0..40_000 {
        let i = round % formats.len();
        // Each format starts from its own lines (see LOG_CORPUS).
        let own = [0..4, 4..5, 5..8, 8..10][i].clone();
        let seed = LOG_CORPUS[own.start + rng.below(own.len())].as_bytes();
        let input = mutate_with(&mut rng, seed, LOG_CORPUS, LOG_ALPHABET);
        let text = String::from_utf8_lossy(&input);
        longest = longest.max(text.len());
        let Pipeline { parser, metrics } = &mut pipelines[i];
        let mut w = store.writer(Instant::now());
        match parser.parse(&text, &mut joiners[i], &mut values) {
            Ok(Some(message)) => {
                parsed += 1;
                metrics.record(
                    Fields {
                        message,
                        values: &values,
                    },
                    &mut batch,
                    &mut w,
                );
                metrics.flush(&mut batch, &mut w);
            }
            Ok(None) => {}
            Err(_) => {
                failed += 1;
                count_parse_error(&mut w, "mutated.log");
            }
        }
        // Decoded strings never need more than the line; joined messages
        // never more than the maximum line length (per stream).
        assert!(values.scratch_capacity() <= 2 * longest + 16);
        assert!(
            joiners[i].held() <= 2 * 2 * 512 + 64,
            "{}",
            joiners[i].held()
        );
    }
    assert!(
        parsed > 5_000 && failed > 5_000,
        "{parsed} parsed, {failed} failed"
    );

    let mut families = Vec::new();
    store.collect(Instant::now(), &mut families);
    normalize(&mut families);
    for name in [
        "http_requests_total",
        "app_log_messages_total",
        "app_log_parse_errors_total",
    ] {
        assert!(families.iter().any(|f| f.name == name), "{name}");
    }
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

/// The JSON extractor against serde_json on mutated lines: whatever
/// serde_json reads as an object, the extractor reads too, with the same
/// values.
#[test]
fn json_extractor_agrees_with_serde_json() {
    use logs::json::{Paths, Values};
    use oxmon_testkit::serde_json::Value;

    let wanted = [
        "level",
        "method",
        "status",
        "msg",
        "metadata.duration_ms",
        "nested.a",
    ];
    let mut paths = Paths::default();
    for (slot, p) in wanted.iter().enumerate() {
        paths.add(p, slot);
    }
    let mut rng = Rng(0x0dd5_eed5_1234_5678);
    let mut values = Values::default();
    let mut agreed = 0;
    for _ in 0..30_000 {
        let seed = LOG_CORPUS[rng.below(4)].as_bytes();
        let input = mutate_with(&mut rng, seed, LOG_CORPUS, LOG_ALPHABET);
        let Ok(text) = std::str::from_utf8(&input) else {
            continue;
        };
        values.reset(wanted.len());
        let ours = paths.extract(text, &mut values);
        let Ok(Value::Object(doc)) = oxmon_testkit::serde_json::from_str::<Value>(text) else {
            continue;
        };
        assert!(ours.is_ok(), "{ours:?} for {text:?}");
        for (slot, p) in wanted.iter().enumerate() {
            let mut v = Some(&doc);
            let mut expected = None;
            for (depth, key) in p.split('.').enumerate() {
                let found = v.and_then(|o| o.get(key));
                if depth + 1 == p.split('.').count() {
                    expected = found;
                } else {
                    v = found.and_then(Value::as_object);
                }
            }
            let got = values.get(text, slot);
            match expected {
                None => assert_eq!(got, None, "{p} in {text:?}"),
                Some(Value::String(s)) => assert_eq!(got, Some(s.as_str()), "{p} in {text:?}"),
                Some(other) => {
                    let got: Value = oxmon_testkit::serde_json::from_str(got.unwrap_or(""))
                        .unwrap_or(Value::Null);
                    assert_eq!(&got, other, "{p} in {text:?}");
                }
            }
        }
        agreed += 1;
    }
    assert!(agreed > 1_000, "only {agreed} lines were valid JSON");
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
        logs: Default::default(),
        tap: Default::default(),
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

const ROUTE_CORPUS: &[&str] = &[
    "/users/{id}",
    "/v1/models/{model}:predict",
    "/static/*",
    "/a/{x}.{y}/b",
    "/orders/{order_id}/items/{item}",
    "/",
];

const ROUTE_ALPHABET: &[u8] = b"/{}*:._-aZ09%(+?$\\\xc3\xa9 ";

/// A path the pattern must match: each parameter replaced by non-empty
/// segment text, a final `*` by any rest.
fn instance(rng: &mut Rng, pattern: &str) -> String {
    const SEGMENT: &[u8] = b"ab09-_.:~%{}*";
    let segment = |rng: &mut Rng, min: usize| -> String {
        (0..min + rng.below(6))
            .map(|_| SEGMENT[rng.below(SEGMENT.len())] as char)
            .collect()
    };
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                let end = rest.find('}').unwrap();
                out.push_str(&segment(rng, 1));
                rest = &rest[end + 1..];
                continue;
            }
            '*' => {
                for i in 0..rng.below(3) {
                    if i > 0 {
                        out.push('/');
                    }
                    out.push_str(&segment(rng, 0));
                }
            }
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[test]
fn mutated_route_patterns_compile_or_fail_cleanly_and_match_their_paths() {
    let mut rng = Rng(0x70a7_e5ee_d000_0013);
    let mut compiled = 0;
    let mut rejected = 0;
    for _ in 0..4_000 {
        let patterns: Vec<String> = (0..1 + rng.below(4))
            .map(|_| {
                let seed = ROUTE_CORPUS[rng.below(ROUTE_CORPUS.len())].as_bytes();
                let mutated = mutate_with(&mut rng, seed, ROUTE_CORPUS, ROUTE_ALPHABET);
                String::from_utf8_lossy(&mutated).into_owned()
            })
            .collect();
        let routes = match Routes::new(&patterns) {
            Ok(r) => r,
            Err(e) => {
                rejected += 1;
                assert!(patterns.contains(&e.pattern), "{e} for {patterns:?}");
                continue;
            }
        };
        compiled += 1;
        for (i, pattern) in patterns.iter().enumerate() {
            let path = instance(&mut rng, pattern);
            let matched = routes
                .index(&path)
                .unwrap_or_else(|| panic!("{path:?} does not match {pattern:?}"));
            // The first matching pattern wins, so it is this one or earlier.
            assert!(matched <= i, "{path:?}: {patterns:?}");
            assert_eq!(routes.route(&path), patterns[matched]);
        }
        // Any path at all gets a configured pattern or "other".
        for _ in 0..4 {
            let seed = ROUTE_CORPUS[rng.below(ROUTE_CORPUS.len())].as_bytes();
            let path = String::from_utf8_lossy(&mutate(&mut rng, seed)).into_owned();
            let route = routes.route(&path);
            assert!(route == OTHER || patterns.iter().any(|p| p == route));
        }
    }
    assert!(
        compiled > 500 && rejected > 500,
        "{compiled} compiled, {rejected} rejected"
    );
}
