//! The sidecar's config file (`--config.file`, YAML): every source in one
//! file, validated at start and on each reload, with errors that name the
//! file, the line and the key.
//!
//! ```yaml
//! health:                      # the health probe (see crate::health)
//!   interval: 15s              # default for every target
//!   timeout: 5s
//!   targets:
//!   - url: http://127.0.0.1:8080/health
//!     name: api                # the `target` label
//! relay:                       # the app's own /metrics (see crate::relay)
//!   targets:
//!   - url: http://127.0.0.1:8080/metrics
//!     prefix: myapp_
//!     labels: {source: app}
//! statsd:                      # StatsD mappings: a file, or inline
//!   mapping_config: /etc/oxmon/statsd-mapping.yml
//!   # mapping:                 # statsd_exporter's mapping file format
//!   #   mappings:
//!   #   - match: "model.queue.length"
//!   #     name: model_queue_length
//! limits:                      # the store's cardinality caps
//!   max_series_per_metric: 10000
//!   series_ttl: 0s             # 0: series never expire
//! tap: …                       # the HTTP tap (crate::tap)
//! logs: …                      # log tailing (crate::logs)
//! ```
//!
//! Every section is optional; unknown keys are errors. Relative paths are
//! relative to the sidecar's working directory.
//!
//! ## Flags and the file
//! The flags cover the simple cases, so a one-line command needs no file.
//! When both are given:
//! - a list flag (`--health.url`, `--relay.url`) adds targets to the
//!   file's list (a target name given twice is an error);
//! - a single-value flag given on the command line (`--health.interval`,
//!   `--health.timeout`, `--statsd.mapping-config`,
//!   `--store.max-series-per-metric`, `--store.series-ttl`) wins over the
//!   file's value of the same setting, which wins over the flag's default;
//! - per-target settings in the file (a target's own `interval`) win over
//!   section-wide ones.
//!
//! StatsD listeners (`--statsd.listen-*`) and the web server are set by
//! flags only: they are bound once, at start.
//!
//! ## Reload
//! SIGHUP and `POST /-/reload` re-read the file (the flags stay as given),
//! validate the whole config and only then apply it to every source; an
//! invalid file keeps the running config. See [`crate::reload`].
//!
//! ## Errors
//! `config file FILE line N: KEY: MESSAGE`, for example
//! `config file /etc/oxmon/sidecar.yml line 7: health.targets[1].interval:
//! invalid duration "5x"`. YAML syntax errors give line and column.
//! Header values never appear in a message.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::health::{HealthArgs, HealthConfig, HealthSettings};
use crate::logs::{LogsArgs, LogsConfig};
use crate::relay::{RelayArgs, RelayConfig, RelaySettings};
use crate::statsd::mapper::{ConfigError as MappingError, Mapper};
use crate::store::{Limits, StoreArgs};
use crate::tap::{TapArgs, TapConfig};

/// The config file flag.
#[derive(clap::Args, Debug, Clone)]
pub struct ConfigArgs {
    /// The sidecar's YAML config file (health, relay, statsd, limits, tap,
    /// logs); re-read on SIGHUP and POST /-/reload.
    #[arg(long = "config.file")]
    pub file: Option<PathBuf>,
}

/// A setting of a section that cannot be used: its key within the section
/// (`targets[1].url`) and why. The message never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// The key, relative to the section.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, message: impl fmt::Display) -> Self {
        FieldError {
            key: key.into(),
            message: message.to_string(),
        }
    }

    /// The same error, its key below `parent` (`targets[0]`).
    pub fn under(self, parent: &str) -> Self {
        let key = if self.key.is_empty() {
            parent.to_string()
        } else if self.key.starts_with('[') {
            format!("{parent}{}", self.key)
        } else {
            format!("{parent}.{}", self.key)
        };
        FieldError { key, ..self }
    }
}

/// What a section's validation found wrong: a key of the file, or a flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A key of the section in the file.
    File(FieldError),
    /// A flag's value.
    Flag {
        /// The flag, `--health.url`.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl From<FieldError> for Problem {
    fn from(e: FieldError) -> Self {
        Problem::File(e)
    }
}

