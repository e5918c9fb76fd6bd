//! Glob matching as statsd_exporter does it: a state machine over the
//! dot-separated fields of a name, one start state per metric type.
//!
//! - A literal field is preferred to `*`; with ordering (the default) every
//!   alternative is explored and the earliest mapping in the file wins; with
//!   `glob_disable_ordering` the first match found wins (literal before
//!   `*`), and alternatives are explored only where some rule needs it.
//! - Each state knows the shortest and longest number of fields that can
//!   follow it, which prunes paths of the wrong length.
//! - statsd_exporter's construction quirks are kept: a mapping whose match
//!   ends on a state another (longer) match already created never matches,
//!   and a repeated match keeps the first mapping with the later priority.

use std::collections::HashMap;

use regex::Regex;

use super::MetricType;

#[derive(Debug, Default)]
struct State {
    transitions: HashMap<Box<str>, usize>,
    min_remaining: usize,
    max_remaining: usize,
    /// The mapping that ends here.
    result: Option<usize>,
    priority: usize,
}

/// The glob state machine of a mapping file.
#[derive(Debug)]
pub struct Fsm {
    states: Vec<State>,
    ordering_disabled: bool,
    backtracking: bool,
    added: usize,
}

/// A resumption point: take the `*` transition `state` at field
/// `field_index` instead of the literal one.
struct Branch<'n> {
    field_index: usize,
    capture_index: usize,
    capture: &'n str,
    state: usize,
}

fn root(kind: MetricType) -> usize {
    match kind {
        MetricType::Counter => 1,
        MetricType::Gauge => 2,
        MetricType::Observer => 3,
    }
}

impl Fsm {
    /// An empty machine.
    pub fn new(ordering_disabled: bool) -> Self {
        Fsm {
            // 0 is unused; 1-3 start the counter, gauge and observer paths.
            states: (0..4).map(|_| State::default()).collect(),
            ordering_disabled,
            backtracking: true,
            added: 0,
        }
    }

    /// Adds mapping number `mapping` for glob `pattern`, for one metric type
    /// or all; returns the number of `*` fields.
    pub fn add(&mut self, pattern: &str, kind: Option<MetricType>, mapping: usize) -> usize {
        let fields: Vec<&str> = pattern.split('.').collect();
        let roots: Vec<usize> = match kind {
            Some(k) => vec![root(k)],
            None => vec![1, 2, 3],
        };
        let mut captures = 0;
        let mut finals = Vec::with_capacity(roots.len());
        for start in roots {
            captures = 0;
            let mut cur = start;
            for (i, field) in fields.iter().enumerate() {
                let remaining = fields.len() - i - 1;
                let next = match self.states[cur].transitions.get(*field) {
                    Some(&s) => {
                        let st = &mut self.states[s];
                        st.max_remaining = st.max_remaining.max(remaining);
                        st.min_remaining = st.min_remaining.min(remaining);
                        s
                    }
                    None => {
                        self.states.push(State {
                            min_remaining: remaining,
                            max_remaining: remaining,
                            result: (remaining == 0).then_some(mapping),
                            ..State::default()
                        });
                        let s = self.states.len() - 1;
                        self.states[cur].transitions.insert((*field).into(), s);
                        s
                    }
                };
                if *field == "*" {
                    captures += 1;
                }
                cur = next;
            }
            finals.push(cur);
        }
        for s in finals {
            self.states[s].priority = self.added;
        }
        self.added += 1;
        captures
    }

    /// Decides whether lookups must explore `*` alternatives (always, unless
    /// ordering is disabled and no two globs make a literal path hide a
    /// wildcard one). `patterns` are all glob matches in file order.
    pub fn set_backtracking(&mut self, patterns: &[&str]) {
        self.backtracking = !self.ordering_disabled || needs_backtracking(patterns);
    }

