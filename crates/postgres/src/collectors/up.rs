//! The always-on `up` collector: whether the server answers
//! (`pg_up`, 1 or 0, the scrape itself still succeeds), its version
//! (`pg_static{short_version,version}`), and postgres_exporter's scrape
//! bookkeeping: `pg_exporter_scrapes_total`, `pg_exporter_last_scrape_error`
//! (1 when the connection failed now or a collector failed in the previous
//! scrape), `pg_exporter_last_scrape_duration_seconds` (previous scrape).
//!
//! `pg_up` carries no label when the exporter watches one server, like
//! postgres_exporter; with several DSNs (and on `/probe`) it has `server`.

use std::sync::atomic::Ordering;

use oxmon_core::{MetricFamily, ScrapeContext};

use crate::target::Target;

/// Collects the up state of one target.
pub async fn collect(
    t: &Target,
    ctx: &ScrapeContext,
    out: &mut Vec<MetricFamily>,
) -> oxmon_core::collector::CollectResult {
    let scrapes = t.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
    let failures = t.failures.swap(0, Ordering::Relaxed);
    let previous = {
        let mut last = t.last_scrape.lock().unwrap();
        let prev = match *last {
            (Some(start), Some(end)) if end > start => Some((end - start).as_secs_f64()),
            _ => None,
        };
        *last = (Some(tokio::time::Instant::now()), None);
        prev
    };
    // The shared instance query is the liveness check: it runs on the
    // connection every other collector uses.
    let result = async {
        let live = t.main(ctx).await?;
        super::instance::row(t, ctx).await?;
        Ok::<_, crate::conn::Error>(live)
    }
    .await;
    let server = t.server.as_str();
    let labelled = t.opts.label_up;
    let labels: &[(&'static str, &str)] = if labelled { &[("server", server)] } else { &[] };
    let mut up = MetricFamily::gauge(
        "pg_up",
        "Whether the last scrape of metrics from PostgreSQL was able to connect to the server (1 for yes, 0 for no).",
    );
    let mut error = MetricFamily::gauge(
        "pg_exporter_last_scrape_error",
        "Whether the last scrape of metrics from PostgreSQL resulted in an error (1 for error, 0 for success).",
    );
    let mut total = MetricFamily::counter(
        "pg_exporter_scrapes_total",
        "Total number of times PostgreSQL was scraped for metrics.",
    );
    total.add(labels, scrapes as f64);
    let mut duration = MetricFamily::gauge(
        "pg_exporter_last_scrape_duration_seconds",
        "Duration of the last scrape of metrics from PostgreSQL.",
    );
    duration.add(labels, previous.unwrap_or(0.0));
    match &result {
        Ok(live) => {
            up.add(labels, 1.0);
            error.add(labels, if failures > 0 { 1.0 } else { 0.0 });
            let mut stat =
                MetricFamily::untyped("pg_static", "Version string as reported by postgres");
            stat.add(
                &[
                    ("server", server),
                    ("short_version", &short_version(live.version_num)),
                    ("version", &live.version),
                ],
                1.0,
            );
            out.push(stat);
        }
        Err(_) => {
            up.add(labels, 0.0);
            error.add(labels, 1.0);
        }
    }
    out.extend([up, error, total, duration]);
    if let Some(q) = &t.opts.queries {
        let mut load = MetricFamily::gauge(
            "pg_exporter_user_queries_load_error",
            "Whether the user queries file was loaded and parsed successfully (1 for error, 0 for success).",
        );
        load.add(&[("filename", &q.path), ("hashsum", &q.hashsum)], 0.0);
        out.push(load);
    }
    // A down server is reported by pg_up, not as a failed collector.
    Ok(())
}

/// `150004` → `15.4.0`, `90624` → `9.6.24`, as postgres_exporter shows it.
pub fn short_version(num: u32) -> String {
    if num >= 100000 {
        format!("{}.{}.0", num / 10000, num % 10000)
    } else {
        format!("{}.{}.{}", num / 10000, (num / 100) % 100, num % 100)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_versions() {
        assert_eq!(super::short_version(150018), "15.18.0");
        assert_eq!(super::short_version(170002), "17.2.0");
        assert_eq!(super::short_version(90624), "9.6.24");
    }
}
