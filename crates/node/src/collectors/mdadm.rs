//! mdadm: Linux software RAID arrays.
//!
//! Sources: `<procfs>/mdstat` and `<sysfs>/block/md*/md/{raid_disks,degraded}`.
//! Metrics (gauges): `node_md_state{device,state}` (one series per state:
//! active, inactive, recovering, resync, check), `node_md_disks{device,state}`
//! (active, failed, spare), `node_md_disks_required`, `node_md_blocks`,
//! `node_md_blocks_synced`, and from sysfs `node_md_raid_disks`,
//! `node_md_degraded` (0 for arrays without redundancy). An array
//! whose mdstat lines do not parse is left out and fails the collector
//! after the others are exported. On by default; no flags. Without md
//! arrays (no mdstat) it reports nothing.

use std::path::PathBuf;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::dir_entries;
use crate::file_cache::{is_missing, FileCache};
use crate::paths::Paths;

/// One array from `/proc/mdstat`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MdStat {
    /// `md0`.
    pub name: String,
    /// `active`, `inactive`, `recovering`, `resyncing` or `checking`.
    pub state: String,
    /// Active member disks.
    pub disks_active: u64,
    /// Disks the array needs.
    pub disks_total: u64,
    /// Failed member disks (`(F)`).
    pub disks_failed: u64,
    /// Spare disks (`(S)`).
    pub disks_spare: u64,
    /// Size in blocks.
    pub blocks: u64,
    /// Blocks in sync (all of them unless a sync runs).
    pub blocks_synced: u64,
}

/// Parses `/proc/mdstat`. An array whose lines cannot be understood is
/// skipped (and named in the returned error list).
pub fn parse_mdstat(text: &str) -> (Vec<MdStat>, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty()
            || line.starts_with(' ')
            || line.starts_with('\t')
            || line.starts_with("Personalities")
            || line.starts_with("unused")
        {
            continue;
        }
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        if fields.len() < 3 {
            errors.push(format!("not enough fields in md line {line:?}"));
            continue;
        }
        let name = fields[0].to_string();
        let Some(status) = lines.get(i + 1) else {
            errors.push(format!("{name}: missing status line"));
            continue;
        };
        let Some((active, total, size)) = status_line(line, status) else {
            errors.push(format!("{name}: unexpected status line {status:?}"));
            continue;
        };
        let mut state = fields[2].to_string();
        let mut synced = size;
        let mut sync_idx = i + 2;
        if lines.get(sync_idx).is_some_and(|l| l.contains("bitmap")) {
            sync_idx += 1;
        }
        if let Some(sync) = lines.get(sync_idx) {
            let recovering = sync.contains("recovery");
            let resyncing = sync.contains("resync");
            let checking = sync.contains("check");
            if recovering || resyncing || checking {
                state = if recovering {
                    "recovering"
                } else if checking {
                    "checking"
                } else {
                    "resyncing"
                }
                .to_string();
                if sync.contains("PENDING") || sync.contains("DELAYED") {
                    synced = 0;
                } else if let Some(b) = synced_blocks(sync) {
                    synced = b;
                } else {
                    errors.push(format!("{name}: unexpected sync line {sync:?}"));
                    continue;
                }
            }
        }
        out.push(MdStat {
            name,
            state,
            disks_active: active,
            disks_total: total,
            disks_failed: line.matches("(F)").count() as u64,
            disks_spare: line.matches("(S)").count() as u64,
            blocks: size,
            blocks_synced: synced,
        });
    }
    (out, errors)
}

/// `(active, total, size)` from the device and status lines.
fn status_line(device: &str, status: &str) -> Option<(u64, u64, u64)> {
    let size: u64 = status.split_ascii_whitespace().next()?.parse().ok()?;
    if device.contains("raid0") || device.contains("linear") {
        let n = device.matches('[').count() as u64;
        return Some((n, n, size));
    }
    if device.contains("inactive") {
        return Some((0, 0, size));
    }
    // `... [total/active] [UU_]`
    let bracket = status.find(" blocks ").map(|p| &status[p..])?;
    let mut rest = bracket;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        let inner = &after[..close];
        if let Some((t, a)) = inner.split_once('/') {
            if let (Ok(t), Ok(a)) = (t.parse::<u64>(), a.parse::<u64>()) {
                let tail = &after[close + 1..];
                // node_exporter requires the `[UU_]` map after the counts.
                let map_ok = tail
                    .trim_start()
                    .strip_prefix('[')
                    .and_then(|m| m.split_once(']'))
                    .is_some_and(|(m, _)| !m.is_empty() && m.chars().all(|c| c == 'U' || c == '_'));
                if map_ok {
                    return Some((a, t, size));
                }
            }
        }
        rest = &after[close + 1..];
    }
    None
}

/// The synced block count from `(done/total)` on a sync line.
fn synced_blocks(sync: &str) -> Option<u64> {
    let open = sync.find('(')?;
    let inner = &sync[open + 1..];
    let (done, rest) = inner.split_once('/')?;
    rest.split_once(')')?;
    done.parse().ok()
}

/// The mdadm collector.
pub struct Mdadm {
    mdstat: PathBuf,
    block: PathBuf,
    cache: FileCache,
}

impl Mdadm {
    /// Reads under the given roots.
    pub fn new(paths: &Paths) -> Self {
        Mdadm {
            mdstat: paths.proc("mdstat"),
            block: paths.sys("block"),
            cache: FileCache::remembering_missing(),
        }
    }
}

