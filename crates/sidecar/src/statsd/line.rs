//! The StatsD line protocol as statsd_exporter reads it.
//!
//! `name:value|type[|@rate][|#tags][|c:container][|Ttimestamp]`, with
//! types `c` (counter), `g` (gauge; a leading `+`/`-` makes it relative),
//! `ms` (timer, milliseconds turned into seconds), `h` and `d` (histogram
//! and distribution, unscaled) and `s` (sets, rejected as statsd_exporter
//! rejects them). Several samples may share a name (`name:1|c:2|g`), and
//! DogStatsD's extended aggregation packs several values of one timer,
//! histogram or distribution (`name:1:2:3|ms`). A sample rate divides a
//! counter's value and repeats an observation `int(1/rate)` times; gauges
//! ignore it.
//!
//! Tags, each style behind its flag: DogStatsD `|#k:v,k2:v2`, InfluxDB
//! `name,k=v:…`, Librato `name#k=v:…` and SignalFX `na[k=v]me:…`. Tag keys
//! are escaped like metric names. Mixing DogStatsD tags with a name-embedded
//! style drops the line. A line's tags are shared by all its samples, as in
//! statsd_exporter (where all events of a line share one label map).
//!
//! Every problem is counted under statsd_exporter's `reason` labels of
//! `statsd_exporter_sample_errors_total` and skipped; nothing here panics.

use std::borrow::Cow;

use super::escape::escape_metric_name;
use super::gosyntax::parse_float;

/// Which tag styles are parsed (`--statsd.parse-*-tags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagStyles {
    /// `|#key:value`
    pub dogstatsd: bool,
    /// `name,key=value`
    pub influxdb: bool,
    /// `name#key=value`
    pub librato: bool,
    /// `name[key=value]`
    pub signalfx: bool,
}

impl Default for TagStyles {
    fn default() -> Self {
        TagStyles {
            dogstatsd: true,
            influxdb: true,
            librato: true,
            signalfx: true,
        }
    }
}

/// The kind of a sample, which picks the mapping's `match_metric_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// `c`
    Counter,
    /// `g`; `relative` when the value had a sign.
    Gauge {
        /// Add to the gauge instead of setting it.
        relative: bool,
    },
    /// `ms`, `h`, `d`
    Observer,
}

/// One sample of a line, after the sample rate is applied.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// What it records.
    pub kind: SampleKind,
    /// The value (seconds for timers, divided by the rate for counters).
    pub value: f64,
    /// How many events it stands for: `int(1/rate)` for observers (a rate
    /// giving 0 drops the sample, as statsd_exporter's loop then runs zero
    /// times), else 1.
    pub weight: u64,
}

/// Why a sample was rejected: the `reason` label of
/// `statsd_exporter_sample_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleError {
    /// No `:`, an empty name, or invalid UTF-8.
    MalformedLine,
    /// DogStatsD tags together with name-embedded tags.
    MixedTaggingStyles,
    /// No `|` after the first `:`.
    NotEnoughPartsAfterColon,
    /// Several values for a type other than `ms`, `h`, `d`.
    InvalidExtendedAggregateType,
    /// Fewer than 2 or more than 8 `|`-parts, or an empty part.
    MalformedComponent,
    /// The value is not a number.
    MalformedValue,
    /// A bad `@rate` or an unknown part.
    InvalidSampleFactor,
    /// A `c` part that is not `c:<id>`.
    MalformedContainerId,
    /// A `T` part that is not `T<unix seconds>`.
    MalformedTimestamp,
    /// A set or an unknown type.
    IllegalEvent,
}

impl SampleError {
    /// Every reason, in a fixed order (for counters indexed by reason).
    pub const ALL: [SampleError; 10] = [
        SampleError::MalformedLine,
        SampleError::MixedTaggingStyles,
        SampleError::NotEnoughPartsAfterColon,
        SampleError::InvalidExtendedAggregateType,
        SampleError::MalformedComponent,
        SampleError::MalformedValue,
        SampleError::InvalidSampleFactor,
        SampleError::MalformedContainerId,
        SampleError::MalformedTimestamp,
        SampleError::IllegalEvent,
    ];

