//! Route patterns: a request path becomes the `route` label of the pattern
//! it matches, so `/users/42` and `/users/43` count as one series.
//!
//! Pattern syntax (matched against the path without the query string, as
//! sent, percent-encoding included):
//! - literal text matches itself: `/healthz`;
//! - `{name}` matches one non-empty path segment or the part of it up to the
//!   literal that follows: `/users/{id}`, `/v1/models/{model}:predict`;
//! - `*` as the last segment matches the rest of the path, empty included:
//!   `/static/*` matches `/static/` and `/static/css/a.css`, not `/static`.
//!
//! The first pattern that matches, in configuration order, wins; a path no
//! pattern matches is [`OTHER`]. The patterns are compiled into one
//! `RegexSet`, so matching takes time linear in the path whatever the
//! patterns.

use regex::RegexSet;

/// The route of a path no pattern matches.
pub const OTHER: &str = "other";

/// Why a route pattern is unusable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("route pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as configured.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Compiled route patterns.
#[derive(Debug, Clone)]
pub struct Routes {
    patterns: Vec<String>,
    set: RegexSet,
}

impl Routes {
    /// Compiles `patterns`, in matching order.
    pub fn new(patterns: &[String]) -> Result<Routes, PatternError> {
        let regexes = patterns
            .iter()
            .map(|p| pattern_regex(p))
            .collect::<Result<Vec<_>, _>>()?;
        let set = RegexSet::new(&regexes).map_err(|_| PatternError {
            pattern: patterns.join(" "),
            reason: "the patterns together are too large",
        })?;
        Ok(Routes {
            patterns: patterns.to_vec(),
            set,
        })
    }

    /// The route label of `path`: the first matching pattern, else
    /// [`OTHER`].
    pub fn route(&self, path: &str) -> &str {
        self.label(self.route_index(path))
    }

    /// The index of the first pattern matching `path`.
    pub fn route_index(&self, path: &str) -> Option<usize> {
        if self.patterns.is_empty() {
            return None;
        }
        self.set.matches(path).iter().next()
    }

    /// The label of a [`Routes::route_index`] result.
    pub fn label(&self, index: Option<usize>) -> &str {
        index.map_or(OTHER, |i| &self.patterns[i])
    }

    /// The patterns, in matching order.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// The anchored regex of one pattern.
fn pattern_regex(pattern: &str) -> Result<String, PatternError> {
    let err = |reason| PatternError {
        pattern: pattern.to_string(),
        reason,
    };
    if !pattern.starts_with('/') {
        return Err(err("must start with /"));
    }
    let mut re = String::with_capacity(pattern.len() * 2 + 2);
    re.push('^');
    let mut rest = pattern;
    // Whether the text just written was a parameter, which must not be
    // followed directly by another (where one ends would be ambiguous).
    let mut after_param = false;
    while let Some(c) = rest.chars().next() {
        match c {
            '{' => {
                if after_param {
                    return Err(err("two parameters need literal text between them"));
                }
                let end = rest.find('}').ok_or_else(|| err("{ without }"))?;
                let name = &rest[1..end];
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(err("a parameter name is letters, digits and _"));
                }
                re.push_str("[^/]+");
                rest = &rest[end + 1..];
                after_param = true;
                continue;
            }
            '}' => return Err(err("} without {")),
            '*' => {
                if rest.len() != 1 || !re.ends_with('/') {
                    return Err(err("* must be the whole last segment"));
                }
                re.push_str(".*");
            }
            _ => {
                let mut buf = [0; 4];
                re.push_str(&regex::escape(c.encode_utf8(&mut buf)));
            }
        }
        after_param = false;
        rest = &rest[c.len_utf8()..];
    }
    re.push('$');
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes(patterns: &[&str]) -> Routes {
        Routes::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn paths_take_the_first_matching_pattern() {
        let r = routes(&[
            "/users/me",
            "/users/{id}",
            "/users/{id}/orders/{order}",
            "/v1/models/{model}:predict",
            "/static/*",
            "/",
        ]);
        for (path, route) in [
            ("/users/me", "/users/me"),
            ("/users/42", "/users/{id}"),
            ("/users/42/", OTHER),
            ("/users/", OTHER),
            ("/users/42/orders/7", "/users/{id}/orders/{order}"),
            ("/v1/models/resnet:predict", "/v1/models/{model}:predict"),
            ("/v1/models/a:b:predict", "/v1/models/{model}:predict"),
            ("/v1/models/:predict", OTHER),
            ("/v1/models/resnet", OTHER),
            ("/static/", "/static/*"),
            ("/static/css/a.css", "/static/*"),
            ("/static", OTHER),
            ("/", "/"),
            ("/users/a%2Fb", "/users/{id}"),
            ("", OTHER),
        ] {
            assert_eq!(r.route(path), route, "{path}");
        }
        // Regex characters in literals are literal.
        let r = routes(&["/a.b/(x)+"]);
        assert_eq!(r.route("/a.b/(x)+"), "/a.b/(x)+");
        assert_eq!(r.route("/axb/(x)+"), OTHER);
        assert_eq!(routes(&[]).route("/anything"), OTHER);
    }

    #[test]
    fn bad_patterns_are_rejected_with_the_reason() {
        for (pattern, reason) in [
            ("users/{id}", "must start with /"),
            ("/users/{id", "{ without }"),
            ("/users/id}", "} without {"),
            ("/users/{}", "a parameter name is letters, digits and _"),
            ("/users/{a-b}", "a parameter name is letters, digits and _"),
            (
                "/users/{a}{b}",
                "two parameters need literal text between them",
            ),
            ("/static*", "* must be the whole last segment"),
            ("/*/x", "* must be the whole last segment"),
        ] {
            let e = Routes::new(&[pattern.to_string()]).unwrap_err();
            assert_eq!(e.reason, reason, "{pattern}");
            assert_eq!(e.pattern, pattern);
        }
    }
}