    /// The mapping a name matches and the fields its `*`s captured.
    pub fn lookup<'n>(&self, name: &'n str, kind: MetricType) -> Option<(usize, Vec<&'n str>)> {
        let fields: Vec<&str> = name.split('.').collect();
        let n = fields.len();
        let fits = |s: usize, left: usize| {
            let st = &self.states[s];
            left <= st.max_remaining && left >= st.min_remaining
        };
        let mut captures = vec![""; n];
        let mut best: Option<(usize, Vec<&str>)> = None;
        let mut branches: Vec<Branch<'n>> = Vec::new();
        let mut current = root(kind);
        let mut state = current;
        let mut capture_index = 0;
        let mut i = 0;
        let mut resumed = false;
        loop {
            loop {
                if !resumed {
                    let here = &self.states[current];
                    if here.transitions.is_empty() {
                        break;
                    }
                    let field = fields[i];
                    let left = n - i - 1;
                    let literal = here
                        .transitions
                        .get(field)
                        .copied()
                        .filter(|&s| fits(s, left));
                    let wildcard = here
                        .transitions
                        .get("*")
                        .copied()
                        .filter(|&s| fits(s, left));
                    match (literal, wildcard) {
                        (Some(s), alt) => {
                            state = s;
                            if let (true, Some(alt)) = (self.backtracking, alt) {
                                branches.push(Branch {
                                    field_index: i,
                                    capture_index,
                                    capture: field,
                                    state: alt,
                                });
                            }
                        }
                        (None, Some(s)) => {
                            state = s;
                            captures[capture_index] = field;
                            capture_index += 1;
                        }
                        (None, None) => break,
                    }
                }
                let st = &self.states[state];
                if let (Some(result), true) = (st.result, i == n - 1) {
                    if self.ordering_disabled {
                        return Some((result, captures));
                    }
                    let better = best
                        .as_ref()
                        .is_none_or(|(b, _)| self.states[*b].priority > st.priority);
                    if better {
                        best = Some((state, captures.clone()));
                    }
                    break;
                }
                i += 1;
                if i >= n {
                    break;
                }
                resumed = false;
                current = state;
            }
            let Some(b) = branches.pop() else { break };
            state = b.state;
            current = state;
            i = b.field_index;
            capture_index = b.capture_index + 1;
            captures[capture_index - 1] = b.capture;
            resumed = true;
        }
        best.and_then(|(s, caps)| self.states[s].result.map(|r| (r, caps)))
    }
}

fn glob_regex(pattern: &str) -> Option<Regex> {
    let re = pattern.replace('.', r"\.").replace('*', "([^.]*)");
    Regex::new(&format!("^{re}$")).ok()
}

