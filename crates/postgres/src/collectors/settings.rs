//! `settings` collector (on by default): every bool, integer and real
//! setting from `pg_settings` as `pg_settings_<name>`, with time units
//! converted to seconds (`_seconds`) and size units to bytes (`_bytes`),
//! like postgres_exporter. A value of -1 (disabled) is kept as -1.
//!
//! Settings only change on a configuration reload, a restart or a
//! promotion, so the result is cached while `pg_conf_load_time()` and
//! `pg_is_in_recovery()` are unchanged (at most `--collector.settings.max-age`),
//! and the costly `pg_settings` view is read only then. Values the exporter's
//! own session overrides (its statement and lock timeouts) are reported as
//! the server's defaults (`reset_val`), not the exporter's.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxmon_core::collector::{BoxFuture, CollectResult};
use oxmon_core::sync::LockExt;
use oxmon_core::{MetricFamily, ScrapeContext};

use super::instance::{self, CONF_LOAD_TIME, IN_RECOVERY};
use super::{Monitored, TargetCollector};
use crate::conn::text_col;
use crate::target::Target;

const QUERY: &str = "SELECT name::text, \
     (CASE WHEN source = 'session' THEN reset_val ELSE setting END)::text, \
     COALESCE(unit, '')::text, short_desc::text, vartype::text \
     FROM pg_settings WHERE vartype IN ('bool', 'integer', 'real')";

/// The collector's options.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Longest time a cached result is reused.
    pub max_age: Duration,
}

/// The last result of one target, valid while the configuration load time
/// and recovery state are unchanged.
#[derive(Default)]
pub struct Cache(Mutex<Option<Cached>>);

struct Cached {
    key: Key,
    at: Instant,
    values: Arc<[Setting]>,
}

/// `(pg_conf_load_time epoch, in recovery)`.
type Key = (Option<f64>, Option<f64>);

/// `(family name, help, value)` of a numeric setting.
type Setting = (&'static str, &'static str, f64);

impl Cache {
    /// The settings read under `key` less than `max_age` ago.
    fn fresh(&self, key: Key, max_age: Duration) -> Option<Arc<[Setting]>> {
        let cached = self.0.lock_unpoisoned();
        let c = cached.as_ref()?;
        (c.key == key && c.at.elapsed() < max_age).then(|| c.values.clone())
    }

    fn store(&self, key: Key, values: Arc<[Setting]>) {
        *self.0.lock_unpoisoned() = Some(Cached {
            key,
            at: Instant::now(),
            values,
        });
    }
}

impl TargetCollector for Settings {
    type State = Cache;

    /// Collects the settings, from the cache when it is still valid.
    fn collect<'a>(
        &'a self,
        m: &'a Monitored,
        cache: &'a Cache,
        ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let t = &m.target;
            let row = instance::row(m, ctx).await?;
            let key = (
                row.first_number(CONF_LOAD_TIME),
                row.first_number(IN_RECOVERY),
            );
            if let Some(values) = cache.fresh(key, self.max_age) {
                emit(&values, &t.server, out);
                return Ok(());
            }
            let live = t.main(ctx).await?;
            let rows = live.query(QUERY, Target::query_deadline(ctx)).await?;
            let mut values = Vec::with_capacity(rows.len());
            for row in &rows {
                let (name, setting, unit, desc, vartype) = (
                    text_col(row, 0),
                    text_col(row, 1),
                    text_col(row, 2),
                    text_col(row, 3),
                    text_col(row, 4),
                );
                match convert(&name, &setting, &unit, &desc, &vartype) {
                    Ok(Some((fname, help, value))) => {
                        values.push((intern(fname), intern(help), value))
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(setting = %name, err = %e, "skipping setting"),
                }
            }
            let values: Arc<[Setting]> = values.into();
            emit(&values, &t.server, out);
            cache.store(key, values);
            Ok(())
        })
    }
}

fn emit(values: &[Setting], server: &str, out: &mut Vec<MetricFamily>) {
    out.reserve(values.len());
    for (name, help, value) in values {
        let mut fam = MetricFamily::gauge(*name, *help);
        fam.add(&[("server", server)], *value);
        out.push(fam);
    }
}

/// Family names and help texts of settings are few and fixed per server
/// version: they are kept once for the life of the process, so a cached
/// scrape copies no strings.
fn intern(s: String) -> &'static str {
    static SEEN: std::sync::Mutex<Option<std::collections::HashSet<&'static str>>> =
        std::sync::Mutex::new(None);
    let mut seen = SEEN.lock_unpoisoned();
    let set = seen.get_or_insert_with(Default::default);
    if let Some(existing) = set.get(s.as_str()) {
        return existing;
    }
    let leaked: &'static str = Box::leak(s.into_boxed_str());
    set.insert(leaked);
    leaked
}

