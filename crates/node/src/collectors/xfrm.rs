//! xfrm: IPsec transformation error counters.
//!
//! Source: `<procfs>/net/xfrm_stat` (`XfrmInError  12` per line).
//! Metrics: one counter per kernel field, `node_xfrm_<field>_packets_total`
//! (`XfrmInNoStates` → `node_xfrm_in_no_states_packets_total`), with
//! node_exporter's names and help texts; fields this code does not know are
//! left out, fields the kernel does not write are not exported. A line that
//! is not a name and a number fails the collector after the rest is
//! exported. Off by default; no flags. Without IPsec support in the kernel
//! (no file) it reports nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{read_optional, FileCache};
use crate::malformed::Malformed;

/// `(kernel field, metric name, help)`.
const FIELDS: [(&str, &str, &str); 28] = [
    (
        "XfrmInError",
        "node_xfrm_in_error_packets_total",
        "All errors not matched by other",
    ),
    (
        "XfrmInBufferError",
        "node_xfrm_in_buffer_error_packets_total",
        "No buffer is left",
    ),
    (
        "XfrmInHdrError",
        "node_xfrm_in_hdr_error_packets_total",
        "Header error",
    ),
    (
        "XfrmInNoStates",
        "node_xfrm_in_no_states_packets_total",
        "No state is found i.e. Either inbound SPI, address, or IPsec protocol at SA is wrong",
    ),
    (
        "XfrmInStateProtoError",
        "node_xfrm_in_state_proto_error_packets_total",
        "Transformation protocol specific error e.g. SA key is wrong",
    ),
    (
        "XfrmInStateModeError",
        "node_xfrm_in_state_mode_error_packets_total",
        "Transformation mode specific error",
    ),
    (
        "XfrmInStateSeqError",
        "node_xfrm_in_state_seq_error_packets_total",
        "Sequence error i.e. Sequence number is out of window",
    ),
    (
        "XfrmInStateExpired",
        "node_xfrm_in_state_expired_packets_total",
        "State is expired",
    ),
    (
        "XfrmInStateMismatch",
        "node_xfrm_in_state_mismatch_packets_total",
        "State has mismatch option e.g. UDP encapsulation type is mismatch",
    ),
    (
        "XfrmInStateInvalid",
        "node_xfrm_in_state_invalid_packets_total",
        "State is invalid",
    ),
    (
        "XfrmInTmplMismatch",
        "node_xfrm_in_tmpl_mismatch_packets_total",
        "No matching template for states e.g. Inbound SAs are correct but SP rule is wrong",
    ),
    (
        "XfrmInNoPols",
        "node_xfrm_in_no_pols_packets_total",
        "No policy is found for states e.g. Inbound SAs are correct but no SP is found",
    ),
    (
        "XfrmInPolBlock",
        "node_xfrm_in_pol_block_packets_total",
        "Policy discards",
    ),
    (
        "XfrmInPolError",
        "node_xfrm_in_pol_error_packets_total",
        "Policy error",
    ),
    (
        "XfrmOutError",
        "node_xfrm_out_error_packets_total",
        "All errors which is not matched others",
    ),
    (
        "XfrmOutBundleGenError",
        "node_xfrm_out_bundle_gen_error_packets_total",
        "Bundle generation error",
    ),
    (
        "XfrmOutBundleCheckError",
        "node_xfrm_out_bundle_check_error_packets_total",
        "Bundle check error",
    ),
    (
        "XfrmOutNoStates",
        "node_xfrm_out_no_states_packets_total",
        "No state is found",
    ),
    (
        "XfrmOutStateProtoError",
        "node_xfrm_out_state_proto_error_packets_total",
        "Transformation protocol specific error",
    ),
    (
        "XfrmOutStateModeError",
        "node_xfrm_out_state_mode_error_packets_total",
        "Transformation mode specific error",
    ),
    (
        "XfrmOutStateSeqError",
        "node_xfrm_out_state_seq_error_packets_total",
        "Sequence error i.e. Sequence number overflow",
    ),
    (
        "XfrmOutStateExpired",
        "node_xfrm_out_state_expired_packets_total",
        "State is expired",
    ),
    (
        "XfrmOutPolBlock",
        "node_xfrm_out_pol_block_packets_total",
        "Policy discards",
    ),
    (
        "XfrmOutPolDead",
        "node_xfrm_out_pol_dead_packets_total",
        "Policy is dead",
    ),
    (
        "XfrmOutPolError",
        "node_xfrm_out_pol_error_packets_total",
        "Policy error",
    ),
    (
        "XfrmFwdHdrError",
        "node_xfrm_fwd_hdr_error_packets_total",
        "Forward routing of a packet is not allowed",
    ),
    (
        "XfrmOutStateInvalid",
        "node_xfrm_out_state_invalid_packets_total",
        "State is invalid, perhaps expired",
    ),
    (
        "XfrmAcquireError",
        "node_xfrm_acquire_error_packets_total",
        "State hasn\u{2019}t been fully acquired before use",
    ),
];

/// Parses `net/xfrm_stat`: `(field, value)` pairs in file order, and the
/// lines that are not a name followed by one unsigned number.
pub fn parse_xfrm_stat(text: &str) -> (Vec<(&str, u64)>, Malformed) {
    let mut out = Vec::new();
    let mut bad = Malformed::default();
    for (i, line) in text.lines().enumerate() {
        let mut cols = line.split_whitespace();
        let (Some(name), Some(value), None) = (cols.next(), cols.next(), cols.next()) else {
            if !line.trim().is_empty() {
                bad.line(i + 1, line, "expected a name and a value");
            }
            continue;
        };
        match value.parse() {
            Ok(v) => out.push((name, v)),
            Err(_) => bad.line(i + 1, line, "value is not an unsigned integer"),
        }
    }
    (out, bad)
}

struct Xfrm {
    path: PathBuf,
    cache: FileCache,
}

impl SyncCollector for Xfrm {
    fn name(&self) -> &'static str {
        "xfrm"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut buf = String::new();
        if !read_optional(&mut self.cache.scope(), &self.path, &mut buf, "xfrm")? {
            return Ok(());
        }
        let (fields, bad) = parse_xfrm_stat(&buf);
        for (field, value) in fields {
            if let Some((_, name, help)) = FIELDS.iter().find(|(f, _, _)| *f == field) {
                out.push(oxmon_core::counter(*name, *help, value as f64));
            }
        }
        bad.into_result(&self.path)
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Xfrm {
        path: ctx.paths.proc("net/xfrm_stat"),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_and_flags_bad_lines() {
        let (f, bad) =
            parse_xfrm_stat("XfrmInError   \t 3\nXfrmOutPolDead 18446744073709551615\n\n");
        assert_eq!(f, [("XfrmInError", 3), ("XfrmOutPolDead", u64::MAX)]);
        assert!(bad.is_empty());
        let (f, bad) = parse_xfrm_stat("XfrmInError x\nXfrmInHdrError 1 2\nXfrmFwdHdrError 4\n");
        assert_eq!(f, [("XfrmFwdHdrError", 4)]);
        assert_eq!(bad.count(), 2);
    }

    #[test]
    fn every_field_maps_to_a_distinct_metric() {
        let mut names: Vec<&str> = FIELDS.iter().map(|f| f.1).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FIELDS.len());
        assert!(names.iter().all(|n| n.ends_with("_packets_total")));
    }
}
