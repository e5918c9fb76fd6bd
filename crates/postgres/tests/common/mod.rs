//! What the integration test files share: the family comparison with
//! Debian's prometheus-postgres-exporter.

use std::collections::{BTreeMap, BTreeSet};

use oxmon_testkit::Exposition;

/// Family name → (type, the label-name sets of its samples).
fn families(e: &Exposition) -> BTreeMap<String, (String, BTreeSet<Vec<String>>)> {
    e.families
        .iter()
        .map(|(n, f)| {
            let labels = f
                .samples
                .iter()
                .map(|s| s.labels.keys().cloned().collect())
                .collect();
            (n.clone(), (f.kind.clone(), labels))
        })
        .collect()
}

/// How the peer's families compare with ours.
pub struct Comparison {
    /// The peer's families compared (its Go, process and self metrics left out).
    pub compared: usize,
    /// Families of the peer we lack.
    pub missing: Vec<String>,
    /// Families whose type or label names differ, described.
    pub different: Vec<String>,
}

/// Compares every family of the peer's scrape with ours.
pub fn compare(peer: &Exposition, ours: &Exposition) -> Comparison {
    let ours = families(ours);
    let mut result = Comparison {
        compared: 0,
        missing: Vec::new(),
        different: Vec::new(),
    };
    for (name, (kind, labels)) in families(peer) {
        if ["go_", "process_", "promhttp_", "postgres_exporter_"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            continue;
        }
        result.compared += 1;
        match ours.get(&name) {
            None => result.missing.push(name),
            Some((k, l)) if *k != kind || *l != labels => result
                .different
                .push(format!("{name}: peer {kind} {labels:?}, ours {k} {l:?}")),
            Some(_) => {}
        }
    }
    result
}
