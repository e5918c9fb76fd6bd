//! What the integration test files share: the family comparison with
//! Debian's prometheus-redis-exporter.

use std::collections::{BTreeMap, BTreeSet};

use oxmon_testkit::Exposition;

/// The set of label names per family, without `quantile`/`le`.
fn label_names(e: &Exposition) -> BTreeMap<String, (String, BTreeSet<String>)> {
    e.families
        .values()
        .map(|f| {
            let labels = f
                .samples
                .iter()
                .flat_map(|s| s.labels.keys().cloned())
                .filter(|l| l != "quantile" && l != "le")
                .collect();
            (f.name.clone(), (f.kind.clone(), labels))
        })
        .collect()
}

/// Families the Go exporter emits that oxmon-redis cannot match: Go
/// runtime metrics, and build info whose labels describe the Go build.
fn not_comparable(name: &str) -> bool {
    name.starts_with("go_") || name == "redis_exporter_build_info"
}

/// The differences, described, of our families from every comparable
/// family of the peer: missing, another type or other label names.
pub fn compare(peer: &Exposition, ours: &Exposition, what: &str) -> Vec<String> {
    let ours = label_names(ours);
    let mut problems = Vec::new();
    for (name, (kind, labels)) in label_names(peer) {
        if not_comparable(&name) {
            continue;
        }
        match ours.get(&name) {
            None => problems.push(format!("{what}: missing {name} ({kind})")),
            Some((k, _)) if *k != kind => {
                problems.push(format!("{what}: {name} is {k}, peer has {kind}"))
            }
            Some((_, l)) if *l != labels => {
                problems.push(format!("{what}: {name} labels {l:?}, peer has {labels:?}"))
            }
            _ => {}
        }
    }
    problems
}
