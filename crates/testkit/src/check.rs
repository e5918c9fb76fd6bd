//! Golden files with readable diffs, and `promtool`.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::require_program;

/// Compares `actual` with the golden file at `path`. With `UPDATE_GOLDEN=1`
/// in the environment it (re)writes the file instead and passes. A mismatch
/// panics with a line diff (`-` golden, `+` actual) and how to update.
pub fn assert_golden(path: impl AsRef<Path>, actual: &str) {
    let path = path.as_ref();
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        }
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "read golden file {}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        panic!(
            "output differs from golden file {} (- golden, + actual; UPDATE_GOLDEN=1 rewrites it):\n{}",
            path.display(),
            line_diff(&expected, actual)
        );
    }
}

/// A line diff of two texts: changed lines with `-`/`+` and up to two lines
/// of context, hunks separated by `@@ line N`. Empty when equal.
pub fn line_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    // The common head and tail are context; the LCS table covers the middle.
    let head = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let tail = a[head..]
        .iter()
        .rev()
        .zip(b[head..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (mid_a, mid_b) = (&a[head..a.len() - tail], &b[head..b.len() - tail]);
    let (n, m) = (mid_a.len(), mid_b.len());
    // Edit script: (' ' | '-' | '+', line, golden line number).
    let mut ops: Vec<(char, &str, usize)> = a[..head]
        .iter()
        .enumerate()
        .map(|(k, l)| (' ', *l, k + 1))
        .collect();
    if n.saturating_mul(m) > 20_000_000 {
        // Too big for the table: show the middle as removed, then added.
        ops.extend(
            mid_a
                .iter()
                .enumerate()
                .map(|(k, l)| ('-', *l, head + k + 1)),
        );
        ops.extend(mid_b.iter().map(|l| ('+', *l, head + n + 1)));
    } else {
        let mut lcs = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                lcs[i][j] = if mid_a[i] == mid_b[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && mid_a[i] == mid_b[j] {
                ops.push((' ', mid_a[i], head + i + 1));
                i += 1;
                j += 1;
            } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
                ops.push(('-', mid_a[i], head + i + 1));
                i += 1;
            } else {
                ops.push(('+', mid_b[j], head + i + 1));
                j += 1;
            }
        }
    }
    let n = a.len();
    ops.extend(
        a[n - tail..]
            .iter()
            .enumerate()
            .map(|(k, l)| (' ', *l, n - tail + k + 1)),
    );
    if expected.ends_with('\n') != actual.ends_with('\n') {
        ops.push(('!', "(the texts differ in their final newline)", n + 1));
    }
    const CONTEXT: usize = 2;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::new();
    let mut last_printed: Option<usize> = None;
    for &k in &changed {
        let start = k.saturating_sub(CONTEXT);
        let end = (k + CONTEXT + 1).min(ops.len());
        let from = match last_printed {
            Some(p) if p + 1 >= start => p + 1,
            _ => {
                out.push_str(&format!("@@ line {}\n", ops[start].2));
                start
            }
        };
        for (op, line, _) in &ops[from.min(end)..end] {
            out.push_str(&format!("{op} {line}\n"));
        }
        last_printed = Some(end - 1).max(last_printed);
    }
    out
}

/// Runs `promtool args…` with `stdin` as input; `Ok(stdout)` on exit 0,
/// else `Err` with the status and all output. Panics with "promtool not
/// found: apt-get install prometheus" when it is missing.
pub fn promtool(args: &[&str], stdin: &str) -> Result<String, String> {
    let bin = require_program("promtool", "prometheus");
    let mut child = Command::new(bin)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn promtool: {e}"));
    let mut input = child.stdin.take().expect("promtool stdin");
    let written = input.write_all(stdin.as_bytes());
    drop(input);
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait for promtool: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() && written.is_ok() {
        Ok(stdout)
    } else {
        Err(format!(
            "promtool {args:?} failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// `promtool check metrics` on exposition text (0.0.4: this promtool's
/// parser reads the classic format). `Err` holds promtool's complaints
/// (syntax errors and lint problems alike).
pub fn promtool_check_metrics(text: &str) -> Result<(), String> {
    promtool(&["check", "metrics"], text).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_show_changes_with_context() {
        assert_eq!(line_diff("a\nb\n", "a\nb\n"), "");
        let d = line_diff(
            "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n",
            "1\n2\n3\n4\nfive\n6\n7\n8\n9\n10\n11\ntwelve\n",
        );
        assert_eq!(
            d,
            "@@ line 3\n  3\n  4\n- 5\n+ five\n  6\n  7\n@@ line 10\n  10\n  11\n+ twelve\n"
        );
        assert!(line_diff("x\n", "x").contains("final newline"));
    }

    #[test]
    fn golden_files_update_and_compare() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.txt");
        std::fs::write(&path, "a 1\n").unwrap();
        assert_golden(&path, "a 1\n");
        let err = std::panic::catch_unwind(|| assert_golden(&path, "a 2\n")).unwrap_err();
        let msg = err.downcast_ref::<String>().unwrap();
        assert!(msg.contains("- a 1\n+ a 2"), "{msg}");
        assert!(msg.contains("UPDATE_GOLDEN=1"), "{msg}");
    }

    #[test]
    fn promtool_checks_metrics() {
        promtool_check_metrics("# HELP x_total A counter.\n# TYPE x_total counter\nx_total 1\n")
            .unwrap();
        let err = promtool_check_metrics("# TYPE x counter\nx 1\n").unwrap_err();
        assert!(err.contains("x"), "{err}");
    }
}