/// Why the config cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("reading config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Not YAML, or not of the expected shape (a wrong type, an unknown or
    /// missing key).
    #[error("config file {path} line {line} column {column}: {key}{message}", key = if key.is_empty() { String::new() } else { format!("{key}: ") })]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key, when known.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A value that is not allowed.
    #[error("config file {path}{}: {key}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line, when the key could be found.
        line: Option<usize>,
        /// The key, `health.targets[1].url`.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// A flag's value is not allowed.
    #[error("flag {flag}: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The StatsD mapping file (`--statsd.mapping-config`,
    /// `statsd.mapping_config`) is unusable.
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

/// The file's top level. One field per section; each section type belongs
/// to its source's module.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The health probe.
    pub health: Option<HealthConfig>,
    /// The relay.
    pub relay: Option<RelayConfig>,
    /// StatsD mappings.
    pub statsd: Option<StatsdConfig>,
    /// The store's limits.
    pub limits: Option<LimitsConfig>,
    /// Log tailing.
    pub logs: Option<LogsConfig>,
    /// The HTTP tap.
    pub tap: Option<TapConfig>,
}

/// The `statsd` section: the mapping, from a file or inline.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatsdConfig {
    /// A statsd_exporter mapping file.
    pub mapping_config: Option<PathBuf>,
    /// The mapping itself, in the same format.
    pub mapping: Option<serde_yaml::Value>,
}

/// The `limits` section.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Most series per metric name in the store.
    pub max_series_per_metric: Option<usize>,
    /// Idle time after which a store series is removed (`0s`: never).
    pub series_ttl: Option<String>,
}

/// The flags that feed the config, kept to be merged again on each reload.
#[derive(Debug, Clone)]
pub struct Flags {
    /// `--health.*`.
    pub health: HealthArgs,
    /// `--relay.*`.
    pub relay: RelayArgs,
    /// `--statsd.mapping-config`.
    pub statsd_mapping: Option<PathBuf>,
    /// `--store.*`.
    pub store: StoreArgs,
    /// `--logs.*`.
    pub logs: LogsArgs,
    /// `--tap.*`.
    pub tap: TapArgs,
}

/// A validated config: what every source runs with.
#[derive(Debug)]
pub struct Config {
    /// Health probe targets.
    pub health: HealthSettings,
    /// Relay targets.
    pub relay: RelaySettings,
    /// The StatsD mapping.
    pub statsd: Mapper,
    /// The store's limits.
    pub limits: Limits,
    /// Log tailing, if any file is to be followed.
    pub logs: Option<LogsConfig>,
    /// The HTTP tap, if on.
    pub tap: Option<TapConfig>,
}

impl Config {
    /// Reads `file` (if any), merges `flags` into it and validates it all.
    pub fn load(file: Option<&Path>, flags: &Flags) -> Result<Config, ConfigError> {
        let Some(path) = file else {
            return Self::build(&Source::None, FileConfig::default(), flags);
        };
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string(), flags)
    }

    /// Validates a config file's text; `path` names it in errors.
    pub fn from_yaml(text: &str, path: &str, flags: &Flags) -> Result<Config, ConfigError> {
        let source = Source::File { text, path };
        let parsed: Option<FileConfig> =
            serde_yaml::from_str(text).map_err(|e| syntax_error(path, &e))?;
        Self::build(&source, parsed.unwrap_or_default(), flags)
    }

    fn build(source: &Source<'_>, file: FileConfig, flags: &Flags) -> Result<Config, ConfigError> {
        let health = crate::health::resolve(file.health.as_ref(), &flags.health)
            .map_err(|p| source.problem("health", p))?;
        let relay = crate::relay::resolve(file.relay.as_ref(), &flags.relay)
            .map_err(|p| source.problem("relay", p))?;
        let statsd = load_mapping(
            source,
            file.statsd.as_ref(),
            flags.statsd_mapping.as_deref(),
        )?;
        let limits = resolve_limits(file.limits.as_ref(), &flags.store)
            .map_err(|p| source.problem("limits", p))?;
        // A source is configured in one place: the file's section or its
        // flags, never both (a silent choice between them hides a mistake).
        let logs = match (file.logs, flags.logs.section()) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Flag {
                    flag: "--logs.path",
                    message: "the config file has a logs section; configure the logs in one place"
                        .into(),
                })
            }
            (section, flags) => section.or(flags),
        };
        if let Some(section) = &logs {
            crate::logs::validate(section).map_err(|e| source.problem("logs", logs_problem(e)))?;
        }
        let tap_flags = flags.tap.config().map_err(|e| ConfigError::Flag {
            flag: "--tap.listen-address",
            message: e.to_string(),
        })?;
        let tap = match (file.tap, tap_flags) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::Flag {
                    flag: "--tap.listen-address",
                    message: "the config file has a tap section; configure the tap in one place"
                        .into(),
                })
            }
            (section, flags) => section.or(flags),
        };
        if let Some(section) = &tap {
            crate::tap::Settings::new(section)
                .map_err(|e| source.problem("tap", Problem::File(FieldError::new("", e))))?;
        }
        Ok(Config {
            health,
            relay,
            statsd,
            limits,
            logs,
            tap,
        })
    }
}

