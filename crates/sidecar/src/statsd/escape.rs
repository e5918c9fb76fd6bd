//! statsd_exporter's metric and label name escaping: every character other
//! than `[a-zA-Z0-9_]` becomes `_`, a run of dashes becomes a single `_`,
//! and a leading digit gets a `_` in front.

use std::borrow::Cow;

/// Escapes a StatsD name (or tag key) into a valid Prometheus name; borrows
/// when nothing changes.
pub fn escape_metric_name(name: &str) -> Cow<'_, str> {
    let starts_with_digit = name.as_bytes().first().is_some_and(u8::is_ascii_digit);
    let clean = name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if clean && !starts_with_digit {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 1);
    if starts_with_digit {
        out.push('_');
    }
    let mut prev = '\0';
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            out.push(c);
        } else if c == '-' && prev == '-' {
            // A dash after a dash adds nothing (statsd_exporter allows `--`
            // in mapped names and keeps the default case consistent).
            continue;
        } else {
            out.push('_');
        }
        prev = c;
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_statsd_exporter() {
        let cases = [
            ("clean", "clean"),
            ("0starts_with_digit", "_0starts_with_digit"),
            ("with_underscore", "with_underscore"),
            ("with.dot", "with_dot"),
            ("with😱emoji", "with_emoji"),
            ("with.*.multiple", "with___multiple"),
            ("test.web-server.foo.bar", "test_web_server_foo_bar"),
            ("", ""),
            ("a--b", "a_b"),
            ("a---b", "a_b"),
            ("a-.-b", "a___b"),
            ("tag.with.dots", "tag_with_dots"),
            ("09digits", "_09digits"),
        ];
        for (input, want) in cases {
            assert_eq!(escape_metric_name(input), want, "{input:?}");
        }
        assert!(matches!(escape_metric_name("ok_name"), Cow::Borrowed(_)));
    }
}
