//! Cases from statsd_exporter's `pkg/mapper` tests (written here from what
//! they expect: config + name → name, labels, settings; or a bad config).

use super::*;

fn load(config: &str) -> Mapper {
    Mapper::from_yaml(config, "test.yml").unwrap_or_else(|e| panic!("{e}\n{config}"))
}

fn bad(config: &str) -> ConfigError {
    match Mapper::from_yaml(config, "test.yml") {
        Ok(_) => panic!("expected a bad config:\n{config}"),
        Err(e) => e,
    }
}

/// (name, sorted labels) of a counter named `metric`, or `None`.
fn map(m: &Mapper, metric: &str) -> Option<(String, Vec<(String, String)>)> {
    map_as(m, metric, MetricType::Counter)
}

fn map_as(m: &Mapper, metric: &str, kind: MetricType) -> Option<(String, Vec<(String, String)>)> {
    m.lookup(metric, kind).map(|mut r| {
        r.labels.sort();
        (r.name, r.labels)
    })
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    v.sort();
    v
}

fn expect(m: &Mapper, metric: &str, name: &str, pairs: &[(&str, &str)]) {
    assert_eq!(
        map(m, metric),
        Some((name.to_string(), labels(pairs))),
        "mapping {metric:?}"
    );
}

fn quantiles(m: &Mapper, metric: &str) -> Vec<f64> {
    let r = m.lookup(metric, MetricType::Observer).expect("match");
    match &m.mapping(r.mapping).observer {
        ObserverSettings::Summary(c) => c.quantiles().collect(),
        other => panic!("not a summary: {other:?}"),
    }
}

fn summary_config(m: &Mapper, metric: &str) -> SummaryConfig {
    let r = m.lookup(metric, MetricType::Observer).expect("match");
    match &m.mapping(r.mapping).observer {
        ObserverSettings::Summary(c) => (**c).clone(),
        other => panic!("not a summary: {other:?}"),
    }
}

fn buckets(m: &Mapper, metric: &str) -> Vec<f64> {
    let r = m.lookup(metric, MetricType::Observer).expect("match");
    match &m.mapping(r.mapping).observer {
        ObserverSettings::Histogram(b) => b.to_vec(),
        other => panic!("not a histogram: {other:?}"),
    }
}

#[test]
fn empty_configs() {
    for config in ["", "---\n", "# nothing\n", "mappings:\n", "mappings: []\n"] {
        let m = load(config);
        assert!(m.is_empty());
        assert_eq!(map(&m, "test.a"), None);
    }
}

#[test]
fn several_mapping_definitions() {
    let m = load(
        r#"---
mappings:
- match: test.dispatcher.*.*.*
  name: "dispatch_events"
  labels:
    processor: "$1"
    action: "$2"
    result: "$3"
    job: "test_dispatcher"
- match: test.my-dispatch-host01.name.dispatcher.*.*.*
  name: "host_dispatch_events"
  labels:
    processor: "$1"
    action: "$2"
    result: "$3"
    job: "test_dispatcher"
- match: request_time.*.*.*.*.*.*.*.*.*.*.*.*
  name: "tyk_http_request"
  labels:
    method_and_path: "${1}"
    response_code: "${2}"
    apikey: "${3}"
    apiversion: "${4}"
    apiname: "${5}"
    apiid: "${6}"
    ipv4_t1: "${7}"
    ipv4_t2: "${8}"
    ipv4_t3: "${9}"
    ipv4_t4: "${10}"
    orgid: "${11}"
    oauthid: "${12}"
- match: "*.*"
  name: "catchall"
  labels:
    first: "$1"
    second: "$2"
    third: "$3"
    job: "$1-$2-$3"
- match: (.*)\.(.*)-(.*)\.(.*)
  match_type: regex
  name: "proxy_requests_total"
  labels:
    job: "$1"
    protocol: "$2"
    endpoint: "$3"
    result: "$4"
"#,
    );
    let dispatch = [
        ("processor", "FooProcessor"),
        ("action", "send"),
        ("result", "succeeded"),
        ("job", "test_dispatcher"),
    ];
    expect(
        &m,
        "test.dispatcher.FooProcessor.send.succeeded",
        "dispatch_events",
        &dispatch,
    );
    expect(
        &m,
        "test.my-dispatch-host01.name.dispatcher.FooProcessor.send.succeeded",
        "host_dispatch_events",
        &dispatch,
    );
    expect(
        &m,
        "request_time.get/threads/1/posts.200.00000000.nonversioned.discussions.a11bbcdf0ac64ec243658dc64b7100fb.172.20.0.1.12ba97b7eaa1a50001000001.",
        "tyk_http_request",
        &[
            ("method_and_path", "get/threads/1/posts"),
            ("response_code", "200"),
            ("apikey", "00000000"),
            ("apiversion", "nonversioned"),
            ("apiname", "discussions"),
            ("apiid", "a11bbcdf0ac64ec243658dc64b7100fb"),
            ("ipv4_t1", "172"),
            ("ipv4_t2", "20"),
            ("ipv4_t3", "0"),
            ("ipv4_t4", "1"),
            ("orgid", "12ba97b7eaa1a50001000001"),
            ("oauthid", ""),
        ],
    );
    expect(
        &m,
        "foo.bar",
        "catchall",
        &[
            ("first", "foo"),
            ("second", "bar"),
            ("third", ""),
            ("job", "foo-bar-"),
        ],
    );
    assert_eq!(map(&m, "foo.bar.baz"), None);
    expect(
        &m,
        "proxy-1.http-goober.success",
        "proxy_requests_total",
        &[
            ("job", "proxy-1"),
            ("protocol", "http"),
            ("endpoint", "goober"),
            ("result", "success"),
        ],
    );
}