/// A log section's error as a problem at its key (`logs.regex` → `regex`).
fn logs_problem(e: crate::logs::Error) -> Problem {
    match e {
        crate::logs::Error::Invalid { what, message } => {
            let key = what.strip_prefix("logs.").unwrap_or(&what).to_string();
            Problem::File(FieldError::new(key, message))
        }
        other => Problem::File(FieldError::new("", other)),
    }
}

/// Where the config came from, to place its errors.
enum Source<'a> {
    /// Flags only.
    None,
    /// A file's text.
    File { text: &'a str, path: &'a str },
}

impl Source<'_> {
    /// A section's problem as a config error with file, line and key.
    fn problem(&self, section: &str, problem: Problem) -> ConfigError {
        match problem {
            Problem::Flag { flag, message } => ConfigError::Flag { flag, message },
            Problem::File(e) => self.invalid(e.under(section)),
        }
    }

    fn invalid(&self, e: FieldError) -> ConfigError {
        match self {
            // Without a file every value comes from flags or defaults.
            Source::None => ConfigError::Invalid {
                path: "(none)".into(),
                line: None,
                key: e.key,
                message: e.message,
            },
            Source::File { text, path } => ConfigError::Invalid {
                path: path.to_string(),
                line: locate(text, &e.key).map(|(line, _)| line),
                key: e.key,
                message: e.message,
            },
        }
    }
}

/// A serde_yaml error as file, line, column and key: the key is the path
/// serde_yaml reports, plus the field for an unknown one.
fn syntax_error(path: &str, e: &serde_yaml::Error) -> ConfigError {
    let (line, column) = e
        .location()
        .map(|l| (l.line(), l.column()))
        .unwrap_or((1, 1));
    let (key, message, _) = split_serde_message(&e.to_string());
    ConfigError::Syntax {
        path: path.to_string(),
        line,
        column,
        key,
        message,
    }
}

/// A raw entry of a section's `targets` list that a repeatable URL flag
/// can also create (`--health.url`, `--relay.url`).
pub trait RawTarget: Sized {
    /// A target with every default, for a flag's URL.
    fn from_url(url: &str) -> Self;
    /// Whether it sets its `name` (else the name comes from the URL).
    fn names_itself(&self) -> bool;
}

/// Resolves a section's `targets`, then one more target per URL of `flag`,
/// each with `resolve`; target names (`name_of`) must be unique. Errors of
/// listed targets are at `targets[i].key`, of flag targets at the flag.
pub fn resolve_targets<R: RawTarget, T>(
    listed: &[R],
    flag: &'static str,
    urls: &[String],
    resolve: impl Fn(&R) -> Result<T, FieldError>,
    name_of: impl Fn(&T) -> &str,
) -> Result<Vec<T>, Problem> {
    let mut targets: Vec<T> = Vec::new();
    let twice = |name: &str| format!("target name {name:?} is used twice");
    for (i, raw) in listed.iter().enumerate() {
        let key = format!("targets[{i}]");
        let target = resolve(raw).map_err(|e| e.under(&key))?;
        if targets.iter().any(|t| name_of(t) == name_of(&target)) {
            let at = if raw.names_itself() { "name" } else { "url" };
            return Err(FieldError::new(format!("{key}.{at}"), twice(name_of(&target))).into());
        }
        targets.push(target);
    }
    for url in urls {
        let flag_error = |message: String| Problem::Flag { flag, message };
        let target = resolve(&R::from_url(url)).map_err(|e| flag_error(e.message))?;
        if targets.iter().any(|t| name_of(t) == name_of(&target)) {
            return Err(flag_error(twice(name_of(&target))));
        }
        targets.push(target);
    }
    Ok(targets)
}

