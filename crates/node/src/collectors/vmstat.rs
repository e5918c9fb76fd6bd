//! vmstat — `/proc/vmstat`.
//!
//! Metrics: `node_vmstat_<field>` (untyped, as node_exporter) for every
//! field matching `--collector.vmstat.fields` (default
//! `^(oom_kill|pgpg|pswp|pg.*fault).*`), the field name made a valid metric
//! name (any other character becomes `_`). A line that is not a name and a
//! number is left out and fails the collector after the rest is exported;
//! node_exporter fails without exporting. On by default.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::parse_f64;
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use crate::collectors::Ctx;
use crate::device_filter::compile_regex;
use crate::field_names::{intern_pair, name_part, names_at, FieldNames};
use crate::file_cache::{lines, read_optional, FileCache};
use crate::malformed::Malformed;

/// node_exporter's default for `--collector.vmstat.fields`.
pub const DEFAULT_FIELDS: &str = "^(oom_kill|pgpg|pswp|pg.*fault).*";

/// Flags of the vmstat collector (node_exporter's names and defaults).
#[derive(clap::Args, Debug, Clone)]
#[group(skip)]
pub struct Flags {
    /// Regex of /proc/vmstat fields to export.
    #[arg(id = "collector.vmstat.fields", long = "collector.vmstat.fields", value_name = "REGEX", default_value = DEFAULT_FIELDS)]
    pub fields: String,
}

/// Parses `/proc/vmstat` (`name value` lines) into pairs, and what did
/// not parse.
pub fn parse_vmstat(text: &str) -> (Vec<(&str, f64)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in lines(text).enumerate() {
        let mut parts = line.split_ascii_whitespace();
        let Some(name) = parts.next() else { continue };
        match (parts.next().map(parse_f64), parts.next()) {
            (Some(Ok(v)), None) => out.push((name, v)),
            _ => bad.line(i + 1, line, "expected a name and a number"),
        }
    }
    (out, bad)
}

struct Vmstat {
    path: PathBuf,
    cache: FileCache,
    fields: Regex,
    /// Names of the exported fields by position (the regex runs once per
    /// field name, not once per scrape).
    names: FieldNames,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Vmstat {
        path: ctx.paths.proc("vmstat"),
        cache: FileCache::new(),
        fields: compile_regex("collector.vmstat.fields", &ctx.options.vmstat.fields)?,
        names: FieldNames::default(),
    }))
}

impl SyncCollector for Vmstat {
    fn name(&self) -> &'static str {
        "vmstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "vmstat")? {
            return Ok(());
        }
        let mut names = self.names.lock();
        let (fields, bad) = parse_vmstat(&buf);
        for (i, (field, value)) in fields.into_iter().enumerate() {
            let named = names_at(&mut names, i, field, |f| {
                self.fields.is_match(f).then(|| {
                    intern_pair("vmstat", &name_part(f), |f| {
                        (
                            format!("node_vmstat_{f}"),
                            format!("/proc/vmstat information field {f}."),
                        )
                    })
                })
            });
            if let Some((name, help)) = named {
                let mut fam = MetricFamily::untyped(name, help);
                fam.add(&[], value);
                out.push(fam);
            }
        }
        bad.into_result(&self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        let (pairs, bad) = parse_vmstat("nr_free_pages 1234\npgfault 99\nbad\noom_kill x\n\n");
        assert_eq!(pairs, vec![("nr_free_pages", 1234.0), ("pgfault", 99.0)]);
        assert_eq!(bad.count(), 2, "{bad}");
    }
}
