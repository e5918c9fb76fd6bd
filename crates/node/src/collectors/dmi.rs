//! dmi: firmware and hardware identity from DMI/SMBIOS.
//!
//! Source: `<sysfs>/class/dmi/id/*`, read once at start-up (it changes
//! only with a reboot). Metric: gauge `node_dmi_info` (value 1) labelled by
//! each of [`ATTRIBUTES`] the firmware provides and the exporter may read
//! (serial numbers and the UUID are readable by root only); invalid UTF-8
//! becomes U+FFFD. On by default; no flags. Without DMI (most ARM boards,
//! containers without /sys/class/dmi) it reports nothing.

use std::io;
use std::path::Path;
use std::sync::Arc;

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::metrics::{LabelName, LabelValue};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::file_cache::{is_missing, read_regular, OnLease};

/// `(file, label)`; `sys_vendor` is exported as `system_vendor`.
pub const ATTRIBUTES: [(&str, &str); 20] = [
    ("bios_date", "bios_date"),
    ("bios_release", "bios_release"),
    ("bios_vendor", "bios_vendor"),
    ("bios_version", "bios_version"),
    ("board_asset_tag", "board_asset_tag"),
    ("board_name", "board_name"),
    ("board_serial", "board_serial"),
    ("board_vendor", "board_vendor"),
    ("board_version", "board_version"),
    ("chassis_asset_tag", "chassis_asset_tag"),
    ("chassis_serial", "chassis_serial"),
    ("chassis_vendor", "chassis_vendor"),
    ("chassis_version", "chassis_version"),
    ("product_family", "product_family"),
    ("product_name", "product_name"),
    ("product_serial", "product_serial"),
    ("product_sku", "product_sku"),
    ("product_uuid", "product_uuid"),
    ("product_version", "product_version"),
    ("sys_vendor", "system_vendor"),
];

/// The most read of one attribute (they are short strings).
const ATTRIBUTE_LIMIT: usize = 4096;

/// The labels for the attributes readable under `dir`. An attribute that
/// is missing or not readable by this user is left out; one that cannot be
/// read for another reason is left out with a warning (start-up goes on).
pub fn read_labels(dir: &Path) -> Vec<(LabelName, LabelValue)> {
    let mut labels = Vec::new();
    for (file, label) in ATTRIBUTES {
        let path = dir.join(file);
        match read_regular(&path, OnLease::Fail, ATTRIBUTE_LIMIT) {
            Ok((bytes, _)) => labels.push((
                LabelName::Borrowed(label),
                String::from_utf8_lossy(&bytes).trim().into(),
            )),
            Err(e) if is_missing(&e) || e.kind() == io::ErrorKind::PermissionDenied => {}
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "DMI attribute left out"),
        }
    }
    labels
}

struct Dmi {
    labels: Vec<(LabelName, LabelValue)>,
}

impl SyncCollector for Dmi {
    fn name(&self) -> &'static str {
        "dmi"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        if self.labels.is_empty() {
            return Ok(());
        }
        let mut fam = MetricFamily::gauge(
            "node_dmi_info",
            "A metric with a constant '1' value labeled by bios_date, bios_release, bios_vendor, \
             bios_version, board_asset_tag, board_name, board_serial, board_vendor, board_version, \
             chassis_asset_tag, chassis_serial, chassis_vendor, chassis_version, product_family, \
             product_name, product_serial, product_sku, product_uuid, product_version, \
             system_vendor if provided by DMI.",
        );
        fam.add_owned(self.labels.clone(), 1.0);
        out.push(fam);
        Ok(())
    }
}

/// Builds the collector (reading the attributes).
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Dmi {
        labels: read_labels(&ctx.paths.sys("class/dmi/id")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn present_attributes_only_with_lossy_text() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sys_vendor"), "ACME Corp.\n").unwrap();
        std::fs::write(dir.path().join("product_version"), b"\xff1.0 \n").unwrap();
        std::fs::write(dir.path().join("chassis_type"), "23\n").unwrap();
        std::fs::create_dir(dir.path().join("board_name")).unwrap();
        let labels = read_labels(dir.path());
        assert_eq!(
            labels,
            [
                (LabelName::Borrowed("product_version"), "\u{fffd}1.0".into()),
                (LabelName::Borrowed("system_vendor"), "ACME Corp.".into()),
            ]
        );
        assert!(read_labels(&dir.path().join("none")).is_empty());
    }
}