#[test]
fn glob_ordering_and_backtracking() {
    let m = load(
        "defaults:\n  glob_disable_ordering: true\nmappings:\n- match: backtrack.*.bbb\n  name: \"testb\"\n  labels:\n    label: \"${1}_foo\"\n- match: backtrack.justatest.aaa\n  name: \"testa\"\n  labels:\n    label: \"${1}_foo\"\n",
    );
    expect(&m, "backtrack.good.bbb", "testb", &[("label", "good_foo")]);
    expect(
        &m,
        "backtrack.justatest.bbb",
        "testb",
        &[("label", "justatest_foo")],
    );
    expect(&m, "backtrack.justatest.aaa", "testa", &[("label", "_foo")]);

    let m = load(
        "defaults:\n  glob_disable_ordering: false\nmappings:\n- match: '*.dummy.*'\n  name: metric_one\n  labels:\n    system: $1\n    attribute: $2\n- match: 'full.name.*'\n  name: metric_two\n  labels:\n    system: static\n    attribute: $1\n",
    );
    expect(
        &m,
        "whatever.dummy.test",
        "metric_one",
        &[("system", "whatever"), ("attribute", "test")],
    );
    expect(
        &m,
        "full.name.anothertest",
        "metric_two",
        &[("system", "static"), ("attribute", "anothertest")],
    );

    let m = load(
        "defaults:\n  glob_disable_ordering: true\nmappings:\n- match: noorder.*.*\n  name: \"testa\"\n  labels:\n    label: \"${1}_foo\"\n- match: noorder.*.bbb\n  name: \"testb\"\n  labels:\n    label: \"${1}_foo\"\n- match: noorder.ccc.bbb\n  name: \"testc\"\n  labels:\n    label: \"ccc_foo\"\n",
    );
    expect(&m, "noorder.good.bbb", "testb", &[("label", "good_foo")]);
    expect(&m, "noorder.ccc.bbb", "testc", &[("label", "ccc_foo")]);

    let m = load(
        "defaults:\n  glob_disable_ordering: false\nmappings:\n- match: order.*.*\n  name: \"testa\"\n  labels:\n    label: \"${1}_foo\"\n- match: order.*.bbb\n  name: \"testb\"\n  labels:\n    label: \"${1}_foo\"\n",
    );
    expect(&m, "order.good.bbb", "testa", &[("label", "good_foo")]);
}

