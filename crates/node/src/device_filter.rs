//! node_exporter's include/exclude device filter (netdev, diskstats,
//! hwmon) and regex compilation that names the offending flag.

use regex::Regex;

/// Compiles a user-supplied regex, naming the flag in the error.
pub fn compile_regex(flag: &str, re: &str) -> Result<Regex, String> {
    Regex::new(re).map_err(|e| format!("--{flag}: invalid regex {re:?}: {e}"))
}

/// A name is ignored when it matches the exclude regex, or when an include
/// regex is set and does not match.
#[derive(Debug, Clone, Default)]
pub struct DeviceFilter {
    include: Option<Regex>,
    exclude: Option<Regex>,
}

impl DeviceFilter {
    /// Builds the filter from the optional `--<flag_prefix>-include` and
    /// `--<flag_prefix>-exclude` flags (empty means unset); both set is an
    /// error, as in node_exporter.
    pub fn new(
        flag_prefix: &str,
        include: Option<&str>,
        exclude: Option<&str>,
    ) -> Result<Self, String> {
        let include = include.filter(|s| !s.is_empty());
        let exclude = exclude.filter(|s| !s.is_empty());
        if include.is_some() && exclude.is_some() {
            return Err(format!(
                "--{flag_prefix}-include and --{flag_prefix}-exclude are mutually exclusive"
            ));
        }
        Ok(DeviceFilter {
            include: include
                .map(|r| compile_regex(&format!("{flag_prefix}-include"), r))
                .transpose()?,
            exclude: exclude
                .map(|r| compile_regex(&format!("{flag_prefix}-exclude"), r))
                .transpose()?,
        })
    }

    /// True when `name` should be skipped.
    pub fn ignored(&self, name: &str) -> bool {
        if let Some(ex) = &self.exclude {
            if ex.is_match(name) {
                return true;
            }
        }
        if let Some(inc) = &self.include {
            return !inc.is_match(name);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_or_exclude() {
        let f = DeviceFilter::new("collector.netdev.device", Some("^lo$"), None).unwrap();
        assert!(!f.ignored("lo"));
        assert!(f.ignored("eth0"));
        let f = DeviceFilter::new("collector.netdev.device", None, Some("^veth")).unwrap();
        assert!(f.ignored("veth12"));
        assert!(!f.ignored("eth0"));
        let e = DeviceFilter::new("x", Some("a"), Some("b")).unwrap_err();
        assert!(e.contains("mutually exclusive"), "{e}");
        let e = DeviceFilter::new("x", Some("("), None).unwrap_err();
        assert!(e.starts_with("--x-include: invalid regex"), "{e}");
        let none = DeviceFilter::new("x", Some(""), None).unwrap();
        assert!(!none.ignored("anything"));
    }
}
