//! What did not parse in a file, so that corrupt input is reported instead
//! of dressed up as data.
//!
//! A parser that meets a line or field it cannot read leaves it out (no
//! made-up zero takes its place) and notes it in a [`Malformed`]; the
//! collector exports what did parse and then fails with
//! [`Malformed::into_result`], which names the file, the first problems
//! and their lines. `node_scrape_collector_success` is then 0 and the
//! failure is logged (once while it persists).

use std::fmt::{self, Display};
use std::path::Path;

use oxmon_core::collector::CollectResult;

/// Problems kept for the error message; the rest are only counted.
const KEPT: usize = 3;

/// The longest excerpt of a line quoted in a problem.
const EXCERPT: usize = 60;

/// The malformed lines or fields of one file.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Malformed {
    kept: Vec<String>,
    count: usize,
}

impl Malformed {
    /// Notes that `line` (1-based) could not be read: `why`, quoting `text`.
    pub fn line(&mut self, line: usize, text: &str, why: impl Display) {
        self.count += 1;
        if self.kept.len() < KEPT {
            self.kept
                .push(format!("line {line} {:?}: {why}", excerpt(text)));
        }
    }

    /// Notes a problem that is not about one line (a missing header).
    pub fn note(&mut self, why: impl Display) {
        self.count += 1;
        if self.kept.len() < KEPT {
            self.kept.push(why.to_string());
        }
    }

    /// True when everything parsed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// How many problems were noted.
    #[cfg(test)]
    pub fn count(&self) -> usize {
        self.count
    }

    /// `Ok` when everything parsed, else an error naming `path` and the
    /// problems.
    pub fn into_result(self, path: &Path) -> CollectResult {
        if self.is_empty() {
            return Ok(());
        }
        Err(format!("{}: {self}", path.display()).into())
    }
}

impl Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kept.join("; "))?;
        let more = self.count - self.kept.len();
        if more > 0 {
            write!(f, "; and {more} more")?;
        }
        Ok(())
    }
}

/// The start of `text`, at most [`EXCERPT`] bytes, cut at a character
/// boundary.
fn excerpt(text: &str) -> &str {
    if text.len() <= EXCERPT {
        return text;
    }
    let mut end = EXCERPT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_file_and_the_first_problems() {
        let mut m = Malformed::default();
        assert!(m.clone().into_result(Path::new("/proc/x")).is_ok());
        m.line(2, "MemTotal: abc kB", "value is not a number");
        m.line(3, &"é".repeat(100), "no colon");
        m.note("no header line");
        m.line(9, "x", "y");
        assert_eq!(m.count(), 4);
        let e = m.into_result(Path::new("/proc/meminfo")).unwrap_err();
        let e = e.to_string();
        assert!(
            e.starts_with(
                "/proc/meminfo: line 2 \"MemTotal: abc kB\": value is not a number; line 3 \"ééé"
            ),
            "{e}"
        );
        assert!(
            e.ends_with("\": no colon; no header line; and 1 more"),
            "{e}"
        );
        assert_eq!(e.matches('é').count(), 30);
    }
}