#[test]
fn templates() {
    let m = load(
        "---\nmappings:\n- match: test.*\n  name: \"name\"\n  labels:\n    label: \"$1_foo\"\n",
    );
    expect(&m, "test.a", "name", &[("label", "")]);
    let m =
        load("mappings:\n- match: test.*\n  name: \"name\"\n  labels:\n    label: \"${1}_foo\"\n");
    expect(&m, "test.a", "name", &[("label", "a_foo")]);
    // Without a trailing newline.
    let m =
        load("mappings:\n- match: test.*\n  name: \"name\"\n  labels:\n    label: \"${1}_foo\"");
    expect(&m, "test.a", "name", &[("label", "a_foo")]);
    let m = load(
        "---\nmappings:\n- match: test1.*.*\n  name: \"$1\"\n  labels: {}\n- match: test2.*.*\n  name: \"${1}_$2\"\n  labels: {}\n- match: test3\\.(\\w+)\\.(\\w+)\n  match_type: regex\n  name: \"${2}_$1\"\n  labels: {}\n",
    );
    expect(&m, "test1.total_requests.count", "total_requests", &[]);
    expect(
        &m,
        "test2.total_requests.count",
        "total_requests_count",
        &[],
    );
    expect(
        &m,
        "test3.total_requests.count",
        "count_total_requests",
        &[],
    );
    let m = load(
        "\nmappings:\n- match: \"*.test.*\"\n  name: \"name\"\n  labels:\n    label: \"${2}_foo\"",
    );
    expect(&m, "foo.test.a", "name", &[("label", "a_foo")]);
    let m = load("---\nmappings:\n- match: p.*.*.c.*\n  match_type: glob\n  name: issue_256\n  labels:\n    one: $1\n    two: $2\n    three: $3\n");
    expect(
        &m,
        "p.one.two.c.three",
        "issue_256",
        &[("one", "one"), ("two", "two"), ("three", "three")],
    );
    // Non-string scalars are text, as in Go's YAML.
    let m = load("mappings:\n- match: a.*\n  name: a\n  labels:\n    code: 200\n    on: true\n");
    expect(&m, "a.x", "a", &[("code", "200"), ("on", "true")]);
}

#[test]
fn readme_example() {
    let m = load(
        "\nmappings:\n- match: test.dispatcher.*.*.*\n  name: \"dispatcher_events_total\"\n  labels:\n    processor: \"$1\"\n    action: \"$2\"\n    outcome: \"$3\"\n    job: \"test_dispatcher\"\n- match: \"*.signup.*.*\"\n  name: \"signup_events_total\"\n  labels:\n    provider: \"$2\"\n    outcome: \"$3\"\n    job: \"${1}_server\"\n",
    );
    expect(
        &m,
        "test.dispatcher.FooProcessor.send.success",
        "dispatcher_events_total",
        &[
            ("processor", "FooProcessor"),
            ("action", "send"),
            ("outcome", "success"),
            ("job", "test_dispatcher"),
        ],
    );
    expect(
        &m,
        "foo_product.signup.facebook.failure",
        "signup_events_total",
        &[
            ("provider", "facebook"),
            ("outcome", "failure"),
            ("job", "foo_product_server"),
        ],
    );
    assert_eq!(map(&m, "test.web-server.foo.bar"), None);
}

#[test]
fn bad_configs() {
    let cases = [
        // bad metric line
        "---\nmappings:\n- match: bad--metric-line.*.*\n  name: \"foo\"\n  labels: {}\n",
        // bad metric name
        "---\nmappings:\n- match: test.*.*\n  name: \"0foo\"\n  labels: {}\n",
        // no metric name
        "---\nmappings:\n- match: test.*.*\n  labels:\n    this: \"$1\"\n",
        // an improperly escaped * (a YAML alias)
        "\nmappings:\n- match: *.test.*\n  name: \"name\"\n  labels:\n    label: \"${1}_foo\"",
        // bad observer type
        "---\nmappings:\n- match: test.*.*\n  observer_type: wrong\n  name: \"foo\"\n  labels: {}\n",
        // bad deprecated timer type
        "---\nmappings:\n- match: test.*.*\n  timer_type: wrong\n  name: \"foo\"\n  labels: {}\n",
        // duplicate quantiles
        "---\nmappings:\n- match: test.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n  quantiles:\n    - quantile: 0.42\n      error: 0.04\n  summary_options:\n    quantiles:\n      - quantile: 0.42\n        error: 0.04\n",
        // bad metric type matcher
        "---\nmappings:\n- match: test.*.*\n  match_metric_type: wrong\n  name: \"foo\"\n  labels: {}\n",
        // uncompilable regex
        "---\nmappings:\n- match: \"*\\\\.foo\"\n  match_type: regex\n  name: \"foo\"\n  labels: {}\n",
        // no name
        "---\nmappings:\n- match: *\\.foo\n  match_type: regex\n  labels:\n    bar: \"foo\"\n",
        // invalid action
        "---\nmappings:\n- match: test.*.*\n  name: \"foo\"\n  action: xyz\n",
        // invalid YAML escape
        "---\nmappings:\n- match: \"test\\.(\\w+)\\.(\\w+)\\.counter\"\n  match_type: regex\n  name: \"${2}_total\"\n  labels:\n    provider: \"$1\"\n",
        // one-character label name (statsd_exporter wants two)
        "mappings:\n- match: a.*\n  name: a\n  labels:\n    x: y\n",
        // histogram observer with summary options
        "mappings:\n- match: a.*\n  name: a\n  observer_type: histogram\n  summary_options: {max_age: 1m}\n",
        "mappings:\n- match: a.*\n  name: a\n  observer_type: summary\n  histogram_options: {buckets: [1]}\n",
        "mappings:\n- match: a.*\n  name: a\n  buckets: [1]\n  histogram_options: {buckets: [2]}\n",
        // beyond statsd_exporter: would fail at the first sample there
        "mappings:\n- match: a.*\n  name: a\n  observer_type: histogram\n  histogram_options: {buckets: [2, 1]}\n",
        "mappings:\n- match: a.*\n  name: a\n  observer_type: summary\n  summary_options: {quantiles: [{quantile: 1.5, error: 0.1}]}\n",
        "mappings:\n- match: a.*\n  name: a\n  ttl: -1s\n",
        "defaults:\n  histogram_options: {buckets: [1, 1]}\n",
        "mappings:\n- match: a.*\n  name: a\n  ttl: soon\n",
        "mappings:\n- match: a.*\n  name: a\n  match_type: fuzzy\n",
    ];
    for config in cases {
        bad(config);
    }
}

