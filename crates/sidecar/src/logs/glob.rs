//! Path globs for `--logs.path`: which files to follow, and which
//! directories to watch for new ones.
//!
//! Syntax per path component, as Go's `filepath.Match`: `*` (any run of
//! characters), `?` (one character), `[abc]`, `[a-z]`, `[!a-z]` or `[^a-z]`,
//! and `\` to escape the next character. A `*` also matches a leading dot.
//! `**` (any depth) is not supported: Kubernetes' `/var/log/pods/*/*/*.log`
//! has a fixed depth. Only regular files match (symbolic links are followed,
//! so `/var/log/containers/*.log` works).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Why a glob is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern is empty.
    #[error("empty pattern")]
    Empty,
    /// A `[` without its `]`.
    #[error("unterminated character class in {0:?}")]
    UnterminatedClass(String),
    /// `**` was used.
    #[error("`**` (any depth) is not supported; use one `*` per directory level")]
    DoubleStar,
    /// A trailing `\`.
    #[error("trailing escape in {0:?}")]
    TrailingEscape(String),
}

#[derive(Debug, Clone)]
enum Part {
    Literal(PathBuf),
    Pattern(Box<[u8]>),
}

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    /// Everything up to the first component with a wildcard.
    base: PathBuf,
    parts: Vec<Part>,
}

/// What one expansion found.
#[derive(Debug, Default)]
pub struct Expansion {
    /// Matching regular files, in directory order.
    pub files: Vec<PathBuf>,
    /// Directories whose entries decide the match (every directory listed
    /// for a wildcard, and the one holding the last component): new files
    /// and directories appear there.
    pub dirs: Vec<PathBuf>,
}

impl Glob {
    /// Compiles `pattern` (absolute, or relative to the working directory).
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        if pattern.is_empty() {
            return Err(GlobError::Empty);
        }
        let mut base = PathBuf::new();
        let mut parts = Vec::new();
        for component in Path::new(pattern).components() {
            let text = component.as_os_str().as_bytes();
            let wild = matches!(component, Component::Normal(_)) && has_wildcard(text)?;
            if wild {
                if text.windows(2).any(|w| w == b"**") {
                    return Err(GlobError::DoubleStar);
                }
                validate(text)?;
                parts.push(Part::Pattern(text.into()));
            } else if parts.is_empty() {
                base.push(component);
            } else {
                let literal = unescape(text);
                parts.push(Part::Literal(PathBuf::from(OsStr::from_bytes(&literal))));
            }
        }
        // A pattern without wildcards is a literal file path: its last
        // component is the one looked up.
        if parts.is_empty() {
            if let Some(name) = base.file_name().map(PathBuf::from) {
                base.pop();
                parts.push(Part::Literal(name));
            }
        }
        if base.as_os_str().is_empty() {
            base.push(".");
        }
        Ok(Glob { base, parts })
    }

    /// Whether `path`, written as [`Glob::expand`] writes paths, matches.
    pub fn matches(&self, path: &Path) -> bool {
        let Ok(rest) = path.strip_prefix(&self.base) else {
            return false;
        };
        let mut components = rest.components();
        self.parts.iter().all(|part| {
            components.next().is_some_and(|c| match part {
                Part::Literal(name) => c.as_os_str() == name.as_os_str(),
                Part::Pattern(p) => component_matches(p, c.as_os_str().as_bytes()),
            })
        }) && components.next().is_none()
    }

    /// The matching files now, and the directories to watch.
    pub fn expand(&self) -> Expansion {
        let mut out = Expansion::default();
        self.walk(self.base.clone(), 0, &mut out);
        out
    }

    fn walk(&self, dir: PathBuf, depth: usize, out: &mut Expansion) {
        let Some(part) = self.parts.get(depth) else {
            return;
        };
        let last = depth + 1 == self.parts.len();
        if last || matches!(part, Part::Pattern(_)) {
            out.dirs.push(dir.clone());
        }
        match part {
            Part::Literal(name) => {
                let path = dir.join(name);
                self.visit(path, last, depth, out);
            }
            Part::Pattern(pattern) => {
                let Ok(entries) = std::fs::read_dir(&dir) else {
                    return;
                };
                let mut names: Vec<_> = entries
                    .filter_map(|e| e.ok().map(|e| e.file_name()))
                    .filter(|n| component_matches(pattern, n.as_bytes()))
                    .collect();
                names.sort();
                for name in names {
                    self.visit(dir.join(name), last, depth, out);
                }
            }
        }
    }

    fn visit(&self, path: PathBuf, last: bool, depth: usize, out: &mut Expansion) {
        let Ok(meta) = std::fs::metadata(&path) else {
            return;
        };
        if last {
            if meta.is_file() {
                out.files.push(path);
            }
        } else if meta.is_dir() {
            self.walk(path, depth + 1, out);
        }
    }
}

fn has_wildcard(text: &[u8]) -> Result<bool, GlobError> {
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\\' => {
                if i + 1 == text.len() {
                    return Err(GlobError::TrailingEscape(lossy(text)));
                }
                i += 2;
                continue;
            }
            b'*' | b'?' | b'[' => return Ok(true),
            _ => {}
        }
        i += 1;
    }
    Ok(false)
}

fn validate(pattern: &[u8]) -> Result<(), GlobError> {
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' => i += 2,
            b'[' => match class_end(pattern, i + 1) {
                Some(end) => i = end + 1,
                None => return Err(GlobError::UnterminatedClass(lossy(pattern))),
            },
            _ => i += 1,
        }
    }
    Ok(())
}