impl SyncCollector for Mdadm {
    fn name(&self) -> &'static str {
        "mdadm"
    }

    fn collect(&self, _ctx: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        let mut scope = self.cache.scope();
        let text = match scope.read(&self.mdstat) {
            Ok(b) => crate::file_cache::utf8_text(b).into_owned(),
            Err(e) => {
                tracing::debug!(path = %self.mdstat.display(), err = %e, "not collecting mdstat");
                return Ok(());
            }
        };
        let (arrays, errors) = parse_mdstat(&text);
        let mut required =
            MetricFamily::gauge("node_md_disks_required", "Total number of disks of device.");
        let mut disks = MetricFamily::gauge(
            "node_md_disks",
            "Number of active/failed/spare disks of device.",
        );
        let mut state = MetricFamily::gauge("node_md_state", "Indicates the state of md-device.");
        let mut blocks = MetricFamily::gauge("node_md_blocks", "Total number of blocks on device.");
        let mut synced = MetricFamily::gauge(
            "node_md_blocks_synced",
            "Number of blocks synced on device.",
        );
        for a in &arrays {
            let dev = a.name.as_str();
            required.add(&[("device", dev)], a.disks_total as f64);
            disks.add(
                &[("device", dev), ("state", "active")],
                a.disks_active as f64,
            );
            disks.add(
                &[("device", dev), ("state", "failed")],
                a.disks_failed as f64,
            );
            disks.add(&[("device", dev), ("state", "spare")], a.disks_spare as f64);
            // node_exporter's label and mdstat's word differ for two states.
            for (label, word) in [
                ("active", "active"),
                ("inactive", "inactive"),
                ("recovering", "recovering"),
                ("resync", "resyncing"),
                ("check", "checking"),
            ] {
                let v = if a.state == word { 1.0 } else { 0.0 };
                state.add(&[("device", dev), ("state", label)], v);
            }
            blocks.add(&[("device", dev)], a.blocks as f64);
            synced.add(&[("device", dev)], a.blocks_synced as f64);
        }
        out.extend([required, disks, state, blocks, synced]);

        let mut raid_disks =
            MetricFamily::gauge("node_md_raid_disks", "Number of raid disks on device.");
        let mut degraded =
            MetricFamily::gauge("node_md_degraded", "Number of degraded disks on device.");
        if let Ok(Some(entries)) = dir_entries(&self.block) {
            for (name, _) in entries.iter().filter(|(n, _)| n.starts_with("md")) {
                let md = self.block.join(name).join("md");
                if !md.is_dir() {
                    continue;
                }
                if let Some(n) = scope.attr_f64(&md.join("raid_disks")) {
                    raid_disks.add(&[("device", name)], n);
                }
                // Arrays without redundancy (raid0, linear) have no
                // `degraded` attribute and no disk that can be degraded: 0,
                // as node_exporter reports them. One that is not a number
                // is skipped.
                let path = md.join("degraded");
                let d = match scope.attr(&path) {
                    Err(e) if is_missing(&e) => Some(0.0),
                    _ => scope.attr_f64(&path),
                };
                if let Some(d) = d {
                    degraded.add(&[("device", name)], d);
                }
            }
        }
        out.extend([raid_disks, degraded]);
        if errors.is_empty() {
            return Ok(());
        }
        Err(format!("{}: {}", self.mdstat.display(), errors.join("; ")).into())
    }
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Mdadm::new(ctx.paths)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Personalities : [raid1] [raid0]\n\
md1 : active raid1 sdb1[1] sda1[0] sdc1[2](S)\n      1000 blocks super 1.2 [2/2] [UU]\n      \n\
md2 : active raid1 sdb2[1](F) sda2[0]\n      2000 blocks [2/1] [U_]\n      [==>....]  recovery = 12.5% (250/2000) finish=1.0min speed=100K/sec\n\
md3 : active raid0 sdd[1] sde[0]\n      3000 blocks 512k chunks\n\
md4 : inactive sdf[0](S)\n      400 blocks super external:imsm\n\
md5 : active raid1 sdg[0] sdh[1]\n      500 blocks [2/2] [UU]\n      bitmap: 0/1 pages [0KB], 65536KB chunk\n      resync=DELAYED\n\
md6 : active raid1 sdi[0]\n      garbage\n\
unused devices: <none>\n";

    #[test]
    fn parses_arrays() {
        let (a, errors) = parse_mdstat(TEXT);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(a.len(), 5);
        assert_eq!(
            a[0],
            MdStat {
                name: "md1".into(),
                state: "active".into(),
                disks_active: 2,
                disks_total: 2,
                disks_failed: 0,
                disks_spare: 1,
                blocks: 1000,
                blocks_synced: 1000
            }
        );
        assert_eq!(a[1].state, "recovering");
        assert_eq!((a[1].disks_active, a[1].disks_failed), (1, 1));
        assert_eq!(a[1].blocks_synced, 250);
        assert_eq!((a[2].disks_active, a[2].disks_total), (2, 2));
        assert_eq!(
            (a[3].state.as_str(), a[3].disks_spare, a[3].disks_total),
            ("inactive", 1, 0)
        );
        assert_eq!((a[4].state.as_str(), a[4].blocks_synced), ("resyncing", 0));
    }
}