#[test]
fn errors_name_file_line_and_key() {
    let e = bad("mappings:\n- match: ok.*\n  name: ok\n- match: bad--line.*\n  name: foo\n");
    assert_eq!(
        e.to_string(),
        "mapping config test.yml line 4: mappings[1].match: invalid match: bad--line.*"
    );
    let e = bad("mappings:\n- match: a.*\n  labels:\n    l1: x\n");
    assert_eq!(
        e.to_string(),
        "mapping config test.yml line 2: mappings[0].name: metric mapping didn't set a metric name"
    );
    let e = bad("defaults:\n  ttl: 1m\n  histogram_options:\n    buckets: [3, 2]\n");
    assert!(
        e.to_string()
            .starts_with("mapping config test.yml line 3: defaults.histogram_options: buckets must be in increasing order"),
        "{e}"
    );
    // YAML type errors carry serde_yaml's path, line and column.
    let e = bad("mappings:\n- match: a.*\n  name: a\n  observer_type: wrong\n");
    let msg = e.to_string();
    assert!(
        msg.contains("mappings[0].observer_type: invalid observer type 'wrong'"),
        "{msg}"
    );
    assert!(msg.contains("line 4"), "{msg}");
}

#[test]
fn observer_types_and_options() {
    let q42 = [0.42, 0.7];
    // Legacy top-level quantiles.
    let m = load("---\nmappings:\n- match: test.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n  quantiles:\n    - quantile: 0.42\n      error: 0.04\n    - quantile: 0.7\n      error: 0.002\n");
    assert_eq!(quantiles(&m, "test.*.*"), q42);
    // observer_type wins over timer_type.
    let m = load("---\nmappings:\n- match: test.*.*\n  observer_type: summary\n  timer_type: histogram\n  name: \"foo\"\n  labels: {}\n  quantiles:\n    - quantile: 0.42\n      error: 0.04\n    - quantile: 0.7\n      error: 0.002\n");
    assert_eq!(quantiles(&m, "test.*.*"), q42);
    // Defaults when nothing is given; the deprecated timer_type works.
    for config in [
        "---\nmappings:\n- match: test1.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n",
        "---\nmappings:\n- match: test1.*.*\n  timer_type: summary\n  name: \"foo\"\n  labels: {}\n",
    ] {
        assert_eq!(quantiles(&load(config), "test1.*.*"), [0.5, 0.9, 0.99]);
    }
    let m = load("---\nmappings:\n- match: test.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n  summary_options:\n    quantiles:\n      - quantile: 0.42\n        error: 0.04\n      - quantile: 0.7\n        error: 0.002\n    max_age: 5m\n    age_buckets: 2\n    buf_cap: 1000\n");
    assert_eq!(
        summary_config(&m, "test.*.*"),
        SummaryConfig::new(
            &[(0.42, 0.04), (0.7, 0.002)],
            Duration::from_secs(300),
            2,
            1000
        )
    );
    // Default summary options fill a mapping's.
    let m = load("---\ndefaults:\n summary_options:\n   quantiles:\n     - quantile: 0.42\n       error: 0.04\n     - quantile: 0.7\n       error: 0.002\n   max_age: 5m\n   age_buckets: 2\n   buf_cap: 1000\nmappings:\n- match: test.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n");
    assert_eq!(
        summary_config(&m, "test.*.*"),
        SummaryConfig::new(
            &[(0.42, 0.04), (0.7, 0.002)],
            Duration::from_secs(300),
            2,
            1000
        )
    );
    // Default options without quantiles keep the default quantiles.
    let m = load("---\ndefaults:\n summary_options:\n   max_age: 5m\n   age_buckets: 2\n   buf_cap: 1000\nmappings:\n- match: test.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n");
    assert_eq!(
        summary_config(&m, "test.*.*"),
        SummaryConfig::new(
            &crate::store::DEFAULT_OBJECTIVES,
            Duration::from_secs(300),
            2,
            1000
        )
    );
    // summary_options.quantiles wins over legacy default quantiles.
    let m = load("---\ndefaults:\n  quantiles:\n    - quantile: 0.9\n      error: 0.1\n    - quantile: 0.99\n      error: 0.01\n  summary_options:\n    quantiles:\n      - quantile: 0.42\n        error: 0.04\n      - quantile: 0.7\n        error: 0.002\n    max_age: 5m\n    age_buckets: 2\n    buf_cap: 1000\nmappings:\n- match: test.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n");
    assert_eq!(quantiles(&m, "test.*.*"), q42);
    // A mapping's options override the defaults, others keep them.
    let m = load("---\ndefaults:\n summary_options:\n   quantiles:\n     - quantile: 0.9\n       error: 0.1\n     - quantile: 0.99\n       error: 0.01\n   max_age: 15m\n   age_buckets: 3\n   buf_cap: 100\nmappings:\n- match: test.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n  summary_options:\n    quantiles:\n     - quantile: 0.42\n       error: 0.04\n     - quantile: 0.7\n       error: 0.002\n    max_age: 5m\n    age_buckets: 2\n    buf_cap: 1000\n- match: test_default.*.*\n  observer_type: summary\n  name: \"foo_default\"\n  labels: {}\n");
    assert_eq!(
        summary_config(&m, "test.*.*"),
        SummaryConfig::new(
            &[(0.42, 0.04), (0.7, 0.002)],
            Duration::from_secs(300),
            2,
            1000
        )
    );
    assert_eq!(
        summary_config(&m, "test_default.*.*"),
        SummaryConfig::new(
            &[(0.9, 0.1), (0.99, 0.01)],
            Duration::from_secs(900),
            3,
            100
        )
    );
    // Histograms.
    let b = [0.1, 1.0, 10.0, 100.0, 1000.0];
    let m = load("---\nmappings:\n- match: test.*.*\n  observer_type: histogram\n  name: \"foo\"\n  labels: {}\n  histogram_options:\n    buckets: [0.1, 1, 10, 100, 1000]\n");
    assert_eq!(buckets(&m, "test.*.*"), b);
    let m = load("---\ndefaults:\n  histogram_options:\n    buckets: [0.1, 1, 10, 100, 1000]\nmappings:\n- match: test.*.*\n  observer_type: histogram\n  name: \"foo\"\n  labels: {}\n");
    assert_eq!(buckets(&m, "test.*.*"), b);
    let m = load("---\ndefaults:\n  histogram_options:\n    buckets: []\nmappings:\n- match: test.*.*\n  observer_type: histogram\n  name: \"foo\"\n  labels: {}\n");
    assert_eq!(buckets(&m, "test.*.*"), DEFAULT_BUCKETS);
    let m = load("---\ndefaults:\n  buckets: [0.2, 2, 20, 200, 2000]\n  histogram_options:\n    buckets: [0.1, 1, 10, 100, 1000]\nmappings:\n- match: test.*.*\n  observer_type: histogram\n  name: \"foo\"\n  labels: {}\n");
    assert_eq!(buckets(&m, "test.*.*"), b);
    let m = load("---\ndefaults:\n  histogram_options:\n    buckets: [0.2, 2, 20, 200]\nmappings:\n- match: test.*.*\n  observer_type: histogram\n  name: \"foo\"\n  labels: {}\n  histogram_options:\n    buckets: [0.1, 1, 10, 100, 1000]\n- match: test_default.*.*\n  observer_type: histogram\n  name: \"foo_default\"\n  labels: {}\n");
    assert_eq!(buckets(&m, "test.*.*"), b);
    assert_eq!(buckets(&m, "test_default.*.*"), [0.2, 2.0, 20.0, 200.0]);
    // Native-histogram settings are accepted and ignored.
    let m = load("mappings:\n- match: n.*\n  name: n\n  observer_type: histogram\n  histogram_options: {buckets: [1, 2], native_histogram_bucket_factor: 1.1, native_histogram_max_buckets: 100}\n");
    assert_eq!(buckets(&m, "n.x"), [1.0, 2.0]);
    // Defaults choose the observer of unmapped names too.
    let m = load("defaults:\n  observer_type: histogram\n  buckets: [1, 2]\n");
    assert_eq!(
        *m.unmapped_observer(),
        ObserverSettings::Histogram(vec![1.0, 2.0].into())
    );
    assert!(matches!(
        Mapper::empty().unmapped_observer(),
        ObserverSettings::Summary(_)
    ));
}