/// Splits serde_yaml's message "health.targets[0]: unknown field `x`, …
/// at line 4 column 5" into the key (with the field of an unknown-field
/// error), the message, and the line.
fn split_serde_message(full: &str) -> (String, String, Option<usize>) {
    let (message, line) = match full.rsplit_once(" at line ") {
        Some((m, at)) => (m, at.split(' ').next().and_then(|n| n.parse().ok())),
        None => (full, None),
    };
    let (mut key, message) = match message.split_once(": ") {
        Some((k, m)) if !k.contains(' ') => (k.to_string(), m.to_string()),
        _ => (String::new(), message.to_string()),
    };
    if let Some(field) = message
        .strip_prefix("unknown field `")
        .and_then(|r| r.split_once('`'))
        .map(|(f, _)| f)
    {
        key = if key.is_empty() {
            field.to_string()
        } else {
            format!("{key}.{field}")
        };
    }
    (key, message, line)
}

/// Parses a duration setting at `key`; `allow_zero` for settings where 0
/// means off.
pub fn duration(key: &str, text: &str, allow_zero: bool) -> Result<Duration, FieldError> {
    let d = oxmon_core::parse_duration(text).map_err(|e| FieldError::new(key, e))?;
    if d.is_zero() && !allow_zero {
        return Err(FieldError::new(key, "must be more than 0"));
    }
    Ok(d)
}

fn resolve_limits(file: Option<&LimitsConfig>, flags: &StoreArgs) -> Result<Limits, Problem> {
    let defaults = Limits::default();
    let max_series_per_metric = match (flags.max_series_per_metric, file) {
        (Some(n), _) => n,
        (
            None,
            Some(LimitsConfig {
                max_series_per_metric: Some(n),
                ..
            }),
        ) => *n,
        (None, _) => defaults.max_series_per_metric,
    };
    if max_series_per_metric == 0 {
        return Err(match flags.max_series_per_metric {
            Some(_) => Problem::Flag {
                flag: "--store.max-series-per-metric",
                message: "must be more than 0".into(),
            },
            None => FieldError::new("max_series_per_metric", "must be more than 0").into(),
        });
    }
    let ttl = match (flags.series_ttl, file.and_then(|f| f.series_ttl.as_deref())) {
        (Some(d), _) => d,
        (None, Some(text)) => duration("series_ttl", text, true)?,
        (None, None) => Duration::ZERO,
    };
    Ok(Limits {
        max_series_per_metric,
        default_ttl: (!ttl.is_zero()).then_some(ttl),
    })
}

/// The StatsD mapping: the flag's file, else the section's file, else the
/// section's inline mapping, else none.
fn load_mapping(
    source: &Source<'_>,
    section: Option<&StatsdConfig>,
    flag: Option<&Path>,
) -> Result<Mapper, ConfigError> {
    if let Some(path) = flag {
        return Ok(Mapper::load(path)?);
    }
    let Some(section) = section else {
        return Ok(Mapper::empty());
    };
    match (&section.mapping_config, &section.mapping) {
        (Some(_), Some(_)) => Err(source.invalid(FieldError::new(
            "statsd.mapping",
            "set mapping_config or mapping, not both",
        ))),
        (Some(path), None) => Ok(Mapper::load(path)?),
        (None, Some(value)) => inline_mapping(source, value),
        (None, None) => Ok(Mapper::empty()),
    }
}

