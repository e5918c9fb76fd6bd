//! Name and label templates of glob mappings (`$1`, `${1}`), expanded the
//! way statsd_exporter expands them, quirks included:
//!
//! - a reference is `$` or `${`, then a run of `[a-zA-Z0-9_$]`, then an
//!   optional `}`; so `$1_foo` is one reference to a group named `1_foo`,
//!   which is no number and expands to nothing (write `${1}_foo`);
//! - a reference to no group (0, beyond the number of `*`s, not a number)
//!   expands to nothing;
//! - each reference is replaced everywhere in the template in turn, and the
//!   captures are then put in with Go's `Sprintf`, so `%` in a template is a
//!   formatting directive there too (`%%` is `%`).

use std::sync::OnceLock;

use regex::Regex;

/// A compiled template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// The template with every usable reference replaced by `%s`.
    format: String,
    /// The capture (0-based) for each `%s`, in order.
    captures: Vec<usize>,
}

fn reference_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\$\{?([a-zA-Z0-9_$]+)\}?").expect("valid regex"))
}

impl Template {
    /// Compiles `template` for a match with `capture_count` wildcards.
    pub fn new(template: &str, capture_count: usize) -> Self {
        let mut format = template.to_string();
        let mut captures = Vec::new();
        for m in reference_re().captures_iter(template) {
            let whole = &m[0];
            match m[1].parse::<usize>() {
                Ok(i) if (1..=capture_count).contains(&i) => {
                    format = format.replace(whole, "%s");
                    captures.push(i - 1);
                }
                _ => format = format.replace(whole, ""),
            }
        }
        Template { format, captures }
    }

    /// Expands the template with the wildcard captures of a match.
    pub fn expand(&self, captured: &[&str]) -> String {
        if self.captures.is_empty() {
            return self.format.clone();
        }
        let args: Vec<&str> = self
            .captures
            .iter()
            .map(|&i| captured.get(i).copied().unwrap_or(""))
            .collect();
        go_sprintf_strings(&self.format, &args)
    }
}

/// Go's `fmt.Sprintf(format, args...)` for string arguments: `%s` and `%v`
/// take the next argument, `%%` is `%`, another verb prints
/// `%!x(string=arg)`, a missing argument `%!s(MISSING)`, leftover arguments
/// `%!(EXTRA string=a, …)`. (Flags and widths are not interpreted.)
fn go_sprintf_strings(format: &str, args: &[&str]) -> String {
    let mut out = String::with_capacity(format.len() + args.iter().map(|a| a.len()).sum::<usize>());
    let mut next = 0;
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            None => out.push_str("%!(NOVERB)"),
            Some('%') => out.push('%'),
            Some(verb) => match args.get(next) {
                Some(arg) => {
                    next += 1;
                    if verb == 's' || verb == 'v' {
                        out.push_str(arg);
                    } else {
                        out.push_str(&format!("%!{verb}(string={arg})"));
                    }
                }
                None => out.push_str(&format!("%!{verb}(MISSING)")),
            },
        }
    }
    if next < args.len() {
        let extra: Vec<String> = args[next..].iter().map(|a| format!("string={a}")).collect();
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand(template: &str, caps: &[&str]) -> String {
        Template::new(template, caps.len()).expand(caps)
    }

    #[test]
    fn expands_like_statsd_exporter() {
        assert_eq!(expand("$1", &["a", "b"]), "a");
        assert_eq!(expand("${1}_$2", &["a", "b"]), "a_b");
        assert_eq!(expand("${2}_foo", &["a", "b"]), "b_foo");
        // `$1_foo` names a group `1_foo`: nothing.
        assert_eq!(expand("$1_foo", &["a"]), "");
        assert_eq!(expand("$1-$2-$3", &["foo", "bar"]), "foo-bar-");
        assert_eq!(
            expand("${1}_server", &["foo_product"]),
            "foo_product_server"
        );
        assert_eq!(expand("static", &["x"]), "static");
        assert_eq!(expand("$0", &["x"]), "");
        assert_eq!(
            expand(
                "${10}",
                &["1", "2", "3", "4", "5", "6", "7", "8", "9", "ten"]
            ),
            "ten"
        );
        assert_eq!(expand("$1$2", &["a", "b"]), "");
        assert_eq!(expand("${1}${1}", &["a"]), "aa");
    }

    #[test]
    fn percent_signs_follow_go_sprintf() {
        assert_eq!(expand("100%", &["a"]), "100%");
        assert_eq!(expand("${1}%%", &["a"]), "a%");
        assert_eq!(expand("50%_${1}", &["a"]), "50%!_(string=a)%!s(MISSING)");
        assert_eq!(go_sprintf_strings("%s", &["a", "b"]), "a%!(EXTRA string=b)");
        assert_eq!(go_sprintf_strings("x%", &[]), "x%!(NOVERB)");
    }
}
