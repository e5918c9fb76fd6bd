//! uname — the `uname(2)` system call.
//!
//! Metric: `node_uname_info{sysname,release,version,machine,nodename,
//! domainname}` = 1. These always describe the kernel oxmon-node runs on
//! (as node_exporter's), whatever `--path.rootfs` says. On by default.

use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;

struct Uname;

/// Builds the collector.
pub fn build(_: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Uname))
}

impl SyncCollector for Uname {
    fn name(&self) -> &'static str {
        "uname"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let u = rustix::system::uname();
        let s = |c: &std::ffi::CStr| c.to_string_lossy().into_owned();
        let mut f = MetricFamily::gauge(
            "node_uname_info",
            "Labeled system information as provided by the uname system call.",
        );
        f.add(
            &[
                ("sysname", &s(u.sysname())),
                ("release", &s(u.release())),
                ("version", &s(u.version())),
                ("machine", &s(u.machine())),
                ("nodename", &s(u.nodename())),
                ("domainname", &s(u.domainname())),
            ],
            1.0,
        );
        out.push(f);
        Ok(())
    }
}