/// Loads the inline `statsd.mapping` with the mapper's own loader. In block
/// style the mapping's lines are handed over where they stand in the file
/// (dedented, earlier lines blank), so the mapper's line numbers are the
/// file's; other styles are re-serialised and errors point at the key.
fn inline_mapping(source: &Source<'_>, value: &serde_yaml::Value) -> Result<Mapper, ConfigError> {
    const KEY: &str = "statsd.mapping";
    let (text, path) = match source {
        Source::File { text, path } => (*text, *path),
        Source::None => ("", "(none)"),
    };
    let located = locate(text, KEY);
    let key_line = located.map(|(line, _)| line);
    let block = located.and_then(|(line, column)| block_at(text, line, column));
    let exact_lines = block.is_some();
    let mapping_text = match block {
        Some(b) => b,
        None => {
            serde_yaml::to_string(value).map_err(|e| source.invalid(FieldError::new(KEY, e)))?
        }
    };
    Mapper::from_yaml(&mapping_text, path).map_err(|e| match e {
        MappingError::Invalid {
            line, key, message, ..
        } => ConfigError::Invalid {
            path: path.to_string(),
            line: if exact_lines { line } else { key_line },
            key: format!("{KEY}.{key}"),
            message,
        },
        MappingError::Syntax { message, .. } => {
            let (key, message, line) = split_serde_message(&message);
            ConfigError::Invalid {
                path: path.to_string(),
                line: if exact_lines {
                    line.or(key_line)
                } else {
                    key_line
                },
                key: if key.is_empty() {
                    KEY.to_string()
                } else {
                    format!("{KEY}.{key}")
                },
                message,
            }
        }
        other => ConfigError::Mapping(other),
    })
}

/// The block-style value of the key at 1-based `line`/`column`: the lines
/// after it indented deeper, dedented, preceded by `line` blank lines so
/// each keeps its line number. `None` when the value is on the key's line
/// (flow style).
fn block_at(text: &str, line: usize, column: usize) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let key_line = lines.get(line - 1)?;
    let after_key = key_line.get(column - 1..)?;
    let rest = after_key.split_once(':')?.1;
    let rest = rest.split(" #").next().unwrap_or("").trim();
    if !rest.is_empty() && !rest.starts_with('#') {
        return None;
    }
    let key_indent = column - 1;
    // YAML indents with spaces; counting only those keeps `depth` a char
    // boundary of every line.
    let indent = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let blank = |l: &str| {
        let t = l.trim();
        t.is_empty() || t.starts_with('#')
    };
    let body: Vec<&str> = lines[line..]
        .iter()
        .take_while(|l| blank(l) || indent(l) > key_indent)
        .copied()
        .collect();
    let depth = body.iter().filter(|l| !blank(l)).map(|l| indent(l)).min()?;
    let mut out = "\n".repeat(line);
    for l in body {
        out.push_str(if blank(l) { "" } else { &l[depth..] });
        out.push('\n');
    }
    Some(out)
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Splits `health.targets[1].headers.X-Key` into its steps.
fn steps(key: &str) -> Vec<Step<'_>> {
    let mut out = Vec::new();
    for part in key.split('.') {
        let (name, mut rest) = match part.find('[') {
            Some(i) => part.split_at(i),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Step::Key(name));
        }
        while let Some(r) = rest.strip_prefix('[') {
            let Some((n, tail)) = r.split_once(']') else {
                break;
            };
            match n.parse() {
                Ok(i) => out.push(Step::Index(i)),
                Err(_) => out.push(Step::Key(n)),
            }
            rest = tail;
        }
    }
    out
}

/// The 1-based line and column of `key` (`health.targets[1].url`) in YAML
/// `text`: of the key itself for a mapping entry, of the item for a list
/// index. It walks the document with serde_yaml's own parser and stops with
/// an error at the wanted node, whose position serde_yaml reports, so any
/// YAML style works. `None` when the key is not there.
fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let path = steps(key);
    if path.is_empty() {
        return None;
    }
    match Walk(&path).deserialize(serde_yaml::Deserializer::from_str(text)) {
        Err(e) if e.to_string().contains(FOUND) => e.location().map(|l| (l.line(), l.column())),
        _ => None,
    }
}

