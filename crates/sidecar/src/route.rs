//! Route patterns: a request path becomes the `route` label of the pattern
//! it matches, so `/users/42` and `/users/43` count as one series. The HTTP
//! tap and the log source both label requests through [`Routes`].
//!
//! Pattern syntax, `/`-separated segments:
//! - literal text matches itself: `/healthz`;
//! - `{name}` (letters, digits, `_`) matches one non-empty segment, or the
//!   part of one up to the literal text that follows it:
//!   `/users/{id}`, `/v1/models/{model}:predict`, `/a/{x}.{y}`;
//! - `*` as the whole last segment matches the rest of the path, empty
//!   included: `/static/*` matches `/static/` and `/static/css/a.css`, not
//!   `/static`.
//!
//! A path is matched as sent (percent-encoding included) up to its query
//! string or fragment: `/users/7?x=1#top` is `/users/7`. Slashes are
//! significant: `/users/7/` does not match `/users/{id}` (write the pattern
//! `/users/{id}/` for that), and neither does `/users//7`. So `?` and `#`
//! cannot appear in a pattern.
//!
//! The first pattern that matches, in configuration order, wins; a path no
//! pattern matches is [`OTHER`]. Matching walks the path's segments once per
//! pattern and allocates nothing; the log source runs it on every line.

/// The route of a path no pattern matches.
pub const OTHER: &str = "other";

/// Why a route pattern is unusable.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("route pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as configured.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// One `/`-separated segment of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Matches exactly this text.
    Literal(Box<str>),
    /// `{name}`: any non-empty segment.
    Param,
    /// Parameters mixed with literal text, never two parameters in a row.
    Mixed(Box<[Piece]>),
    /// `*`: the rest of the path.
    Rest,
}

/// A part of a [`Segment::Mixed`].
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Box<str>),
    Param,
}

/// Compiled route patterns.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    patterns: Vec<(Box<str>, Box<[Segment]>)>,
}

impl Routes {
    /// Compiles `patterns`, in matching order.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Routes, PatternError> {
        let patterns = patterns
            .iter()
            .map(|p| Ok((p.as_ref().into(), compile(p.as_ref())?)))
            .collect::<Result<_, _>>()?;
        Ok(Routes { patterns })
    }

    /// The route label of `path`: the first matching pattern, else
    /// [`OTHER`].
    pub fn route(&self, path: &str) -> &str {
        self.label(self.index(path))
    }

    /// The index of the first pattern matching `path`.
    pub fn index(&self, path: &str) -> Option<usize> {
        let end = path.find(['?', '#']).unwrap_or(path.len());
        let body = path[..end].strip_prefix('/')?;
        self.patterns
            .iter()
            .position(|(_, segments)| matches(segments, body))
    }

    /// The label of an [`Routes::index`] result.
    pub fn label(&self, index: Option<usize>) -> &str {
        index
            .and_then(|i| self.patterns.get(i))
            .map_or(OTHER, |(pattern, _)| pattern)
    }
}

/// The segments of one pattern.
fn compile(pattern: &str) -> Result<Box<[Segment]>, PatternError> {
    let err = |reason| PatternError {
        pattern: pattern.to_string(),
        reason,
    };
    let body = pattern
        .strip_prefix('/')
        .ok_or_else(|| err("must start with /"))?;
    if body.contains(['?', '#']) {
        return Err(err(
            "? and # cannot match: the query string and fragment are ignored",
        ));
    }
    let texts: Vec<&str> = body.split('/').collect();
    let mut segments = Vec::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        if text.contains('*') {
            if *text != "*" || i + 1 != texts.len() {
                return Err(err("* must be the whole last segment"));
            }
            segments.push(Segment::Rest);
            continue;
        }
        let pieces = pieces(text).map_err(err)?;
        segments.push(match &pieces[..] {
            [Piece::Param] => Segment::Param,
            [Piece::Literal(l)] => Segment::Literal(l.clone()),
            [] => Segment::Literal("".into()),
            _ => Segment::Mixed(pieces.into()),
        });
    }
    Ok(segments.into())
}

/// The literal text and parameters of one segment's text.
fn pieces(mut text: &str) -> Result<Vec<Piece>, &'static str> {
    let mut out = Vec::new();
    while !text.is_empty() {
        if let Some(after) = text.strip_prefix('{') {
            if out.last() == Some(&Piece::Param) {
                return Err("two parameters need literal text between them");
            }
            let end = after.find('}').ok_or("{ without }")?;
            let name = &after[..end];
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err("a parameter name is letters, digits and _");
            }
            out.push(Piece::Param);
            text = &after[end + 1..];
        } else {
            let end = text.find(['{', '}']).unwrap_or(text.len());
            if text[end..].starts_with('}') {
                return Err("} without {");
            }
            out.push(Piece::Literal(text[..end].into()));
            text = &text[end..];
        }
    }
    Ok(out)
}

/// Whether `body` (the path after its leading `/`, without query string or
/// fragment) matches `segments`.
fn matches(segments: &[Segment], body: &str) -> bool {
    let mut parts = body.split('/');
    for segment in segments {
        let Some(part) = parts.next() else {
            return false;
        };
        let ok = match segment {
            Segment::Rest => return true,
            Segment::Literal(l) => part == &**l,
            Segment::Param => !part.is_empty(),
            Segment::Mixed(pieces) => matches_pieces(pieces, part.as_bytes()),
        };
        if !ok {
            return false;
        }
    }
    parts.next().is_none()
}