#[test]
fn metric_types() {
    for t in ["counter", "observer", "timer", "gauge"] {
        load(&format!("---\nmappings:\n- match: test.*.*\n  match_metric_type: {t}\n  name: \"foo\"\n  labels: {{}}\n"));
    }
    let m = load("---\nmappings:\n- match: test.foo.*\n  name: \"test_foo_sum\"\n  match_metric_type: counter\n- match: test.foo.*\n  name: \"test_foo_current\"\n  match_metric_type: gauge\n");
    assert_eq!(
        map_as(&m, "test.foo.test", MetricType::Counter).unwrap().0,
        "test_foo_sum"
    );
    assert_eq!(
        map_as(&m, "test.foo.test", MetricType::Gauge).unwrap().0,
        "test_foo_current"
    );
    assert_eq!(map_as(&m, "test.foo.test", MetricType::Observer), None);
    // Regex mappings check the type after matching.
    let m = load("mappings:\n- match: ^a\n  match_type: regex\n  match_metric_type: gauge\n  name: g\n- match: ^a\n  match_type: regex\n  name: any\n");
    assert_eq!(map_as(&m, "abc", MetricType::Gauge).unwrap().0, "g");
    assert_eq!(map_as(&m, "abc", MetricType::Counter).unwrap().0, "any");
}

