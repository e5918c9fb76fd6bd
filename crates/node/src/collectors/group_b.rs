//! Collector group B: its modules, flags and table rows.

use super::Entry;

/// Flags of the collectors in this group.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct FlagsB {}

/// Table rows of this group.
pub fn entries() -> Vec<Entry> {
    vec![]
}
