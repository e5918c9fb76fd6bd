//! os — operating system identity from `<rootfs>/etc/os-release`, falling
//! back to `<rootfs>/usr/lib/os-release`.
//!
//! Metrics: `node_os_info{build_id,id,id_like,image_id,image_version,name,
//! pretty_name,variant,variant_id,version,version_codename,version_id}` = 1,
//! `node_os_version{id,id_like,name}` = the leading `major.minor` of
//! `VERSION_ID` (omitted when it has none), and
//! `node_os_support_end_timestamp_seconds` from `SUPPORT_END`. On by
//! default. No flags.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};

/// Parses the os-release format (shell-like `KEY=value` assignments with
/// optional single or double quotes and backslash escapes inside double
/// quotes). Lines that are not assignments are skipped.
pub fn parse_os_release(text: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            continue;
        }
        out.insert(key.to_string(), unquote(raw.trim()));
    }
    out
}

fn unquote(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('"') | None, '\\') => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            (None, '#') if out.is_empty() => break,
            (_, c) => out.push(c),
        }
    }
    out
}

/// The leading `major[.minor]` of a version id as a number (`"22.04.3"` →
/// 22.04, `"12"` → 12), or `None`.
pub fn major_minor(version_id: &str) -> Option<f64> {
    let b = version_id.as_bytes();
    let mut end = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if end == 0 {
        return None;
    }
    if b.get(end) == Some(&b'.') {
        end += 1;
        end += b[end..].iter().take_while(|c| c.is_ascii_digit()).count();
    }
    version_id[..end].trim_end_matches('.').parse().ok()
}

/// Seconds since the epoch of a `YYYY-MM-DD` date (midnight UTC).
pub fn parse_date(s: &str) -> Option<f64> {
    let mut it = s.trim().splitn(3, '-');
    let y: i64 = it.next()?.parse().ok()?;
    let m: i64 = it.next()?.parse().ok()?;
    let d: i64 = it.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Days from civil (proleptic Gregorian), after H. Hinnant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some((days * 86_400) as f64)
}

struct Os {
    files: [PathBuf; 2],
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Os {
        files: [
            ctx.paths.root("/etc/os-release"),
            ctx.paths.root("/usr/lib/os-release"),
        ],
        cache: FileCache::new(),
    }))
}

impl SyncCollector for Os {
    fn name(&self) -> &'static str {
        "os"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        let mut found = false;
        for path in &self.files {
            if read_optional(&mut scope, path, &mut buf, "os")? {
                found = true;
                break;
            }
        }
        if !found {
            return Ok(());
        }
        let env = parse_os_release(&buf);
        let get = |k: &str| env.get(k).map(String::as_str).unwrap_or("");
        let mut info = MetricFamily::gauge(
            "node_os_info",
            "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        );
        info.add(
            &[
                ("build_id", get("BUILD_ID")),
                ("id", get("ID")),
                ("id_like", get("ID_LIKE")),
                ("image_id", get("IMAGE_ID")),
                ("image_version", get("IMAGE_VERSION")),
                ("name", get("NAME")),
                ("pretty_name", get("PRETTY_NAME")),
                ("variant", get("VARIANT")),
                ("variant_id", get("VARIANT_ID")),
                ("version", get("VERSION")),
                ("version_codename", get("VERSION_CODENAME")),
                ("version_id", get("VERSION_ID")),
            ],
            1.0,
        );
        out.push(info);
        if let Some(v) = major_minor(get("VERSION_ID")).filter(|v| *v > 0.0) {
            let mut f = MetricFamily::gauge(
                "node_os_version",
                "Metric containing the major.minor part of the OS version.",
            );
            f.add(
                &[
                    ("id", get("ID")),
                    ("id_like", get("ID_LIKE")),
                    ("name", get("NAME")),
                ],
                v,
            );
            out.push(f);
        }
        if let Some(ts) = parse_date(get("SUPPORT_END")) {
            out.push(oxmon_core::gauge(
                "node_os_support_end_timestamp_seconds",
                "Metric containing the end-of-life date timestamp of the OS.",
                ts,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing;

    /// An upgrade replaces os-release by renaming a new file over it; the
    /// next scrape shows the new version (a kept descriptor would show the
    /// old file forever).
    #[test]
    fn os_release_replaced_by_rename_shows_on_the_next_scrape() {
        let root = tempfile::tempdir().unwrap();
        testing::copy_fixture(root.path(), "rootfs/etc/os-release");
        let paths = testing::paths_under(&root.path().join("rootfs"));
        let os = testing::build("os", &paths);
        let version =
            |out: &[MetricFamily]| testing::first_label(out, "node_os_info", "version_id");
        assert_eq!(version(&testing::scrape(&*os)), "3.14.15");
        let release = root.path().join("rootfs/etc/os-release");
        let upgraded = std::fs::read_to_string(&release)
            .unwrap()
            .replace("VERSION_ID=\"3.14.15\"", "VERSION_ID=\"3.15.0\"");
        testing::replace_by_rename(&release, &upgraded);
        assert_eq!(version(&testing::scrape(&*os)), "3.15.0");
    }

    #[test]
    fn os_release() {
        let text = "NAME=\"Example Linux\"\nVERSION_ID='9.3'\nID=example\nPRETTY_NAME=\"Example \\\"Nine\\\"\"\n# comment\nbogus line\nSUPPORT_END=2032-05-31\n";
        let env = parse_os_release(text);
        assert_eq!(env["NAME"], "Example Linux");
        assert_eq!(env["VERSION_ID"], "9.3");
        assert_eq!(env["ID"], "example");
        assert_eq!(env["PRETTY_NAME"], "Example \"Nine\"");
        assert_eq!(env.len(), 5);
    }

    #[test]
    fn versions() {
        assert_eq!(major_minor("22.04"), Some(22.04));
        assert_eq!(major_minor("7.9.2009"), Some(7.9));
        assert_eq!(major_minor("12"), Some(12.0));
        assert_eq!(major_minor("rolling"), None);
        assert_eq!(major_minor(""), None);
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0.0));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800.0));
        assert_eq!(parse_date("2024-13-01"), None);
    }
}