#[test]
fn non_matched_and_dropping() {
    let m = load("---\nmappings:\n- match: foo.*.*\n  observer_type: summary\n  name: \"foo\"\n  labels: {}\n");
    assert_eq!(map(&m, "test.1.2"), None);
    let m = load("mappings:\n- match: .\n  match_type: regex\n  name: \"drop\"\n  action: drop");
    for name in ["test.a", "abc"] {
        let r = m.lookup(name, MetricType::Counter).unwrap();
        assert_eq!(m.mapping(r.mapping).action, Action::Drop);
    }
    // Globs are tried before regexes whatever the file order.
    let m = load("mappings:\n- match: .\n  match_type: regex\n  name: \"drop\"\n  action: drop\n- match: web.*\n  name: \"web\"\n  labels:\n    site: \"$1\"");
    expect(&m, "web.localhost", "web", &[("site", "localhost")]);
    let r = m.lookup("test.a", MetricType::Counter).unwrap();
    assert_eq!(m.mapping(r.mapping).action, Action::Drop);
}

#[test]
fn actions() {
    for (config, action) in [
        ("---\nmappings:\n- match: test.*.*\n  name: \"foo\"\n", Action::Map),
        ("---\nmappings:\n- match: test.*.*\n  name: \"foo\"\n  action: map\n", Action::Map),
        ("---\nmappings:\n- match: test.*.*\n  name: \"foo\"\n  action: drop\n", Action::Drop),
        (
            "---\nmappings:\n- match: \"test\\\\.(\\\\w+)\\\\.(\\\\w+)\\\\.counter\"\n  match_type: regex\n  name: \"${2}_total\"\n  labels:\n    provider: \"$1\"\n",
            Action::Map,
        ),
    ] {
        assert_eq!(load(config).mapping(0).action, action);
    }
}

