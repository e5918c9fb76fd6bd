//! vmstat — `/proc/vmstat`.
//!
//! Metrics: `node_vmstat_<field>` (untyped, as node_exporter) for every
//! field matching `--collector.vmstat.fields` (default
//! `^(oom_kill|pgpg|pswp|pg.*fault).*`). On by default.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};
use regex::Regex;

use super::{compile_regex, intern_pair, read_optional};
use crate::collectors::Ctx;
use crate::read::FileCache;

/// Parses `/proc/vmstat` (`name value` lines) into pairs; malformed lines
/// are skipped.
pub fn parse_vmstat(text: &str) -> Vec<(&str, f64)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_ascii_whitespace();
            let name = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((name, value))
        })
        .collect()
}

struct Vmstat {
    path: PathBuf,
    cache: FileCache,
    fields: Regex,
    /// Whether each field name seen so far matches `fields` (the regex runs
    /// once per name, not once per scrape).
    selected: Mutex<HashMap<String, bool>>,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Vmstat {
        path: ctx.paths.proc("vmstat"),
        cache: FileCache::new(),
        fields: compile_regex("collector.vmstat.fields", &ctx.flags.a.vmstat_fields)?,
        selected: Mutex::default(),
    }))
}

impl SyncCollector for Vmstat {
    fn name(&self) -> &'static str {
        "vmstat"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&self.cache, &self.path, &mut buf, "vmstat")? {
            return Ok(());
        }
        let mut selected = self.selected.lock().unwrap_or_else(|e| e.into_inner());
        for (field, value) in parse_vmstat(&buf) {
            let wanted = match selected.get(field) {
                Some(w) => *w,
                None => {
                    let w = self.fields.is_match(field);
                    selected.insert(field.to_string(), w);
                    w
                }
            };
            if !wanted {
                continue;
            }
            let (name, help) = intern_pair("vmstat", field, |f| {
                (
                    format!("node_vmstat_{f}"),
                    format!("/proc/vmstat information field {f}."),
                )
            });
            let mut fam = MetricFamily::untyped(name, help);
            fam.add(&[], value);
            out.push(fam);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs() {
        assert_eq!(
            parse_vmstat("nr_free_pages 1234\npgfault 99\nbad\noom_kill x\n"),
            vec![("nr_free_pages", 1234.0), ("pgfault", 99.0)]
        );
    }
}