/// statsd_exporter's test: with ordering disabled, lookups need to explore
/// alternatives when a rule with `*` shares a literal prefix with another
/// rule of the same length, unless one of the two contains the other.
fn needs_backtracking(patterns: &[&str]) -> bool {
    let mut by_length: HashMap<usize, Vec<&str>> = HashMap::new();
    for p in patterns {
        by_length.entry(p.split('.').count()).or_default().push(p);
    }
    let mut needed = false;
    for rules in by_length.values() {
        if rules.len() == 1 {
            continue;
        }
        let regexes: Vec<Option<Regex>> = rules.iter().map(|r| glob_regex(r)).collect();
        for (i1, r1) in rules.iter().enumerate() {
            let Some(re1) = &regexes[i1] else { continue };
            if !r1.contains('*') {
                continue;
            }
            let mut this_needs = false;
            for (index, c) in r1.char_indices() {
                if c != '*' {
                    continue;
                }
                let prefix = r1[..index].replace('.', r"\.").replace('*', r"\*");
                let Ok(prefix_re) = Regex::new(&format!("^{prefix}")) else {
                    continue;
                };
                if rules
                    .iter()
                    .enumerate()
                    .any(|(i2, r2)| i2 != i1 && prefix_re.is_match(r2))
                {
                    this_needs = true;
                }
            }
            for (i2, r2) in rules.iter().enumerate() {
                if i2 != i1 && re1.is_match(r2) {
                    this_needs = false;
                }
            }
            for (i2, re2) in regexes.iter().enumerate() {
                if i2 != i1 && re2.as_ref().is_some_and(|re2| re2.is_match(r1)) {
                    this_needs = false;
                }
            }
            if this_needs {
                tracing::warn!(
                    r#match = *r1,
                    "glob mapping needs backtracking; matching may be slower"
                );
                needed = true;
            }
        }
    }
    needed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fsm(patterns: &[&str], ordering_disabled: bool) -> Fsm {
        let mut f = Fsm::new(ordering_disabled);
        for (i, p) in patterns.iter().enumerate() {
            f.add(p, None, i);
        }
        f.set_backtracking(patterns);
        f
    }

    fn get(f: &Fsm, name: &str) -> Option<(usize, Vec<String>)> {
        f.lookup(name, MetricType::Counter).map(|(m, caps)| {
            (
                m,
                caps.into_iter()
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect(),
            )
        })
    }

    #[test]
    fn literal_fields_and_wildcards() {
        let f = fsm(&["test.dispatcher.*.*.*", "*.*", "p.*.*.c.*"], false);
        assert_eq!(
            get(&f, "test.dispatcher.FooProcessor.send.succeeded"),
            Some((
                0,
                vec!["FooProcessor".into(), "send".into(), "succeeded".into()]
            ))
        );
        assert_eq!(
            get(&f, "foo.bar"),
            Some((1, vec!["foo".into(), "bar".into()]))
        );
        assert_eq!(get(&f, "foo.bar.baz"), None);
        assert_eq!(
            get(&f, "p.one.two.c.three"),
            Some((2, vec!["one".into(), "two".into(), "three".into()]))
        );
    }

    #[test]
    fn ordering_prefers_the_earlier_mapping() {
        let f = fsm(&["order.*.*", "order.*.bbb"], false);
        assert_eq!(get(&f, "order.good.bbb").map(|r| r.0), Some(0));
        // Without ordering the more literal path wins.
        let f = fsm(&["noorder.*.*", "noorder.*.bbb", "noorder.ccc.bbb"], true);
        assert_eq!(get(&f, "noorder.good.bbb").map(|r| r.0), Some(1));
        assert_eq!(get(&f, "noorder.ccc.bbb").map(|r| r.0), Some(2));
    }

    #[test]
    fn backtracking_finds_wildcard_paths_behind_literal_ones() {
        let f = fsm(&["backtrack.*.bbb", "backtrack.justatest.aaa"], true);
        assert_eq!(
            get(&f, "backtrack.justatest.bbb"),
            Some((0, vec!["justatest".into()]))
        );
        assert_eq!(get(&f, "backtrack.justatest.aaa").map(|r| r.0), Some(1));
        // Captures of a failed later rule do not leak into the match.
        let f = fsm(&["*.dummy.*", "full.name.*"], false);
        assert_eq!(
            get(&f, "full.name.anothertest"),
            Some((1, vec!["anothertest".into()]))
        );
        assert_eq!(
            get(&f, "whatever.dummy.test"),
            Some((0, vec!["whatever".into(), "test".into()]))
        );
    }

    #[test]
    fn metric_types_have_their_own_paths() {
        let mut f = Fsm::new(false);
        f.add("test.foo.*", Some(MetricType::Counter), 0);
        f.add("test.foo.*", Some(MetricType::Gauge), 1);
        f.set_backtracking(&["test.foo.*", "test.foo.*"]);
        assert_eq!(
            f.lookup("test.foo.x", MetricType::Counter).map(|r| r.0),
            Some(0)
        );
        assert_eq!(
            f.lookup("test.foo.x", MetricType::Gauge).map(|r| r.0),
            Some(1)
        );
        assert_eq!(f.lookup("test.foo.x", MetricType::Observer), None);
    }

    #[test]
    fn construction_quirks_are_kept() {
        // `a.b` ends on a state `a.b.c` created: it never matches.
        let f = fsm(&["a.b.c", "a.b"], false);
        assert_eq!(get(&f, "a.b"), None);
        assert_eq!(get(&f, "a.b.c").map(|r| r.0), Some(0));
        // The other order works.
        let f = fsm(&["a.b", "a.b.c"], false);
        assert_eq!(get(&f, "a.b").map(|r| r.0), Some(0));
        // A literal `*` field in a name takes the `*` transition as literal.
        let f = fsm(&["test.*.*"], false);
        assert_eq!(get(&f, "test.*.*").map(|r| r.0), Some(0));
    }

    #[test]
    fn backtracking_test_like_statsd_exporter() {
        assert!(needs_backtracking(&[
            "backtrack.*.bbb",
            "backtrack.justatest.aaa"
        ]));
        assert!(!needs_backtracking(&[
            "noorder.*.*",
            "noorder.*.bbb",
            "noorder.ccc.bbb"
        ]));
        assert!(!needs_backtracking(&["a.*", "b.*.c"]));
    }
}
