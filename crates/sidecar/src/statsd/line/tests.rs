//! Cases from statsd_exporter's `pkg/line` tests (written here from what
//! they expect: input line → events), plus the reasons counted.

use std::collections::BTreeMap;

use super::*;

/// An event as statsd_exporter's tests list them: name, labels, kind,
/// value; a sample of weight n appears n times.
type Event = (String, BTreeMap<String, String>, SampleKind, f64);

fn events(parser: &Parser, input: &str) -> (Vec<Event>, ParseCounts) {
    let mut counts = ParseCounts::default();
    let mut line = Line::default();
    parser.parse_bytes(input.as_bytes(), &mut line, &mut counts);
    let labels: BTreeMap<String, String> = line
        .labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut out = Vec::new();
    for s in &line.samples {
        for _ in 0..s.weight {
            out.push((line.name.to_string(), labels.clone(), s.kind, s.value));
        }
    }
    (out, counts)
}

fn ev(name: &str, labels: &[(&str, &str)], kind: SampleKind, value: f64) -> Event {
    let labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (name.to_string(), labels, kind, value)
}

const C: SampleKind = SampleKind::Counter;
const G: SampleKind = SampleKind::Gauge { relative: false };
const GR: SampleKind = SampleKind::Gauge { relative: true };
const O: SampleKind = SampleKind::Observer;

fn all() -> Parser {
    Parser::default()
}

fn check(parser: &Parser, cases: &[(&str, Vec<Event>)]) {
    for (input, want) in cases {
        let (got, _) = events(parser, input);
        assert_eq!(&got, want, "line {input:?}");
    }
}

fn times(n: usize, e: Event) -> Vec<Event> {
    vec![e; n]
}

fn extended(name: &str, labels: &[(&str, &str)], values: &[f64], each: usize) -> Vec<Event> {
    values
        .iter()
        .flat_map(|v| times(each, ev(name, labels, O, *v)))
        .collect()
}

const TAGS: [(&str, &str); 2] = [("tag1", "bar"), ("tag2", "baz")];
const TIMINGS: [f64; 6] = [0.0005, 0.120, 3.0, 0.01, 20.0, 0.00001];
const RAW: [f64; 6] = [0.5, 120.0, 3000.0, 10.0, 20000.0, 0.01];