    /// The `reason` label value.
    pub fn reason(self) -> &'static str {
        match self {
            SampleError::MalformedLine => "malformed_line",
            SampleError::MixedTaggingStyles => "mixed_tagging_styles",
            SampleError::NotEnoughPartsAfterColon => "not_enough_parts_after_colon",
            SampleError::InvalidExtendedAggregateType => "invalid_extended_aggregate_type",
            SampleError::MalformedComponent => "malformed_component",
            SampleError::MalformedValue => "malformed_value",
            SampleError::InvalidSampleFactor => "invalid_sample_factor",
            SampleError::MalformedContainerId => "malformed_container_id",
            SampleError::MalformedTimestamp => "malformed_timestamp",
            SampleError::IllegalEvent => "illegal_event",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What parsing counted: statsd_exporter's samples, tags and errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParseCounts {
    /// Samples seen (`statsd_exporter_samples_total`).
    pub samples: u64,
    /// Samples that carried tags (`statsd_exporter_tags_total`).
    pub tags: u64,
    /// Bad tags (`statsd_exporter_tag_errors_total`).
    pub tag_errors: u64,
    /// Rejected samples by [`SampleError`] (in [`SampleError::ALL`] order).
    pub sample_errors: [u64; 10],
}

impl ParseCounts {
    fn error(&mut self, e: SampleError) {
        self.sample_errors[e.index()] += 1;
    }

    /// The count for one reason.
    pub fn errors(&self, e: SampleError) -> u64 {
        self.sample_errors[e.index()]
    }
}

/// Labels of a line: escaped keys, values in insertion order, a repeated
/// key replacing the earlier value.
pub type Labels<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// Sets `key` to `value`, replacing an earlier value of the same key.
pub fn set_label<'a>(labels: &mut Labels<'a>, key: Cow<'a, str>, value: Cow<'a, str>) {
    match labels.iter_mut().find(|(k, _)| *k == key) {
        Some(slot) => slot.1 = value,
        None => labels.push((key, value)),
    }
}

/// A parsed line: the name, the labels its samples share, the samples.
#[derive(Debug, Default, PartialEq)]
pub struct Line<'a> {
    /// The StatsD metric name, tags removed.
    pub name: Cow<'a, str>,
    /// Tags as labels.
    pub labels: Labels<'a>,
    /// The samples, in order.
    pub samples: Vec<Sample>,
}

impl<'a> Line<'a> {
    /// Empties the line and rebinds it to a new borrow, keeping its
    /// allocations (the in-place `collect` reuses the buffers).
    pub fn recycle<'b>(mut self) -> Line<'b> {
        self.labels.clear();
        self.samples.clear();
        Line {
            name: Cow::Borrowed(""),
            labels: self.labels.into_iter().map(|_| unreachable!()).collect(),
            samples: self.samples,
        }
    }
}

/// The line parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct Parser {
    /// Enabled tag styles.
    pub styles: TagStyles,
}

