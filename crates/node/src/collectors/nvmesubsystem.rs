//! nvmesubsystem: NVMe subsystems (NVMe over Fabrics and multipath NVMe)
//! and the health of their controller paths.
//!
//! Source: `<sysfs>/class/nvme-subsystem/nvme-subsys<N>/` (`subsysnqn`,
//! `model`, `serial`, `iopolicy`), its controllers `nvme<M>/{state,transport}`
//! and its namespace heads `nvme<M>n<K>`. Metrics (gauges), labelled
//! `subsystem` (`nvme-subsys0`): `node_nvmesubsystem_info{nqn,model,serial,iopolicy}`,
//! `node_nvmesubsystem_namespace_info{device}`, `node_nvmesubsystem_paths`,
//! `node_nvmesubsystem_paths_live` (controllers in state `live`) and
//! `node_nvmesubsystem_path_state{controller,transport,state}` (1, the
//! state as the kernel writes it: `live`, `connecting`, `resetting`,
//! `dead` …). Off by default; no flags. Without NVMe subsystems it reports
//! nothing and looks for `class/nvme-subsystem` again once a minute.
//!
//! node_exporter added this collector in 2026 (its PR 3579); its metric
//! names, labels and default follow that PR. The help texts are this
//! module's own: the e2e fixture of node_exporter has no expected output
//! for it to compare with.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{dir_entries, AbsentSource};
use crate::file_cache::FileCache;

/// What an entry of a subsystem directory is.
#[derive(Debug, PartialEq, Eq)]
pub enum Member {
    /// A controller (`nvme3`): one path to the subsystem.
    Controller,
    /// A namespace head (`nvme3n1`, the block device applications use).
    Namespace,
}

/// Classifies an entry name of a subsystem directory; `None` for
/// attributes and anything else.
pub fn member(name: &str) -> Option<Member> {
    let rest = name.strip_prefix("nvme")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return None;
    }
    let tail = &rest[digits..];
    if tail.is_empty() {
        return Some(Member::Controller);
    }
    let ns = tail.strip_prefix('n')?;
    (!ns.is_empty() && ns.bytes().all(|b| b.is_ascii_digit())).then_some(Member::Namespace)
}

/// The nvmesubsystem collector.
pub struct NvmeSubsystem {
    class: PathBuf,
    absent: AbsentSource,
    cache: FileCache,
}