#[test]
fn line_to_events() {
    let cases: Vec<(&str, Vec<Event>)> = vec![
        ("", vec![]),
        ("foo:2|c", vec![ev("foo", &[], C, 2.0)]),
        ("foo:3|g", vec![ev("foo", &[], G, 3.0)]),
        ("foo:3|g|@0.2", vec![ev("foo", &[], G, 3.0)]),
        ("foo:-10|g", vec![ev("foo", &[], GR, -10.0)]),
        ("foo:+10|g", vec![ev("foo", &[], GR, 10.0)]),
        ("foo:200|ms", vec![ev("foo", &[], O, 0.2)]),
        ("foo:200|h", vec![ev("foo", &[], O, 200.0)]),
        ("foo:200|d", vec![ev("foo", &[], O, 200.0)]),
        ("foo:0.01|d|@0.2|#tag1:bar,#tag2:baz", times(5, ev("foo", &TAGS, O, 0.01))),
        ("foo:0.01|h|@0.2|#tag1:bar,#tag2:baz", times(5, ev("foo", &TAGS, O, 0.01))),
        ("foo#tag1=bar,tag2=baz:100|c", vec![ev("foo", &TAGS, C, 100.0)]),
        (
            "foo#09digits=0,tag.with.dots=1:100|c",
            vec![ev("foo", &[("_09digits", "0"), ("tag_with_dots", "1")], C, 100.0)],
        ),
        ("foo,tag1=bar,tag2=baz:100|c", vec![ev("foo", &TAGS, C, 100.0)]),
        (
            "foo,09digits=0,tag.with.dots=1:100|c",
            vec![ev("foo", &[("_09digits", "0"), ("tag_with_dots", "1")], C, 100.0)],
        ),
        ("foo.[tag1=bar,tag2=baz]test:100|c", vec![ev("foo.test", &TAGS, C, 100.0)]),
        ("foo.test[tag1=bar,tag2=baz]:100|c", vec![ev("foo.test", &TAGS, C, 100.0)]),
        ("[tag1=bar,tag2=baz]foo.test:100|c", vec![ev("foo.test", &TAGS, C, 100.0)]),
        ("foo.[]test:100|c", vec![ev("foo.test", &[], C, 100.0)]),
        ("foo.[tag1,tag2]test:100|c", vec![ev("foo.test", &[], C, 100.0)]),
        (
            "[tag1=bar,tag2=bazfoo.test:100|c",
            vec![ev("[tag1=bar,tag2=bazfoo.test", &[], C, 100.0)],
        ),
        (
            "tag1=bar,tag2=baz]foo.test:100|c",
            vec![ev("tag1=bar,tag2=baz]foo.test", &[], C, 100.0)],
        ),
        ("foo:100|c|#tag1:bar,tag2:baz", vec![ev("foo", &TAGS, C, 100.0)]),
        ("foo:100|c|#tag1:bar,#tag2:baz", vec![ev("foo", &TAGS, C, 100.0)]),
        (
            "foo:100|c|#09digits:0,tag.with.dots:1",
            vec![ev("foo", &[("_09digits", "0"), ("tag_with_dots", "1")], C, 100.0)],
        ),
        ("foo:100|c|#tag_without_a_value", vec![ev("foo", &[], C, 100.0)]),
        (
            "foo:100|c|#tag_without_a_value,tag:value",
            vec![ev("foo", &[("tag", "value")], C, 100.0)],
        ),
        ("foo:100|c|#tag:value,,", vec![ev("foo", &[("tag", "value")], C, 100.0)]),
        ("foo:100|c|@0.1|#tag1:bar,#tag2:baz", vec![ev("foo", &TAGS, C, 1000.0)]),
        ("foo#tag1=foo,tag3=bing:100|c|#tag1:bar,#tag2:baz", vec![]),
        ("foo[tag1=foo,tag3=bing]:100|c|#tag1:bar,#tag2:baz", vec![]),
        ("foo,tag1=foo,tag3=bing:100|c|#tag1:bar,#tag2:baz", vec![]),
        ("foo#tag1=foo,tag3=bing:100|c|@0.1|#tag1:bar,#tag2:baz", vec![]),
        ("foo:100|c|@0.1|#tag1:foo:bar", vec![ev("foo", &[("tag1", "foo:bar")], C, 1000.0)]),
        ("foo:100|c|@0.1|#tag:\u{fffd}(invalid", vec![ev("foo", &[("tag", "\u{fffd}(invalid")], C, 1000.0)]),
        (
            "foo_timing:0.5:120:3000:10:20000:0.01|ms|#tag1:bar,tag2:baz",
            extended("foo_timing", &TAGS, &TIMINGS, 1),
        ),
        (
            "foo_timing:0.5:120:3000:10:20000:0.01|ms",
            extended("foo_timing", &[], &TIMINGS, 1),
        ),
        (
            "foo_timing:0.5:120:3000:10:20000:0.01|ms|@0.5",
            extended("foo_timing", &[], &TIMINGS, 2),
        ),
        (
            "foo_timing:0.5:120:3000:10:20000:0.01|ms|@0.5|#tag1:bar,tag2:baz",
            extended("foo_timing", &TAGS, &TIMINGS, 2),
        ),
        (
            "foo_histogram:0.5:120:3000:10:20000:0.01|h|#tag1:bar,tag2:baz",
            extended("foo_histogram", &TAGS, &RAW, 1),
        ),
        (
            "foo_distribution:0.5:120:3000:10:20000:0.01|d|#tag1:bar,tag2:baz",
            extended("foo_distribution", &TAGS, &RAW, 1),
        ),
        ("foo_counter:0.5:120:3000:10:20000:0.01|c|#tag1:bar,tag2:baz", vec![]),
        ("foo_gauge:0.5:120:3000:10:20000:0.01|g|#tag1:bar,tag2:baz", vec![]),
        (
            "foo.[tag1=bar,tag2=baz]test:0.5:120:3000:10:20000:0.01|ms",
            extended("foo.test", &TAGS, &TIMINGS, 1),
        ),
        ("foo.[tag1=bar,tag2=baz]test:0.5:120:3000:10:20000:0.01|c", vec![]),
        ("foo.[]test:0.5:120:3000:10:20000:0.01|c", vec![]),
        ("foo.timing:0.5|ms|@0.1", times(10, ev("foo.timing", &[], O, 0.0005))),
        ("foo", vec![]),
        ("foo:1", vec![]),
        ("foo:1o|c", vec![]),
        ("foo:1|c|@bar", vec![ev("foo", &[], C, 1.0)]),
        ("foo:2|c|@0", vec![ev("foo", &[], C, 2.0)]),
        ("foo:2|t", vec![]),
        (":100|ms", vec![]),
        ("foo:1|c|", vec![]),
        (
            "karafka.consumer.consume.cpu_idle_second:  0.111090  -0.055903  -0.195390 (  2.419002)",
            vec![],
        ),
        (
            "|h|#consumer:Kafka::SharedConfigurationConsumer,topic:shared_configuration_update,partition:1,consumer_group:tc_rc_us",
            vec![],
        ),
        (
            "foo:100|c|#tag1:value|c:container123",
            vec![ev("foo", &[("tag1", "value"), ("container_id", "container123")], C, 100.0)],
        ),
        (
            "foo:100|c|#tag1:bar,tag2:baz|c:container456",
            vec![ev(
                "foo",
                &[("tag1", "bar"), ("tag2", "baz"), ("container_id", "container456")],
                C,
                100.0,
            )],
        ),
        (
            "foo:50|g|#tag1:value|c:gauge_container",
            vec![ev("foo", &[("tag1", "value"), ("container_id", "gauge_container")], G, 50.0)],
        ),
        (
            "foo:1000|ms|#tag1:value|c:timer_container",
            vec![ev("foo", &[("tag1", "value"), ("container_id", "timer_container")], O, 1.0)],
        ),
        (
            "foo:500|h|#tag1:value|c:hist_container",
            vec![ev("foo", &[("tag1", "value"), ("container_id", "hist_container")], O, 500.0)],
        ),
        ("foo:100|c|#tag1:value|c", vec![]),
        ("foo:100|c|#tag1:value|c:", vec![]),
        (
            "foo:100|c|#tag1:value|c:sha256:abcd1234efgh5678",
            vec![ev(
                "foo",
                &[("tag1", "value"), ("container_id", "sha256:abcd1234efgh5678")],
                C,
                100.0,
            )],
        ),
        ("foo:1|c|T1656581400", vec![ev("foo", &[], C, 1.0)]),
        ("foo:1|c|T", vec![]),
        ("foo:1|c|Tnow", vec![]),
        // Several samples per line, without DogStatsD tags.
        (
            "foo:1|c:2|g:3|ms",
            vec![ev("foo", &[], C, 1.0), ev("foo", &[], G, 2.0), ev("foo", &[], O, 0.003)],
        ),
        // A rate above 1 repeats an observation int(1/rate) = 0 times.
        ("foo:1|ms|@2", vec![]),
        ("foo:1|c|@2", vec![ev("foo", &[], C, 0.5)]),
        ("foo:1|s", vec![]),
    ];
    check(&all(), &cases);
}