/// Turns one pg_settings row into `(family name, help, value)`; `None` for
/// vartypes that are not numeric; an error for a value or unit that cannot
/// be read (that setting is skipped, never the whole scrape).
pub fn convert(
    name: &str,
    setting: &str,
    unit: &str,
    short_desc: &str,
    vartype: &str,
) -> Result<Option<(String, String, f64)>, String> {
    let base = format!("pg_settings_{}", sanitize(name));
    match vartype {
        "bool" => Ok(Some((
            base,
            short_desc.to_owned(),
            if setting == "on" { 1.0 } else { 0.0 },
        ))),
        "integer" | "real" => {
            let mut value: f64 = setting
                .trim()
                .parse()
                .map_err(|_| format!("value {setting:?} is not a number"))?;
            let (suffix, factor) = match unit {
                "" => return Ok(Some((base, short_desc.to_owned(), value))),
                "ms" => ("seconds", 0.001),
                "s" => ("seconds", 1.0),
                "min" => ("seconds", 60.0),
                "h" => ("seconds", 3600.0),
                "d" => ("seconds", 86400.0),
                "us" => ("seconds", 0.000001),
                "B" => ("bytes", 1.0),
                "kB" => ("bytes", 1024.0),
                "MB" => ("bytes", 1048576.0),
                "GB" => ("bytes", 1073741824.0),
                "TB" => ("bytes", 1099511627776.0),
                other => match parse_block_unit(other) {
                    Some(f) => ("bytes", f),
                    None => return Err(format!("unknown unit {other:?}")),
                },
            };
            if value != -1.0 {
                value *= factor;
            }
            Ok(Some((
                format!("{base}_{suffix}"),
                format!("{short_desc} [Units converted to {suffix}.]"),
                value,
            )))
        }
        _ => Ok(None),
    }
}

/// Units like `8kB` or `16MB`: a multiple of a size unit.
fn parse_block_unit(unit: &str) -> Option<f64> {
    let digits = unit.chars().take_while(|c| c.is_ascii_digit()).count();
    let n: f64 = unit[..digits].parse().ok()?;
    let m = match &unit[digits..] {
        "B" => 1.0,
        "kB" => 1024.0,
        "MB" => 1048576.0,
        "GB" => 1073741824.0,
        _ => return None,
    };
    Some(n * m)
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_serves_its_key_and_survives_a_panic_while_locked() {
        let cache = Cache::default();
        let values: Arc<[Setting]> = vec![("pg_settings_fsync", "Fsync.", 1.0)].into();
        cache.store((Some(10.0), Some(0.0)), values);
        let _ = std::panic::catch_unwind(|| {
            let _held = cache.0.lock();
            panic!("a collector bug while holding the lock");
        });
        assert!(cache.0.is_poisoned());
        let minute = Duration::from_secs(60);
        assert_eq!(
            cache.fresh((Some(10.0), Some(0.0)), minute).unwrap().len(),
            1
        );
        assert!(
            cache.fresh((Some(11.0), Some(0.0)), minute).is_none(),
            "reloaded"
        );
        assert!(
            cache.fresh((Some(10.0), Some(1.0)), minute).is_none(),
            "promoted"
        );
        assert!(
            cache
                .fresh((Some(10.0), Some(0.0)), Duration::ZERO)
                .is_none(),
            "too old"
        );
    }

    fn v(name: &str, setting: &str, unit: &str, vartype: &str) -> (String, f64) {
        let (n, _, v) = convert(name, setting, unit, "desc", vartype)
            .unwrap()
            .unwrap();
        (n, v)
    }

    #[test]
    fn converts_units_like_postgres_exporter() {
        assert_eq!(
            v("work_mem", "4096", "kB", "integer"),
            ("pg_settings_work_mem_bytes".into(), 4194304.0)
        );
        assert_eq!(
            v("shared_buffers", "16384", "8kB", "integer"),
            ("pg_settings_shared_buffers_bytes".into(), 134217728.0)
        );
        assert_eq!(
            v("max_wal_size", "1024", "MB", "integer"),
            ("pg_settings_max_wal_size_bytes".into(), 1073741824.0)
        );
        assert_eq!(
            v("wal_segment_size", "16777216", "B", "integer"),
            ("pg_settings_wal_segment_size_bytes".into(), 16777216.0)
        );
        assert_eq!(
            v("deadlock_timeout", "1000", "ms", "integer"),
            ("pg_settings_deadlock_timeout_seconds".into(), 1.0)
        );
        assert_eq!(
            v("autovacuum_naptime", "1", "min", "integer"),
            ("pg_settings_autovacuum_naptime_seconds".into(), 60.0)
        );
        assert_eq!(
            v("log_rotation_age", "1", "d", "integer"),
            ("pg_settings_log_rotation_age_seconds".into(), 86400.0)
        );
        assert_eq!(
            v("statement_timeout", "0", "ms", "integer"),
            ("pg_settings_statement_timeout_seconds".into(), 0.0)
        );
        assert_eq!(
            v("log_min_duration_statement", "-1", "ms", "integer"),
            (
                "pg_settings_log_min_duration_statement_seconds".into(),
                -1.0
            )
        );
        assert_eq!(
            v("fsync", "on", "", "bool"),
            ("pg_settings_fsync".into(), 1.0)
        );
        assert_eq!(v("jit", "off", "", "bool"), ("pg_settings_jit".into(), 0.0));
        assert_eq!(
            v("random_page_cost", "1.1", "", "real"),
            ("pg_settings_random_page_cost".into(), 1.1)
        );
        assert_eq!(
            v("pg_stat_statements.max", "5000", "", "integer"),
            ("pg_settings_pg_stat_statements_max".into(), 5000.0)
        );
    }

    #[test]
    fn help_notes_conversion_and_bad_values_are_errors() {
        let (_, help, _) = convert("work_mem", "4096", "kB", "Sets memory.", "integer")
            .unwrap()
            .unwrap();
        assert_eq!(help, "Sets memory. [Units converted to bytes.]");
        assert!(convert("x", "abc", "", "d", "integer").is_err());
        assert!(convert("x", "1", "parsecs", "d", "integer").is_err());
        assert!(convert("x", "on", "", "d", "string").unwrap().is_none());
    }
}
