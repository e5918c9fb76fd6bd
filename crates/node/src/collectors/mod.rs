//! The collector table: every collector oxmon-node knows, whether it is on
//! by default (as in node_exporter), and how to build it from the flags.
//!
//! The table is split in two groups only so two people can extend it
//! without editing the same lines; both are plain lists.

use std::sync::Arc;

use oxmon_core::Collector;

use crate::paths::Paths;

pub mod group_a;
pub mod group_b;

/// Flags of all collectors (`--collector.<name>.<option>`).
#[derive(clap::Args, Debug, Clone)]
pub struct CollectorFlags {
    /// Flags of group A.
    #[command(flatten)]
    pub a: group_a::FlagsA,
    /// Flags of group B.
    #[command(flatten)]
    pub b: group_b::FlagsB,
}

/// What a collector constructor gets.
pub struct Ctx<'a> {
    /// The filesystem roots.
    pub paths: &'a Paths,
    /// All collector flags.
    pub flags: &'a CollectorFlags,
}

/// Builds a collector; an error stops start-up (bad flag values).
pub type Build = fn(&Ctx<'_>) -> Result<Arc<dyn Collector>, String>;

/// One row of the table.
pub struct Entry {
    /// Name used in `--collector.<name>`, `collect[]` and the
    /// `collector` label.
    pub name: &'static str,
    /// On unless disabled (node_exporter's default).
    pub default_enabled: bool,
    /// Constructor.
    pub build: Build,
}

/// All collectors, sorted by name.
pub fn entries() -> Vec<Entry> {
    let mut all = group_a::entries();
    all.extend(group_b::entries());
    all.sort_by_key(|e| e.name);
    all
}
