//! Route normalisation: a request path to the configured pattern it
//! matches, so `route` labels stay few (`/users/7` → `/users/{id}`).
//!
//! A pattern is a path whose segments are literal, `{name}` (exactly one
//! non-empty segment) or, last, `*` (the rest, zero or more segments).
//! Patterns are tried in order; the first match is the label value, and a
//! path no pattern matches is [`OTHER`]. The query string and fragment are
//! ignored, and so is one trailing slash (`/users/7/` matches
//! `/users/{id}`).

/// The route of a path no pattern matches.
pub const OTHER: &str = "other";

/// Why a pattern is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// It does not start with `/`.
    #[error("route pattern {0:?} does not start with '/'")]
    NotAbsolute(String),
    /// `*` not last.
    #[error("route pattern {0:?}: '*' must be the last segment")]
    StarNotLast(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(Box<str>),
    Param,
    Rest,
}

/// Compiled patterns.
#[derive(Debug, Clone, Default)]
pub struct Routes {
    patterns: Vec<(Box<str>, Vec<Segment>)>,
}

impl Routes {
    /// Compiles `patterns`, in match order.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Routes, RouteError> {
        let mut out = Vec::with_capacity(patterns.len());
        for p in patterns {
            let p = p.as_ref();
            let Some(body) = p.strip_prefix('/') else {
                return Err(RouteError::NotAbsolute(p.into()));
            };
            let body = body.strip_suffix('/').unwrap_or(body);
            let mut segments = Vec::new();
            if !body.is_empty() {
                let parts: Vec<&str> = body.split('/').collect();
                for (i, s) in parts.iter().enumerate() {
                    segments.push(if *s == "*" {
                        if i + 1 != parts.len() {
                            return Err(RouteError::StarNotLast(p.into()));
                        }
                        Segment::Rest
                    } else if s.starts_with('{') && s.ends_with('}') && s.len() >= 2 {
                        Segment::Param
                    } else {
                        Segment::Literal((*s).into())
                    });
                }
            }
            out.push((p.into(), segments));
        }
        Ok(Routes { patterns: out })
    }

    /// The route label of `path`.
    pub fn route(&self, path: &str) -> &str {
        self.label(self.index(path))
    }

    /// The index of the first pattern `path` matches.
    pub fn index(&self, path: &str) -> Option<usize> {
        let end = path.find(['?', '#']).unwrap_or(path.len());
        let body = path[..end].strip_prefix('/')?;
        let body = body.strip_suffix('/').unwrap_or(body);
        // Split once for every pattern (no allocation: a fixed array).
        let mut parts = [""; MAX_SEGMENTS];
        let mut n = 0;
        if !body.is_empty() {
            let mut start = 0;
            for (i, c) in body.bytes().enumerate().chain([(body.len(), b'/')]) {
                if c != b'/' {
                    continue;
                }
                if n == MAX_SEGMENTS {
                    return self
                        .patterns
                        .iter()
                        .position(|(_, segments)| matches(segments, body));
                }
                parts[n] = &body[start..i];
                n += 1;
                start = i + 1;
            }
        }
        self.patterns
            .iter()
            .position(|(_, segments)| matches_parts(segments, &parts[..n]))
    }

    /// The label of a pattern index ([`OTHER`] for none).
    pub fn label(&self, index: Option<usize>) -> &str {
        index
            .and_then(|i| self.patterns.get(i))
            .map_or(OTHER, |(name, _)| name)
    }
}

/// Most path segments split up front; longer paths are split per pattern.
const MAX_SEGMENTS: usize = 32;

/// Whether `body` (the path without its leading and trailing `/`) matches.
fn matches(segments: &[Segment], body: &str) -> bool {
    if body.is_empty() {
        return segments.first().is_none_or(|s| *s == Segment::Rest);
    }
    let mut parts = body.split('/');
    for seg in segments {
        let ok = match seg {
            Segment::Rest => return true,
            Segment::Literal(l) => parts.next() == Some(&**l),
            Segment::Param => parts.next().is_some_and(|p| !p.is_empty()),
        };
        if !ok {
            return false;
        }
    }
    parts.next().is_none()
}

/// [`matches`] on a path split once into `parts`.
fn matches_parts(segments: &[Segment], parts: &[&str]) -> bool {
    for (i, seg) in segments.iter().enumerate() {
        let ok = match seg {
            Segment::Rest => return true,
            Segment::Literal(l) => parts.get(i) == Some(&&**l),
            Segment::Param => parts.get(i).is_some_and(|p| !p.is_empty()),
        };
        if !ok {
            return false;
        }
    }
    parts.len() == segments.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_the_first_matching_pattern() {
        let r = Routes::new(&[
            "/",
            "/users/{id}",
            "/users/{id}/orders",
            "/v1/models/{model}/predict",
            "/static/*",
            "/users/me",
        ])
        .unwrap();
        for (path, route) in [
            ("/", "/"),
            ("/?q=1", "/"),
            ("/users/7", "/users/{id}"),
            ("/users/7/", "/users/{id}"),
            ("/users/7?x=/y", "/users/{id}"),
            ("/users/me", "/users/{id}"),
            ("/users/7/orders", "/users/{id}/orders"),
            ("/users/7/orders/9", OTHER),
            ("/users", OTHER),
            ("/users/", OTHER),
            ("/users//orders", OTHER),
            ("/v1/models/resnet/predict", "/v1/models/{model}/predict"),
            ("/v1/models/resnet", OTHER),
            ("/static", "/static/*"),
            ("/static/css/a.css", "/static/*"),
            ("/nope", OTHER),
            ("users/7", OTHER),
            ("", OTHER),
            (&"/x".repeat(40), OTHER),
            (&format!("/static{}", "/x".repeat(40)), "/static/*"),
        ] {
            assert_eq!(r.route(path), route, "{path}");
        }
        assert_eq!(Routes::default().route("/users/7"), OTHER);
    }

    #[test]
    fn bad_patterns_are_rejected() {
        assert_eq!(
            Routes::new(&["users"]).unwrap_err(),
            RouteError::NotAbsolute("users".into())
        );
        assert_eq!(
            Routes::new(&["/a/*/b"]).unwrap_err(),
            RouteError::StarNotLast("/a/*/b".into())
        );
    }
}