#[test]
fn ttl_and_scale() {
    let m =
        load("mappings:\n- match: web.*\n  name: \"web\"\n  ttl: 10s\n  labels:\n    site: \"$1\"");
    assert_eq!(m.mapping(0).ttl, Some(Duration::from_secs(10)));
    let m = load("defaults:\n  ttl: 1m2s\nmappings:\n- match: web.*\n  name: \"web\"\n  labels:\n    site: \"$1\"");
    assert_eq!(m.mapping(0).ttl, Some(Duration::from_secs(62)));
    assert_eq!(m.unmapped_ttl(), Some(Duration::from_secs(62)));
    let m = load("defaults:\n  ttl: 1m2s\nmappings:\n- match: web.*\n  name: \"web\"\n  ttl: 5s\n  labels:\n    site: \"$1\"");
    assert_eq!(m.mapping(0).ttl, Some(Duration::from_secs(5)));
    // An integer is nanoseconds, as Go's YAML reads a Duration.
    let m = load("mappings:\n- match: web.*\n  name: web\n  ttl: 1500\n");
    assert_eq!(m.mapping(0).ttl, Some(Duration::from_nanos(1500)));
    let m = load("mappings:\n- match: web.*\n  name: web\n  scale: 0.001\n  honor_labels: true\n  help: Web.\n");
    assert_eq!(m.mapping(0).scale, Some(0.001));
    assert!(m.mapping(0).honor_labels);
    assert_eq!(m.mapping(0).help.as_deref(), Some("Web."));
}

#[test]
fn multiple_matches_of_one_mapping() {
    let m = load("---\nmappings:\n- match: aa.bb.*.*\n  name: \"aa_bb_${1}_total\"\n  labels:\n  app: \"$2\"\n");
    for (name, want) in [
        ("aa.bb.aa.myapp", "aa_bb_aa_total"),
        ("aa.bb.bb.myapp", "aa_bb_bb_total"),
        ("aa.bb.cc.myapp", "aa_bb_cc_total"),
        ("aa.bb.dd.myapp", "aa_bb_dd_total"),
    ] {
        assert_eq!(map(&m, name).unwrap().0, want);
    }
}

#[test]
fn glob_first_segments() {
    // The first segment may not start with a digit, later ones may; `*`
    // anywhere.
    load("mappings:\n- match: a.0b.*\n  name: x\n");
    load("mappings:\n- match: \"*.b\"\n  name: x\n");
    load("mappings:\n- match: a-b.c-d\n  name: x\n");
    bad("mappings:\n- match: 0a.b\n  name: x\n");
    bad("mappings:\n- match: a..b\n  name: x\n");
    bad("mappings:\n- match: a.b-\n  name: x\n");
}

#[test]
fn go_regex_classes_are_ascii() {
    assert_eq!(go_regex(r"^\w+\.\d$"), r"^[0-9A-Za-z_]+\.[0-9]$");
    assert_eq!(go_regex(r"[\w.-]+"), r"[0-9A-Za-z_.-]+");
    assert_eq!(go_regex(r"[^\d]"), r"[^0-9]");
    assert_eq!(go_regex(r"\Qa.b\E+"), r"a\.b+");
    assert_eq!(go_regex(r"[]a]"), r"[]a]");
    assert_eq!(go_regex(r"[[:alpha:]\d]"), r"[[:alpha:]0-9]");
    let m = load("mappings:\n- match: '^(\\w+)\\b'\n  match_type: regex\n  name: w_$1\n");
    assert_eq!(map(&m, "héllo.x").map(|r| r.0), Some("w_h".into()));
    assert_eq!(map(&m, "abc.x").map(|r| r.0), Some("w_abc".into()));
}

#[test]
fn locate_finds_lines() {
    let text = "# comment\ndefaults:\n  ttl: 1s\nmappings:\n  # first\n  - match: a\n    name: b\n\n  - name: c\n    match: d\nother: 1\n";
    assert_eq!(locate(text, "defaults", None, Some("ttl")), Some(3));
    assert_eq!(locate(text, "mappings", Some(0), None), Some(6));
    assert_eq!(locate(text, "mappings", Some(0), Some("name")), Some(7));
    assert_eq!(locate(text, "mappings", Some(1), Some("match")), Some(10));
    assert_eq!(locate(text, "mappings", Some(1), Some("name")), Some(9));
    assert_eq!(locate(text, "mappings", Some(2), None), None);
}
