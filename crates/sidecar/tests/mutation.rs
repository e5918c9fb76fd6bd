//! Seeded mutation tests: many thousands of mutated StatsD lines through the
//! parser, the mapper and the store, mutated mapping files through the
//! loader, and mutated route patterns through the tap's route matcher.
//! Nothing may panic, per-line buffers must stay bounded by the line, and
//! whatever arrives, the scrape must stay valid exposition text.

use std::sync::Arc;
use std::time::Instant;

use oxmon_core::encode::{encode, Format};
use oxmon_core::metrics::normalize;
use oxmon_sidecar::statsd::handler::Handler;
use oxmon_sidecar::statsd::line::{Line, ParseCounts, Parser, TagStyles};
use oxmon_sidecar::statsd::mapper::{CacheType, Mapper, MetricType};
use oxmon_sidecar::statsd::stats::Stats;
use oxmon_sidecar::store::{Limits, Store};
use oxmon_sidecar::tap::route::{Routes, OTHER};

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
    mutate_from(rng, input, ALPHABET, CORPUS)
}

/// Inserts, deletes, duplicates and replaces bytes of `input`, drawing new
/// bytes from `alphabet` and whole pieces from `corpus`.
fn mutate_from(rng: &mut Rng, input: &[u8], alphabet: &[u8], corpus: &[&str]) -> Vec<u8> {
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
                let mutated = mutate_from(&mut rng, seed, ROUTE_ALPHABET, ROUTE_CORPUS);
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
                .route_index(&path)
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