impl Parser {
    /// Parses one line given as bytes: an empty line is nothing, invalid
    /// UTF-8 is a malformed line.
    pub fn parse_bytes<'a>(&self, line: &'a [u8], out: &mut Line<'a>, counts: &mut ParseCounts) {
        match std::str::from_utf8(line) {
            Ok(text) => self.parse(text, out, counts),
            Err(_) => {
                out.name = Cow::Borrowed("");
                out.labels.clear();
                out.samples.clear();
                counts.error(SampleError::MalformedLine);
            }
        }
    }

    /// Parses one line (without its line break) into `out`, counting into
    /// `counts`. `out` is left with no samples when the line is rejected.
    pub fn parse<'a>(&self, line: &'a str, out: &mut Line<'a>, counts: &mut ParseCounts) {
        out.name = Cow::Borrowed("");
        out.labels.clear();
        out.samples.clear();
        if line.is_empty() {
            return;
        }
        let Some((name_part, rest)) = line.split_once(':') else {
            counts.error(SampleError::MalformedLine);
            return;
        };
        if name_part.is_empty() {
            counts.error(SampleError::MalformedLine);
            return;
        }
        out.name = self.name_and_tags(name_part, &mut out.labels, counts);
        let dogstatsd_tags = rest.contains("|#");
        if dogstatsd_tags && !out.labels.is_empty() {
            counts.error(SampleError::MixedTaggingStyles);
            return;
        }
        let mut parts = rest.splitn(3, '|');
        let first = parts.next().unwrap_or("");
        let Some(kind) = parts.next() else {
            counts.error(SampleError::NotEnoughPartsAfterColon);
            return;
        };
        if first.contains(':') {
            if !matches!(kind, "ms" | "h" | "d") {
                counts.error(SampleError::InvalidExtendedAggregateType);
                return;
            }
            // Every value gets the same `|type|…` suffix.
            let suffix = rest.split_once('|').map_or("", |(_, s)| s);
            for value in first.split(':') {
                self.sample(value, Some(suffix), out, counts);
            }
        } else if dogstatsd_tags {
            // DogStatsD tags turn off several samples per line.
            let (value, tail) = split_first(rest);
            self.sample(value, tail, out, counts);
        } else {
            for s in rest.split(':') {
                let (value, tail) = split_first(s);
                self.sample(value, tail, out, counts);
            }
        }
    }

    /// One sample: `value` and the `|`-separated parts after it.
    fn sample<'a>(
        &self,
        value_text: &'a str,
        tail: Option<&'a str>,
        out: &mut Line<'a>,
        counts: &mut ParseCounts,
    ) {
        counts.samples += 1;
        let parts = tail.map_or(0, |t| t.split('|').count());
        if !(1..=7).contains(&parts) {
            counts.error(SampleError::MalformedComponent);
            return;
        }
        let mut rest = tail.unwrap_or("").split('|');
        let stat_type = rest.next().unwrap_or("");
        let relative = value_text.starts_with('+') || value_text.starts_with('-');
        let Ok(mut value) = parse_float(value_text) else {
            counts.error(SampleError::MalformedValue);
            return;
        };
        let mut repeat: u64 = 1;
        let options = rest.clone();
        if options.clone().any(str::is_empty) {
            counts.error(SampleError::MalformedComponent);
            return;
        }
        for option in options {
            match option.as_bytes()[0] {
                b'@' => {
                    let mut rate = match parse_float(&option[1..]) {
                        Ok(r) => r,
                        Err(e) => {
                            counts.error(SampleError::InvalidSampleFactor);
                            e.go_value()
                        }
                    };
                    if rate == 0.0 {
                        rate = 1.0;
                    }
                    match stat_type {
                        "c" => value /= rate,
                        "ms" | "h" | "d" => repeat = go_int_to_count(1.0 / rate),
                        _ => {}
                    }
                }
                b'#' => self.dogstatsd_tags(&option[1..], &mut out.labels, counts),
                b'c' => match option.strip_prefix("c:") {
                    Some(id) if !id.is_empty() => set_label(
                        &mut out.labels,
                        Cow::Borrowed("container_id"),
                        Cow::Borrowed(id),
                    ),
                    _ => {
                        counts.error(SampleError::MalformedContainerId);
                        return;
                    }
                },
                b'T' => {
                    // A source timestamp is validated and ignored.
                    if !is_go_int64(&option[1..]) {
                        counts.error(SampleError::MalformedTimestamp);
                        return;
                    }
                }
                _ => {
                    counts.error(SampleError::InvalidSampleFactor);
                    return;
                }
            }
        }
        if !out.labels.is_empty() {
            counts.tags += 1;
        }
        let (kind, value) = match stat_type {
            "c" => (SampleKind::Counter, value),
            "g" => (SampleKind::Gauge { relative }, value),
            "ms" => (SampleKind::Observer, value / 1000.0),
            "h" | "d" => (SampleKind::Observer, value),
            _ => {
                // Sets (`s`) and unknown types; never repeated.
                counts.error(SampleError::IllegalEvent);
                return;
            }
        };
        let weight = if kind == SampleKind::Observer {
            repeat
        } else {
            1
        };
        if weight == 0 {
            return;
        }
        out.samples.push(Sample {
            kind,
            value,
            weight,
        });
    }

    /// Strips name-embedded tags (SignalFX, then Librato or InfluxDB) into
    /// `labels` and returns the bare name.
    fn name_and_tags<'a>(
        &self,
        name: &'a str,
        labels: &mut Labels<'a>,
        counts: &mut ParseCounts,
    ) -> Cow<'a, str> {
        if self.styles.signalfx {
            match (name.find('['), name.find(']')) {
                (Some(start), Some(end)) if start < end => {
                    name_tags(&name[start + 1..end], labels, counts);
                    return Cow::Owned(format!("{}{}", &name[..start], &name[end + 1..]));
                }
                // statsd_exporter crashes on `]…[`; it is one more bad tag
                // set here, like a lone bracket.
                (Some(_), Some(_)) | (Some(_), None) | (None, Some(_)) => {
                    counts.tag_errors += 1;
                    return Cow::Borrowed(name);
                }
                (None, None) => {}
            }
        }
        for (i, c) in name.char_indices() {
            if (c == '#' && self.styles.librato) || (c == ',' && self.styles.influxdb) {
                name_tags(&name[i + 1..], labels, counts);
                return Cow::Borrowed(&name[..i]);
            }
        }
        Cow::Borrowed(name)
    }

    fn dogstatsd_tags<'a>(&self, tags: &'a str, labels: &mut Labels<'a>, counts: &mut ParseCounts) {
        if !self.styles.dogstatsd {
            return;
        }
        for tag in tag_list(tags) {
            tag_pair(tag.strip_prefix('#').unwrap_or(tag), ':', labels, counts);
        }
    }
}