fn unescape(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'\\' && i + 1 < text.len() {
            i += 1;
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The index of the `]` closing a class whose body starts at `start`.
fn class_end(pattern: &[u8], start: usize) -> Option<usize> {
    let mut i = start;
    if matches!(pattern.get(i), Some(b'!' | b'^')) {
        i += 1;
    }
    // A `]` first in the class is a member.
    if pattern.get(i) == Some(&b']') {
        i += 1;
    }
    while i < pattern.len() {
        match pattern[i] {
            b'\\' => i += 2,
            b']' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Whether `name` matches the class body `pattern[start..end]` at `c`.
fn class_matches(pattern: &[u8], start: usize, end: usize, c: u8) -> bool {
    let mut i = start;
    let negated = matches!(pattern.get(i), Some(b'!' | b'^'));
    if negated {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < end {
        let mut lo = pattern[i];
        if lo == b'\\' && i + 1 < end {
            i += 1;
            lo = pattern[i];
        } else if lo == b']' && !first {
            break;
        }
        first = false;
        i += 1;
        let mut hi = lo;
        if i + 1 < end && pattern[i] == b'-' {
            hi = pattern[i + 1];
            if hi == b'\\' && i + 2 < end {
                hi = pattern[i + 2];
                i += 1;
            }
            i += 2;
        }
        if lo <= c && c <= hi {
            hit = true;
        }
    }
    hit != negated
}

/// Whether one path component matches one pattern component (bytes, so
/// a non-UTF-8 file name still matches `*`).
pub fn component_matches(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // Where to resume after the last `*`: (pattern index, name index).
    let mut star: Option<(usize, usize)> = None;
    loop {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, n));
                    p += 1;
                    continue;
                }
                b'?' if n < name.len() => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' if n < name.len() => {
                    if let Some(end) = class_end(pattern, p + 1) {
                        if class_matches(pattern, p + 1, end, name[n]) {
                            p = end + 1;
                            n += 1;
                            continue;
                        }
                    }
                }
                b'\\' if p + 1 < pattern.len() && n < name.len() && pattern[p + 1] == name[n] => {
                    p += 2;
                    n += 1;
                    continue;
                }
                b'\\' if p + 1 < pattern.len() => {}
                c if n < name.len() && c == name[n] && c != b'?' && c != b'[' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        } else if n == name.len() {
            return true;
        }
        match star {
            Some((sp, sn)) if sn < name.len() => {
                star = Some((sp, sn + 1));
                p = sp;
                n = sn + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, n: &str) -> bool {
        component_matches(p.as_bytes(), n.as_bytes())
    }

    #[test]
    fn component_matching_follows_go() {
        assert!(m("*.log", "app.log"));
        assert!(m("*.log", ".log"));
        assert!(!m("*.log", "app.log.1"));
        assert!(m("*.log*", "app.log.1"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("[ab]x", "bx"));
        assert!(!m("[!ab]x", "bx"));
        assert!(m("[^ab]x", "cx"));
        assert!(m("[a-c]", "b"));
        assert!(!m("[a-c]", "d"));
        assert!(m("[]]", "]"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b", "xxaxxbxxc"));
        assert!(m("*", ""));
        assert!(!m("?", ""));
        assert!(m("0.log", "0.log"));
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert_eq!(Glob::new("").unwrap_err(), GlobError::Empty);
        assert_eq!(Glob::new("/a/**/x").unwrap_err(), GlobError::DoubleStar);
        assert!(matches!(
            Glob::new("/a/[ab").unwrap_err(),
            GlobError::UnterminatedClass(_)
        ));
        assert!(matches!(
            Glob::new("/a/b\\").unwrap_err(),
            GlobError::TrailingEscape(_)
        ));
    }

    #[test]
    fn expansion_walks_wildcard_levels_and_lists_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for p in [
            "ns_a/c1/0.log",
            "ns_a/c1/1.log",
            "ns_b/c2/0.log",
            "ns_b/c2/x.txt",
        ] {
            let path = root.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, "").unwrap();
        }
        std::fs::create_dir_all(root.join("ns_c/dir.log")).unwrap();
        let g = Glob::new(&format!("{}/*/*/*.log", root.display())).unwrap();
        let e = g.expand();
        let rel: Vec<_> = e
            .files
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_str().unwrap().to_string())
            .collect();
        assert_eq!(rel, ["ns_a/c1/0.log", "ns_a/c1/1.log", "ns_b/c2/0.log"]);
        // Every listed directory, so a new pod directory is noticed.
        for d in ["", "ns_a", "ns_b", "ns_a/c1", "ns_b/c2"] {
            assert!(e.dirs.contains(&root.join(d)), "{d}");
        }

        assert!(g.matches(&root.join("ns_x/c/9.log")));
        assert!(!g.matches(&root.join("ns_x/c/9.log.1")));
        assert!(!g.matches(&root.join("ns_x/9.log")));
        assert!(!g.matches(Path::new("/elsewhere/a/b/c.log")));

        let literal = Glob::new(&format!("{}/ns_a/c1/0.log", root.display())).unwrap();
        let e = literal.expand();
        assert_eq!(e.files, [root.join("ns_a/c1/0.log")]);
        assert_eq!(e.dirs, [root.join("ns_a/c1")]);
        // A literal that does not exist yet still names the directory to
        // watch.
        let missing = Glob::new(&format!("{}/new.log", root.display())).unwrap();
        let e = missing.expand();
        assert!(e.files.is_empty());
        assert_eq!(e.dirs, [root.to_path_buf()]);
    }
}