#[test]
fn invalid_utf8_is_a_malformed_line() {
    for input in [
        &b"invalid\xc3\x28utf8:1|c"[..],
        b"foo:100|c|@0.1|#tag:\xc3\x28invalid",
    ] {
        let mut counts = ParseCounts::default();
        let mut line = Line::default();
        all().parse_bytes(input, &mut line, &mut counts);
        assert!(line.samples.is_empty());
        assert_eq!(counts.errors(SampleError::MalformedLine), 1);
    }
}

fn styles(dogstatsd: bool, influxdb: bool, librato: bool, signalfx: bool) -> Parser {
    Parser {
        styles: TagStyles {
            dogstatsd,
            influxdb,
            librato,
            signalfx,
        },
    }
}

#[test]
fn disabled_tag_styles_stay_in_the_name() {
    let none = styles(false, false, false, false);
    check(
        &none,
        &[
            (
                "foo#tag1=bar,tag2=baz:100|c",
                vec![ev("foo#tag1=bar,tag2=baz", &[], C, 100.0)],
            ),
            (
                "foo,tag1=bar,tag2=baz:100|c",
                vec![ev("foo,tag1=bar,tag2=baz", &[], C, 100.0)],
            ),
            (
                "foo.[tag1=bar,tag2=baz]test:100|c",
                vec![ev("foo.[tag1=bar,tag2=baz]test", &[], C, 100.0)],
            ),
            (
                "foo:100|c|#tag1:bar,tag2:baz",
                vec![ev("foo", &[], C, 100.0)],
            ),
            (
                "foo:100|c|@0.1|#tag1:bar,#tag2:baz",
                vec![ev("foo", &[], C, 1000.0)],
            ),
            (
                "foo_timing:0.5:120:3000:10:20000:0.01|ms|#tag1:bar,tag2:baz",
                extended("foo_timing", &[], &TIMINGS, 1),
            ),
            // The styles are not parsed but still may not mix.
            (
                "foo#tag1=foo:100|c|#tag1:bar",
                vec![ev("foo#tag1=foo", &[], C, 100.0)],
            ),
        ],
    );
    let no_influx = styles(true, false, true, true);
    check(
        &no_influx,
        &[
            (
                "foo#tag1=bar,tag2=baz:100|c",
                vec![ev("foo", &TAGS, C, 100.0)],
            ),
            (
                "foo,tag1=bar,tag2=baz:100|c",
                vec![ev("foo,tag1=bar,tag2=baz", &[], C, 100.0)],
            ),
            (
                "foo.[tag1=bar,tag2=baz]test:100|c",
                vec![ev("foo.test", &TAGS, C, 100.0)],
            ),
            (
                "foo:100|c|#tag1:bar,tag2:baz",
                vec![ev("foo", &TAGS, C, 100.0)],
            ),
        ],
    );
    let no_librato = styles(true, true, false, true);
    check(
        &no_librato,
        &[
            (
                "foo#tag1=bar,tag2=baz:100|c",
                vec![ev("foo#tag1=bar", &[("tag2", "baz")], C, 100.0)],
            ),
            (
                "foo,tag1=bar,tag2=baz:100|c",
                vec![ev("foo", &TAGS, C, 100.0)],
            ),
        ],
    );
    let no_signalfx = styles(true, true, true, false);
    check(
        &no_signalfx,
        &[
            (
                "foo.[tag1=bar,tag2=baz]test:100|c",
                vec![ev("foo.[tag1=bar", &[("tag2", "baz]test")], C, 100.0)],
            ),
            ("foo.[]test:100|c", vec![ev("foo.[]test", &[], C, 100.0)]),
        ],
    );
}