/// `value|rest` → (`value`, `Some(rest)`); no `|` → (`s`, `None`).
fn split_first(s: &str) -> (&str, Option<&str>) {
    match s.split_once('|') {
        Some((v, t)) => (v, Some(t)),
        None => (s, None),
    }
}

/// The comma-separated tags of a tag section; an empty last piece (a
/// trailing comma) is no tag, other empty pieces are bad tags.
fn tag_list(s: &str) -> impl Iterator<Item = &str> {
    let trailing_empty = s.is_empty() || s.ends_with(',');
    let n = s.split(',').count() - usize::from(trailing_empty);
    s.split(',').take(n)
}

fn name_tags<'a>(tags: &'a str, labels: &mut Labels<'a>, counts: &mut ParseCounts) {
    for tag in tag_list(tags) {
        tag_pair(tag, '=', labels, counts);
    }
}

fn tag_pair<'a>(tag: &'a str, separator: char, labels: &mut Labels<'a>, counts: &mut ParseCounts) {
    match tag.split_once(separator) {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => {
            set_label(labels, escape_metric_name(k), Cow::Borrowed(v));
        }
        _ => counts.tag_errors += 1,
    }
}

/// How many events `int(1/rate)` gives in Go on amd64: the truncated value,
/// where NaN and values beyond `i64` become `i64::MIN`; negative counts and
/// zero mean no event.
fn go_int_to_count(x: f64) -> u64 {
    // 2^63: the first value beyond i64.
    const LIMIT: f64 = 9_223_372_036_854_775_808.0;
    if !(-LIMIT..LIMIT).contains(&x) {
        return 0;
    }
    let n = x.trunc() as i64;
    n.max(0) as u64
}

/// Go's `strconv.ParseInt(s, 10, 64)` succeeds.
fn is_go_int64(s: &str) -> bool {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && s.parse::<i64>().is_ok()
}

#[cfg(test)]
mod tests;