/// The marker error a [`Walk`] raises at the wanted node.
const FOUND: &str = "\u{0}found";

/// Follows the remaining steps down the document.
struct Walk<'a, 'k>(&'a [Step<'k>]);

impl<'de> DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let wanted = match first {
            Step::Key(k) => Some(*k),
            Step::Index(_) => None,
        };
        while let Some(hit) = map.next_key_seed(KeyMatch {
            wanted,
            last: rest.is_empty(),
        })? {
            if hit {
                map.next_value_seed(Walk(rest))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Some((first, rest)) = self.0.split_first() else {
            return Err(de::Error::custom(FOUND));
        };
        let wanted = match first {
            Step::Index(i) => Some(*i),
            Step::Key(_) => None,
        };
        let mut i = 0;
        loop {
            let more = if Some(i) == wanted {
                seq.next_element_seed(Walk(rest))?.is_some()
            } else {
                seq.next_element::<IgnoredAny>()?.is_some()
            };
            if !more {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.scalar()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.scalar()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar()
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Ok(())
    }
}

impl Walk<'_, '_> {
    /// A scalar is the end of the walk: found when no step is left.
    fn scalar<E: de::Error>(&self) -> Result<(), E> {
        if self.0.is_empty() {
            Err(E::custom(FOUND))
        } else {
            Ok(())
        }
    }
}

/// Reads a mapping key: whether it is the wanted one; the last step stops
/// at the key itself, so the position is the key's line.
struct KeyMatch<'k> {
    wanted: Option<&'k str>,
    last: bool,
}

impl<'de> DeserializeSeed<'de> for KeyMatch<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeyMatch<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a mapping key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        match self.wanted {
            Some(w) if w == v && self.last => Err(E::custom(FOUND)),
            Some(w) => Ok(w == v),
            None => Ok(false),
        }
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<bool, E> {
        self.visit_str(if v { "true" } else { "false" })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<bool, E> {
        self.visit_str(&v.to_string())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E: de::Error>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# comment
health:
  interval: 5x
  tls:
    ca: x
  targets:
  - url: a
    name: b
  -   url: c
      headers: {A: b, C: d}
  - {url: e, name: f}
relay: {x: 1}
'quoted': [1, [2, 3]]
";

    #[test]
    fn locates_keys_in_any_style() {
        let at = |k| locate(TEXT, k);
        assert_eq!(at("health"), Some((2, 1)));
        assert_eq!(at("health.interval"), Some((3, 3)));
        assert_eq!(at("health.tls"), Some((4, 3)));
        assert_eq!(at("health.tls.ca"), Some((5, 5)));
        assert_eq!(at("health.targets[1]"), Some((9, 7)));
        assert_eq!(at("health.targets[1].headers.C"), Some((10, 23)));
        assert_eq!(at("health.targets[2].name"), Some((11, 14)));
        assert_eq!(at("relay.x"), Some((12, 9)));
        assert_eq!(at("quoted[1][0]").map(|p| p.0), Some(13));
        assert_eq!(at("health.targets[3]"), None);
        assert_eq!(at("health.nope"), None);
        assert_eq!(at("relay.x.y"), None);
        assert_eq!(at(""), None);
        assert_eq!(locate("x: [\na: 1\n", "a"), None);
    }

    #[test]
    fn key_paths_split_into_steps() {
        assert_eq!(
            steps("a.b[2][0].c"),
            vec![
                Step::Key("a"),
                Step::Key("b"),
                Step::Index(2),
                Step::Index(0),
                Step::Key("c")
            ]
        );
        assert_eq!(steps("[x]"), vec![Step::Key("x")]);
        assert_eq!(steps("a[1"), vec![Step::Key("a")]);
    }

    #[test]
    fn block_values_keep_their_line_numbers() {
        let text = "statsd:\n  mapping:   # inline\n    mappings:\n\n    # c\n    - match: a.*\n      name: x\nlimits: {}\n";
        let block = block_at(text, 2, 3).unwrap();
        assert_eq!(
            block, "\n\nmappings:\n\n\n- match: a.*\n  name: x\n",
            "{block:?}"
        );
        assert_eq!(block_at("a: {b: 1}\n", 1, 1), None);
        assert_eq!(block_at("a:\nb: 1\n", 1, 1), None);
    }

    fn flags() -> Flags {
        Flags {
            health: HealthArgs::default(),
            relay: RelayArgs::default(),
            statsd_mapping: None,
            store: StoreArgs::default(),
            logs: LogsArgs::default(),
            tap: TapArgs::default(),
        }
    }

    fn error(text: &str) -> String {
        Config::from_yaml(text, "sidecar.yml", &flags())
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_source_is_configured_in_the_file_or_by_flags_not_both() {
        let mut both = flags();
        both.logs.paths = vec!["/var/log/app/*.log".into()];
        let err = Config::from_yaml("logs:\n  paths: [/tmp/x.log]\n", "s.yml", &both)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--logs.path") && err.contains("one place"),
            "{err}"
        );
        // Either place alone is fine.
        assert!(Config::from_yaml("logs:\n  paths: [/tmp/x.log]\n", "s.yml", &flags()).is_ok());
        assert!(Config::from_yaml("", "s.yml", &both)
            .unwrap()
            .logs
            .is_some());

        let mut tap = flags();
        tap.tap.listen_address = "127.0.0.1:0".into();
        tap.tap.upstream = "http://127.0.0.1:1".into();
        let err = Config::from_yaml(
            "tap:\n  listen: 127.0.0.1:0\n  upstream: http://127.0.0.1:1\n",
            "s.yml",
            &tap,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--tap.listen-address") && err.contains("one place"),
            "{err}"
        );
    }

    #[test]
    fn each_kind_of_error_names_file_line_and_key() {
        // YAML syntax.
        assert_eq!(
            error("health:\n  targets: [\n"),
            "config file sidecar.yml line 3 column 1: did not find expected node content"
        );
        // An unknown key.
        assert_eq!(
            error("health:\n  targets:\n  - url: http://a/\n    urll: x\n"),
            "config file sidecar.yml line 4 column 5: health.targets[0].urll: unknown field `urll`, expected one of `url`, `name`, `interval`, `timeout`, `headers`, `tls`, `components_path`, `status_path`, `up_values`, `parse_body`, `max_body_bytes`"
        );
        assert!(error("tap2: {}\n")
            .starts_with("config file sidecar.yml line 1 column 1: tap2: unknown field `tap2`"));
        // A value of the wrong type.
        assert_eq!(
            error("limits:\n  max_series_per_metric: many\n"),
            "config file sidecar.yml line 2 column 26: limits.max_series_per_metric: invalid type: string \"many\", expected usize"
        );
        // A bad duration, URL, header, path.
        assert_eq!(
            error("health:\n  targets:\n  - url: http://a/\n\n    interval: 5x\n"),
            "config file sidecar.yml line 5: health.targets[0].interval: unknown unit \"x\" in duration \"5x\""
        );
        assert_eq!(
            error("relay:\n  targets:\n  - {name: app, url: 'ftp://a/'}\n"),
            "config file sidecar.yml line 3: relay.targets[0].url: the URL must start with http:// or https://"
        );
        assert_eq!(
            error("limits: {series_ttl: -1s}\n"),
            "config file sidecar.yml line 1: limits.series_ttl: invalid number in duration \"-1s\""
        );
        assert_eq!(
            error("limits:\n  max_series_per_metric: 0\n"),
            "config file sidecar.yml line 2: limits.max_series_per_metric: must be more than 0"
        );
        assert_eq!(
            error("health:\n  targets:\n  - url: http://a/\n    components_path: a..b\n"),
            "config file sidecar.yml line 4: health.targets[0].components_path: \"a..b\" is not a dotted path (like checks or details.components)"
        );
        // A header value is never echoed.
        let e = error(
            "health:\n  targets:\n  - url: http://a/\n    headers:\n      X-Key: \"hunter2\\n\"\n",
        );
        assert_eq!(
            e,
            "config file sidecar.yml line 5: health.targets[0].headers.X-Key: invalid header value (control characters?)"
        );
        // Duplicate names.
        assert_eq!(
            error("relay:\n  targets:\n  - url: http://a/m\n  - url: http://a/m\n"),
            "config file sidecar.yml line 4: relay.targets[1].url: target name \"a:80/m\" is used twice"
        );
        // The statsd mapping: both forms, or a bad regex inline (the
        // mapper's own message, at the file's line).
        assert_eq!(
            error("statsd:\n  mapping_config: m.yml\n  mapping: {}\n"),
            "config file sidecar.yml line 3: statsd.mapping: set mapping_config or mapping, not both"
        );
        let e = error("statsd:\n  mapping:\n    mappings:\n    - match: ok.*\n      name: ok\n    - match: 'a(b'\n      match_type: regex\n      name: x\n");
        assert!(
            e.starts_with("config file sidecar.yml line 6: statsd.mapping.mappings[1].match: "),
            "{e}"
        );
        let e =
            error("statsd:\n  mapping: {mappings: [{match: 'a(b', match_type: regex, name: x}]}\n");
        assert!(
            e.starts_with("config file sidecar.yml line 2: statsd.mapping.mappings[0].match: "),
            "{e}"
        );
        assert_eq!(
            error("statsd:\n  mapping:\n    mappings:\n    - match: a.b\n      name: x\n      buckets: oops\n"),
            "config file sidecar.yml line 6: statsd.mapping.mappings[0].buckets: invalid type: string \"oops\", expected a sequence"
        );
        assert_eq!(
            error("statsd:\n  mapping: {mappings: [{match: a.b, name: x, buckets: oops}]}\n"),
            "config file sidecar.yml line 2: statsd.mapping.mappings[0].buckets: invalid type: string \"oops\", expected a sequence"
        );
        let e = error("statsd: {mapping_config: /nonexistent/m.yml}\n");
        assert!(
            e.starts_with("reading mapping config /nonexistent/m.yml: "),
            "{e}"
        );
    }

    #[test]
    fn flags_without_a_file_and_over_a_file() {
        let mut f = flags();
        f.health.urls = vec!["nope".into()];
        let e = Config::load(None, &f).unwrap_err().to_string();
        assert_eq!(
            e,
            "flag --health.url: the URL must start with http:// or https://"
        );

        let mut f = flags();
        f.store.max_series_per_metric = Some(7);
        f.relay.urls = vec!["http://127.0.0.1:9/metrics".into()];
        let c = Config::from_yaml(
            "limits: {max_series_per_metric: 3, series_ttl: 1m}\nrelay:\n  targets: [{url: 'http://a/m'}]\n",
            "sidecar.yml",
            &f,
        )
        .unwrap();
        assert_eq!(c.limits.max_series_per_metric, 7);
        assert_eq!(c.limits.default_ttl, Some(Duration::from_secs(60)));
        let names: Vec<_> = c.relay.targets.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a:80/m", "127.0.0.1:9/metrics"]);

        // An empty file is every default.
        let c = Config::from_yaml("# nothing yet\n", "sidecar.yml", &flags()).unwrap();
        assert!(c.health.targets.is_empty() && c.relay.targets.is_empty() && c.statsd.is_empty());
        assert_eq!(c.limits.max_series_per_metric, 10_000);
        assert_eq!(c.limits.default_ttl, None);
        let e = Config::load(Some(Path::new("/nonexistent/sidecar.yml")), &flags()).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("reading config file /nonexistent/sidecar.yml: "));
    }

    #[test]
    fn inline_statsd_mapping_loads_with_the_mapper() {
        let c = Config::from_yaml(
            "statsd:\n  mapping:\n    defaults: {observer_type: histogram}\n    mappings:\n    - match: model.queue.length\n      name: model_queue_length\n",
            "sidecar.yml",
            &flags(),
        )
        .unwrap();
        assert_eq!(c.statsd.len(), 1);
    }

    #[test]
    fn field_errors_nest() {
        let e = FieldError::new("url", "bad")
            .under("targets[0]")
            .under("health");
        assert_eq!(e.key, "health.targets[0].url");
        assert_eq!(FieldError::new("[2]", "x").under("a").key, "a[2]");
        assert_eq!(FieldError::new("", "x").under("a").key, "a");
    }
}