#[test]
fn reasons_are_counted_like_statsd_exporter() {
    let cases: &[(&str, SampleError)] = &[
        ("foo", SampleError::MalformedLine),
        (":1|c", SampleError::MalformedLine),
        ("foo#a=b:1|c|#c:d", SampleError::MixedTaggingStyles),
        ("foo:1", SampleError::NotEnoughPartsAfterColon),
        ("foo:1:2|c", SampleError::InvalidExtendedAggregateType),
        ("foo:1|c|", SampleError::MalformedComponent),
        (
            "foo:1|c|@1|#a:b|c:x|T1|@1|@1|@1",
            SampleError::MalformedComponent,
        ),
        ("foo:x|c", SampleError::MalformedValue),
        ("foo:1|c|@x", SampleError::InvalidSampleFactor),
        ("foo:1|c|x", SampleError::InvalidSampleFactor),
        ("foo:1|c|c", SampleError::MalformedContainerId),
        ("foo:1|c|T12x", SampleError::MalformedTimestamp),
        ("foo:1|s", SampleError::IllegalEvent),
        ("foo:1|x", SampleError::IllegalEvent),
    ];
    for (input, reason) in cases {
        let (_, counts) = events(&all(), input);
        assert_eq!(counts.errors(*reason), 1, "{input:?}: {counts:?}");
        assert_eq!(
            counts.sample_errors.iter().sum::<u64>(),
            1,
            "{input:?}: {counts:?}"
        );
    }
    // Samples and tags are counted per sample; bad tags separately.
    let (_, counts) = events(&all(), "foo:1|c|#a:b,bad,,c:d");
    assert_eq!((counts.samples, counts.tags, counts.tag_errors), (1, 1, 2));
    let (_, counts) = events(&all(), "foo,a=b:1|c:2|g");
    assert_eq!((counts.samples, counts.tags), (2, 2));
    let (_, counts) = events(&all(), "foo[a=b:1|c");
    assert_eq!(counts.tag_errors, 1);
}

#[test]
fn reversed_signalfx_brackets_do_not_panic() {
    let (got, counts) = events(&all(), "a]b[c:1|c");
    assert_eq!(got, vec![ev("a]b[c", &[], C, 1.0)]);
    assert_eq!(counts.tag_errors, 1);
}

#[test]
fn tiny_and_odd_sample_rates() {
    // int(1/rate) beyond i64 is i64::MIN on amd64: no event.
    check(
        &all(),
        &[
            ("foo:1|ms|@1e-300", vec![]),
            ("foo:1|ms|@-0.5", vec![]),
            ("foo:1|ms|@NaN", vec![]),
            ("foo:1|c|@Inf", vec![ev("foo", &[], C, 0.0)]),
            ("foo:1|ms|@0.3", times(3, ev("foo", &[], O, 0.001))),
        ],
    );
    let mut line = Line::default();
    let mut counts = ParseCounts::default();
    all().parse("foo:1|h|@0.000001", &mut line, &mut counts);
    assert_eq!(line.samples[0].weight, 1_000_000);
}

#[test]
fn recycled_lines_keep_their_buffers() {
    let mut counts = ParseCounts::default();
    let text = String::from("foo:1|c|#a:b,c:d");
    let mut line = Line::default();
    all().parse(&text, &mut line, &mut counts);
    let cap = line.labels.capacity();
    let line = line.recycle();
    assert!(line.labels.is_empty() && line.labels.capacity() == cap);
}