/// Whether one segment matches literal text and parameters (each one or
/// more bytes). Wildcard matching that only ever widens the latest
/// parameter: widening an earlier one never finds a match the latest
/// cannot, so this takes at most segment × pattern steps.
fn matches_pieces(pieces: &[Piece], part: &[u8]) -> bool {
    let (mut p, mut i) = (0, 0);
    // The piece after the latest parameter and where that parameter ends.
    let mut widen: Option<(usize, usize)> = None;
    loop {
        let advanced = match pieces.get(p) {
            None if i == part.len() => return true,
            None => false,
            Some(Piece::Param) if i < part.len() => {
                widen = Some((p + 1, i + 1));
                p += 1;
                i += 1;
                true
            }
            Some(Piece::Param) => false,
            Some(Piece::Literal(l)) if part[i..].starts_with(l.as_bytes()) => {
                p += 1;
                i += l.len();
                true
            }
            Some(Piece::Literal(_)) => false,
        };
        if !advanced {
            match widen {
                Some((after, end)) if end < part.len() => {
                    widen = Some((after, end + 1));
                    (p, i) = (after, end + 1);
                }
                _ => return false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_take_the_first_matching_pattern() {
        let r = Routes::new(&[
            "/users/me",
            "/users/{id}",
            "/users/{id}/orders",
            "/users/{id}/orders/{order}",
            "/v1/models/{model}:predict",
            "/v1/models/{model}/predict",
            "/a/{x}.{y}/b",
            "/static/*",
            "/",
        ])
        .unwrap();
        for (path, route) in [
            ("/", "/"),
            ("/?q=1", "/"),
            ("/#top", "/"),
            ("/users/me", "/users/me"),
            ("/users/42", "/users/{id}"),
            ("/users/7?x=/y", "/users/{id}"),
            ("/users/7#a/b", "/users/{id}"),
            ("/users/a%2Fb", "/users/{id}"),
            ("/users/42/", OTHER),
            ("/users/", OTHER),
            ("/users", OTHER),
            ("/users//orders", OTHER),
            ("/users/7/orders", "/users/{id}/orders"),
            ("/users/42/orders/7", "/users/{id}/orders/{order}"),
            ("/users/7/orders/9/x", OTHER),
            ("/v1/models/resnet:predict", "/v1/models/{model}:predict"),
            ("/v1/models/a:b:predict", "/v1/models/{model}:predict"),
            ("/v1/models/:predict", OTHER),
            ("/v1/models/resnet:predicted", OTHER),
            ("/v1/models/resnet/predict", "/v1/models/{model}/predict"),
            ("/v1/models/resnet", OTHER),
            ("/a/x.y/b", "/a/{x}.{y}/b"),
            ("/a/x.y.z/b", "/a/{x}.{y}/b"),
            ("/a/.y/b", OTHER),
            ("/a/x./b", OTHER),
            ("/static/", "/static/*"),
            ("/static/css/a.css", "/static/*"),
            (&format!("/static{}", "/x".repeat(40)), "/static/*"),
            ("/static", OTHER),
            ("/nope", OTHER),
            ("users/7", OTHER),
            ("", OTHER),
            (&"/x".repeat(40), OTHER),
        ] {
            assert_eq!(r.route(path), route, "{path}");
        }
        // Regex characters in literals are literal.
        let r = Routes::new(&["/a.b/(x)+"]).unwrap();
        assert_eq!(r.route("/a.b/(x)+"), "/a.b/(x)+");
        assert_eq!(r.route("/axb/(x)+"), OTHER);
        assert_eq!(Routes::default().route("/anything"), OTHER);
        assert_eq!(Routes::new::<&str>(&[]).unwrap().index("/"), None);
    }

    #[test]
    fn a_trailing_slash_is_matched_as_written() {
        let r = Routes::new(&["/users/{id}/", "/*"]).unwrap();
        assert_eq!(r.route("/users/7/"), "/users/{id}/");
        assert_eq!(r.route("/users/7"), "/*");
        assert_eq!(r.route("/"), "/*");
    }

    #[test]
    fn bad_patterns_are_rejected_with_the_reason() {
        for (pattern, reason) in [
            ("users/{id}", "must start with /"),
            ("", "must start with /"),
            ("/users/{id", "{ without }"),
            ("/users/id}", "} without {"),
            ("/users/{}", "a parameter name is letters, digits and _"),
            ("/users/{a-b}", "a parameter name is letters, digits and _"),
            ("/users/{a/b}", "{ without }"),
            (
                "/users/{a}{b}",
                "two parameters need literal text between them",
            ),
            ("/static*", "* must be the whole last segment"),
            ("/*/x", "* must be the whole last segment"),
            ("/a/*/b", "* must be the whole last segment"),
            (
                "/search?q={q}",
                "? and # cannot match: the query string and fragment are ignored",
            ),
            (
                "/page#top",
                "? and # cannot match: the query string and fragment are ignored",
            ),
        ] {
            let e = Routes::new(&[pattern]).unwrap_err();
            assert_eq!(e.reason, reason, "{pattern}");
            assert_eq!(e.pattern, pattern);
        }
    }
}