impl SyncCollector for NvmeSubsystem {
    fn name(&self) -> &'static str {
        "nvmesubsystem"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let Some(subsystems) = self.absent.entries(&self.class)? else {
            tracing::debug!(path = %self.class.display(), "no NVMe subsystems");
            return Ok(());
        };
        let g = MetricFamily::gauge;
        let mut info = g(
            "node_nvmesubsystem_info",
            "Information about an NVMe subsystem, value is always 1.",
        );
        let mut ns_info = g(
            "node_nvmesubsystem_namespace_info",
            "NVMe namespace block device of a subsystem, value is always 1.",
        );
        let mut paths = g(
            "node_nvmesubsystem_paths",
            "Number of controller paths of an NVMe subsystem.",
        );
        let mut live = g(
            "node_nvmesubsystem_paths_live",
            "Number of controller paths of an NVMe subsystem in state live.",
        );
        let mut path_state = g(
            "node_nvmesubsystem_path_state",
            "State of a controller path of an NVMe subsystem, as read from /sys/class/nvme-subsystem/<subsystem>/<controller>/state, value is always 1.",
        );
        let mut scope = self.cache.scope();
        let mut result = Ok(());
        for (subsys, _) in subsystems {
            let dir = self.class.join(&subsys);
            let members = match dir_entries(&dir) {
                Ok(Some(m)) => m,
                // Removed between the two listings.
                Ok(None) => continue,
                Err(e) => {
                    result = Err(format!("listing {}: {e}", dir.display()).into());
                    continue;
                }
            };
            let mut attr = |f: &str| scope.attr_string(&dir.join(f)).unwrap_or_default();
            let (nqn, model, serial, iopolicy) = (
                attr("subsysnqn"),
                attr("model"),
                attr("serial"),
                attr("iopolicy"),
            );
            info.add(
                &[
                    ("subsystem", &subsys),
                    ("nqn", &nqn),
                    ("model", &model),
                    ("serial", &serial),
                    ("iopolicy", &iopolicy),
                ],
                1.0,
            );
            let (mut total, mut up) = (0u32, 0u32);
            for (name, _) in &members {
                match member(name) {
                    Some(Member::Controller) => {
                        let ctrl = dir.join(name);
                        let state = scope
                            .attr_string(&ctrl.join("state"))
                            .filter(|s| !s.is_empty())
                            .unwrap_or_else(|| "unknown".to_string());
                        let transport = scope
                            .attr_string(&ctrl.join("transport"))
                            .unwrap_or_default();
                        total += 1;
                        if state == "live" {
                            up += 1;
                        }
                        path_state.add(
                            &[
                                ("subsystem", &subsys),
                                ("controller", name),
                                ("transport", &transport),
                                ("state", &state),
                            ],
                            1.0,
                        );
                    }
                    Some(Member::Namespace) => {
                        ns_info.add(&[("subsystem", &subsys), ("device", name)], 1.0);
                    }
                    None => {}
                }
            }
            paths.add(&[("subsystem", &subsys)], total as f64);
            live.add(&[("subsystem", &subsys)], up as f64);
        }
        out.extend([info, ns_info, paths, live, path_state]);
        result
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(NvmeSubsystem {
        class: ctx.paths.sys("class/nvme-subsystem"),
        absent: AbsentSource::default(),
        cache: FileCache::remembering_missing(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectors::testing::{build, paths_under, scrape, single};

    #[test]
    fn member_names() {
        assert_eq!(member("nvme0"), Some(Member::Controller));
        assert_eq!(member("nvme12"), Some(Member::Controller));
        assert_eq!(member("nvme0n1"), Some(Member::Namespace));
        assert_eq!(member("nvme0c1n1"), None, "a hidden per-path namespace");
        assert_eq!(member("nvme0n"), None);
        assert_eq!(member("nvme"), None);
        assert_eq!(member("iopolicy"), None);
    }

    #[test]
    fn counts_live_paths() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("class/nvme-subsystem/nvme-subsys1");
        for (ctrl, state) in [
            ("nvme1", "live"),
            ("nvme2", "connecting"),
            ("nvme3", "live"),
        ] {
            std::fs::create_dir_all(sub.join(ctrl)).unwrap();
            std::fs::write(sub.join(ctrl).join("state"), format!("{state}\n")).unwrap();
            std::fs::write(sub.join(ctrl).join("transport"), "tcp\n").unwrap();
        }
        std::fs::create_dir_all(sub.join("nvme1n1")).unwrap();
        std::fs::write(sub.join("subsysnqn"), "nqn.2014-08.org.example:array1\n").unwrap();
        let out = scrape(&*build("nvmesubsystem", &paths_under(dir.path())));
        let s = [("subsystem", "nvme-subsys1")];
        assert_eq!(single(&out, "node_nvmesubsystem_paths", &s), Some(3.0));
        assert_eq!(single(&out, "node_nvmesubsystem_paths_live", &s), Some(2.0));
        assert_eq!(
            single(
                &out,
                "node_nvmesubsystem_path_state",
                &[("controller", "nvme2"), ("state", "connecting")]
            ),
            Some(1.0)
        );
        assert_eq!(
            single(
                &out,
                "node_nvmesubsystem_namespace_info",
                &[("device", "nvme1n1")]
            ),
            Some(1.0)
        );
        assert_eq!(
            single(
                &out,
                "node_nvmesubsystem_info",
                &[("nqn", "nqn.2014-08.org.example:array1"), ("iopolicy", "")]
            ),
            Some(1.0)
        );
    }
}
