//! timex — the kernel's clock discipline state from `adjtimex(2)` (read
//! only, through `oxmon-sys`): whether the clock is synchronised, its
//! offset, frequency adjustment, error bounds and PPS statistics. The
//! node-mixin alerts `NodeClockNotSynchronising` and `NodeClockSkewDetected`
//! use these.
//!
//! Metrics: `node_timex_sync_status`, `node_timex_offset_seconds`,
//! `node_timex_frequency_adjustment_ratio`, `node_timex_maxerror_seconds`,
//! `node_timex_estimated_error_seconds`, `node_timex_status`,
//! `node_timex_loop_time_constant`, `node_timex_tick_seconds`,
//! `node_timex_pps_frequency_hertz`, `node_timex_pps_jitter_seconds`,
//! `node_timex_pps_shift_seconds`, `node_timex_pps_stability_hertz`,
//! `node_timex_tai_offset_seconds` (gauges) and
//! `node_timex_pps_{jitter,calibration,error,stability_exceeded}_total`
//! (counters). On by default. No flags. The values are the live kernel's,
//! whatever `--path.procfs` says (as in node_exporter).

use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{counter, gauge, Collector, MetricFamily};
use oxmon_sys::Timex;

use crate::collectors::Ctx;

/// `adjtimex` state meaning the clock is not synchronised.
const TIME_ERROR: i32 = 5;
/// Status bit: offsets and jitter are in nanoseconds, not microseconds.
const STA_NANO: i32 = 0x2000;
/// Parts per million with a 16-bit binary fraction (see adjtimex(2) NOTES).
const PPM16FRAC: f64 = 1_000_000.0 * 65_536.0;

/// Turns a clock state into node_exporter's families.
pub fn families(t: &Timex) -> Vec<MetricFamily> {
    let divisor = if t.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    vec![
        gauge(
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            if t.state == TIME_ERROR { 0.0 } else { 1.0 },
        ),
        gauge(
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            t.offset as f64 / divisor,
        ),
        gauge(
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + t.freq as f64 / PPM16FRAC,
        ),
        gauge(
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            t.maxerror as f64 / 1e6,
        ),
        gauge(
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            t.esterror as f64 / 1e6,
        ),
        gauge(
            "node_timex_status",
            "Value of the status array bits.",
            t.status as f64,
        ),
        gauge(
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            t.constant as f64,
        ),
        gauge(
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            t.tick as f64 / 1e6,
        ),
        gauge(
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            t.ppsfreq as f64 / PPM16FRAC,
        ),
        gauge(
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            t.jitter as f64 / divisor,
        ),
        gauge(
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            t.shift as f64,
        ),
        gauge(
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            t.stabil as f64 / PPM16FRAC,
        ),
        counter(
            "node_timex_pps_jitter_total",
            "Pulse per second count of jitter limit exceeded events.",
            t.jitcnt as f64,
        ),
        counter(
            "node_timex_pps_calibration_total",
            "Pulse per second count of calibration intervals.",
            t.calcnt as f64,
        ),
        counter(
            "node_timex_pps_error_total",
            "Pulse per second count of calibration errors.",
            t.errcnt as f64,
        ),
        counter(
            "node_timex_pps_stability_exceeded_total",
            "Pulse per second count of stability limit exceeded events.",
            t.stbcnt as f64,
        ),
        gauge(
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            t.tai as f64,
        ),
    ]
}

struct TimexCollector;

/// Builds the collector.
pub fn build(_: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(TimexCollector))
}

impl SyncCollector for TimexCollector {
    fn name(&self) -> &'static str {
        "timex"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let t = oxmon_sys::read_timex().map_err(|e| format!("adjtimex: {e}"))?;
        out.extend(families(&t));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(fams: &[MetricFamily], name: &str) -> f64 {
        let f = fams.iter().find(|f| f.name == name).unwrap();
        match f.metrics[0].value {
            oxmon_core::metrics::Value::Single(v) => v,
            _ => unreachable!(),
        }
    }

    #[test]
    fn units_follow_the_status_bits() {
        let micro = Timex {
            state: 0,
            offset: -2500,
            freq: 65536 * 12,
            maxerror: 16000,
            esterror: 1000,
            status: 0x0001,
            tick: 10000,
            jitter: 300,
            calcnt: 7,
            ..Timex::default()
        };
        let f = families(&micro);
        assert_eq!(value(&f, "node_timex_sync_status"), 1.0);
        assert_eq!(value(&f, "node_timex_offset_seconds"), -0.0025);
        assert_eq!(value(&f, "node_timex_frequency_adjustment_ratio"), 1.000012);
        assert_eq!(value(&f, "node_timex_maxerror_seconds"), 0.016);
        assert_eq!(value(&f, "node_timex_tick_seconds"), 0.01);
        assert_eq!(value(&f, "node_timex_pps_jitter_seconds"), 0.0003);
        assert_eq!(value(&f, "node_timex_pps_calibration_total"), 7.0);

        let nano = Timex {
            state: TIME_ERROR,
            offset: -2500,
            status: STA_NANO | 0x40,
            ..Timex::default()
        };
        let f = families(&nano);
        assert_eq!(value(&f, "node_timex_sync_status"), 0.0);
        assert_eq!(value(&f, "node_timex_offset_seconds"), -2.5e-6);
        assert_eq!(value(&f, "node_timex_status"), f64::from(STA_NANO | 0x40));
        assert_eq!(f.len(), 17);
    }
}
