//! cpu_vulnerabilities — `devices/system/cpu/vulnerabilities/*` in sysfs.
//!
//! Metric: `node_cpu_vulnerabilities_info{codename,state,mitigation}` = 1,
//! `state` one of `not affected`, `vulnerable`, `mitigation` (or the raw
//! text, lower-cased, for anything else), `mitigation` the text after the
//! state. Off by default. No flags.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::list_dir;
use crate::file_cache::{is_missing, FileCache};

/// Splits a vulnerability file's text into `(state, mitigation)`.
pub fn parse_vulnerability(text: &str) -> (String, String) {
    let text = text.trim();
    for state in ["Not affected", "Vulnerable", "Mitigation"] {
        if text
            .get(..state.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(state))
        {
            let rest = text[state.len()..].trim_start_matches(':').trim();
            return (state.to_ascii_lowercase(), rest.to_string());
        }
    }
    (text.to_ascii_lowercase(), String::new())
}

struct Vulnerabilities {
    dir: PathBuf,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Vulnerabilities {
        dir: ctx.paths.sys("devices/system/cpu/vulnerabilities"),
        cache: FileCache::new(),
    }))
}

impl SyncCollector for Vulnerabilities {
    fn name(&self) -> &'static str {
        "cpu_vulnerabilities"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let names = match list_dir(&self.dir) {
            Ok(n) => n,
            Err(e) if is_missing(&e) => {
                tracing::debug!(path = %self.dir.display(), "no CPU vulnerability information");
                return Ok(());
            }
            Err(e) => return Err(format!("listing {}: {e}", self.dir.display()).into()),
        };
        let mut f = MetricFamily::gauge(
            "node_cpu_vulnerabilities_info",
            "Details of each CPU vulnerability reported by sysfs. The value of the series is an int encoded state of the vulnerability. The same state is stored as a string in the label",
        );
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        for name in names {
            if scope.read_into(&self.dir.join(&name), &mut buf).is_err() {
                continue;
            }
            let (state, mitigation) = parse_vulnerability(&buf);
            f.add(
                &[
                    ("codename", &name),
                    ("state", &state),
                    ("mitigation", &mitigation),
                ],
                1.0,
            );
        }
        out.push(f);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states() {
        assert_eq!(
            parse_vulnerability("Not affected\n"),
            ("not affected".into(), "".into())
        );
        assert_eq!(
            parse_vulnerability("Mitigation: PTI\n"),
            ("mitigation".into(), "PTI".into())
        );
        assert_eq!(
            parse_vulnerability("Vulnerable: Clear CPU buffers attempted, no microcode"),
            (
                "vulnerable".into(),
                "Clear CPU buffers attempted, no microcode".into()
            )
        );
        assert_eq!(
            parse_vulnerability("Unknown"),
            ("unknown".into(), "".into())
        );
    }
}
