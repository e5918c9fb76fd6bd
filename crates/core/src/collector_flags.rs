//! Collector selection on the command line, spelled like node_exporter's:
//! `--collector.<name>` enables a collector, `--no-collector.<name>`
//! (hidden from `--help`) disables it, and `--collector.disable-defaults`
//! turns off every collector that is on by default.
//!
//! Precedence, as in node_exporter: when both `--collector.X` and
//! `--no-collector.X` are given, the later one on the command line wins;
//! either one overrides the default and `--collector.disable-defaults`,
//! which only turns off collectors that nothing named explicitly.
//!
//! Names a Go exporter has but the oxmon one does not implement are
//! accepted (hidden), so a command line written for the Go exporter keeps
//! working; [`Selection::not_implemented`] lists those that were enabled,
//! for a warning.
//!
//! (Not to be confused with [`crate::collector::Selection`], the
//! `collect[]` query parameter of one scrape.)
//!
//! ```
//! use oxmon_core::collector_flags::CollectorFlags;
//!
//! let flags = CollectorFlags::new([("cpu", true), ("meminfo", true), ("ntp", false)])
//!     .not_implemented(["zfs"]);
//! let cmd = flags.augment(clap::Command::new("demo"));
//! let matches = cmd.get_matches_from([
//!     "demo", "--collector.disable-defaults", "--collector.cpu", "--collector.zfs",
//! ]);
//! let chosen = flags.resolve(&matches);
//! assert_eq!(chosen.enabled, ["cpu"]);
//! assert_eq!(chosen.not_implemented, ["zfs"]);
//! assert!(chosen.is_enabled("cpu") && !chosen.is_enabled("meminfo"));
//! ```

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// The flag that turns off every default collector.
pub const DISABLE_DEFAULTS: &str = "collector.disable-defaults";

#[derive(Debug, Clone)]
struct Known {
    name: &'static str,
    default_enabled: bool,
    description: Option<&'static str>,
}

/// The collector table of one exporter, turned into flags (see the module
/// docs). Build it once; use it to [`augment`](Self::augment) the
/// `clap::Command` and to [`resolve`](Self::resolve) the parsed matches.
#[derive(Debug, Clone)]
pub struct CollectorFlags {
    known: Vec<Known>,
    not_implemented: Vec<&'static str>,
}

/// The outcome of [`CollectorFlags::resolve`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// The enabled collectors, in table order.
    pub enabled: Vec<&'static str>,
    /// Not-implemented collectors whose `--collector.<name>` was given
    /// (and not overridden by a later `--no-collector.<name>`).
    pub not_implemented: Vec<&'static str>,
}

impl Selection {
    /// Whether `name` is enabled.
    pub fn is_enabled(&self, name: &str) -> bool {
        self.enabled.contains(&name)
    }
}

impl CollectorFlags {
    /// A table of `(name, enabled by default)`.
    pub fn new(table: impl IntoIterator<Item = (&'static str, bool)>) -> Self {
        CollectorFlags {
            known: table
                .into_iter()
                .map(|(name, default_enabled)| Known {
                    name,
                    default_enabled,
                    description: None,
                })
                .collect(),
            not_implemented: Vec::new(),
        }
    }

    /// Adds names that are accepted but not implemented.
    pub fn not_implemented(mut self, names: impl IntoIterator<Item = &'static str>) -> Self {
        self.not_implemented.extend(names);
        self
    }

    /// Adds a description to `name`'s `--collector.<name>` help line.
    /// Unknown names are ignored.
    pub fn describe(mut self, name: &str, description: &'static str) -> Self {
        if let Some(k) = self.known.iter_mut().find(|k| k.name == name) {
            k.description = Some(description);
        }
        self
    }

    /// Adds the flags to a command (usually `Cli::command()` of a derived
    /// parser, which then reads its own fields with `from_arg_matches`).
    pub fn augment(&self, mut cmd: Command) -> Command {
        cmd = cmd.arg(
            Arg::new(DISABLE_DEFAULTS)
                .long(DISABLE_DEFAULTS)
                .action(ArgAction::SetTrue)
                .help("Set all collectors to disabled by default."),
        );
        for k in &self.known {
            let default = if k.default_enabled {
                "enabled"
            } else {
                "disabled"
            };
            let help = match k.description {
                Some(d) => format!("Enable the {} collector: {d} (default: {default}).", k.name),
                None => format!("Enable the {} collector (default: {default}).", k.name),
            };
            cmd = cmd.arg(switch(format!("collector.{}", k.name)).help(help));
            cmd = cmd.arg(switch(format!("no-collector.{}", k.name)).hide(true));
        }
        for name in &self.not_implemented {
            cmd = cmd.arg(switch(format!("collector.{name}")).hide(true));
            cmd = cmd.arg(switch(format!("no-collector.{name}")).hide(true));
        }
        cmd
    }

    /// Resolves the enabled set from matches of a command built by
    /// [`augment`](Self::augment).
    pub fn resolve(&self, matches: &ArgMatches) -> Selection {
        let disable_defaults = given(matches, DISABLE_DEFAULTS).is_some();
        let enabled = self
            .known
            .iter()
            .filter(|k| explicit(matches, k.name).unwrap_or(k.default_enabled && !disable_defaults))
            .map(|k| k.name)
            .collect();
        let not_implemented = self
            .not_implemented
            .iter()
            .copied()
            .filter(|name| explicit(matches, name) == Some(true))
            .collect();
        Selection {
            enabled,
            not_implemented,
        }
    }
}

fn switch(id: String) -> Arg {
    Arg::new(id.clone()).long(id).action(ArgAction::SetTrue)
}

/// The command-line position of a flag that was given, `None` when it was
/// not (defaults and environment do not count).
fn given(matches: &ArgMatches, id: &str) -> Option<usize> {
    match matches.try_get_one::<bool>(id) {
        Ok(Some(true)) if matches.value_source(id) == Some(ValueSource::CommandLine) => {
            matches.index_of(id)
        }
        _ => None,
    }
}

/// What the command line says about `name`: `Some(true)` enabled,
/// `Some(false)` disabled (the later of the two flags wins), `None` when
/// neither flag was given.
fn explicit(matches: &ArgMatches, name: &str) -> Option<bool> {
    let on = given(matches, &format!("collector.{name}"));
    let off = given(matches, &format!("no-collector.{name}"));
    match (on, off) {
        (None, None) => None,
        (Some(_), None) => Some(true),
        (None, Some(_)) => Some(false),
        (Some(on), Some(off)) => Some(on > off),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags() -> CollectorFlags {
        CollectorFlags::new([("cpu", true), ("meminfo", true), ("ntp", false)])
            .not_implemented(["zfs", "wifi"])
            .describe("ntp", "clock offset")
    }

    fn chosen(args: &[&str]) -> Selection {
        let f = flags();
        let mut argv = vec!["t"];
        argv.extend_from_slice(args);
        let m = f
            .augment(Command::new("t"))
            .try_get_matches_from(argv)
            .unwrap();
        f.resolve(&m)
    }

    #[test]
    fn defaults_apply_without_flags() {
        assert_eq!(chosen(&[]).enabled, ["cpu", "meminfo"]);
        assert!(chosen(&[]).not_implemented.is_empty());
    }

    #[test]
    fn explicit_flags_override_defaults() {
        assert_eq!(
            chosen(&["--collector.ntp"]).enabled,
            ["cpu", "meminfo", "ntp"]
        );
        assert_eq!(chosen(&["--no-collector.cpu"]).enabled, ["meminfo"]);
    }

    #[test]
    fn disable_defaults_spares_explicitly_enabled_collectors() {
        assert!(chosen(&["--collector.disable-defaults"]).enabled.is_empty());
        assert_eq!(
            chosen(&["--collector.meminfo", "--collector.disable-defaults"]).enabled,
            ["meminfo"]
        );
        assert_eq!(
            chosen(&["--collector.disable-defaults", "--collector.ntp"]).enabled,
            ["ntp"]
        );
    }

    #[test]
    fn the_later_of_enable_and_disable_wins() {
        assert_eq!(
            chosen(&["--collector.ntp", "--no-collector.ntp"]).enabled,
            ["cpu", "meminfo"]
        );
        assert_eq!(
            chosen(&["--no-collector.ntp", "--collector.ntp"]).enabled,
            ["cpu", "meminfo", "ntp"]
        );
        assert_eq!(
            chosen(&["--no-collector.cpu", "--collector.cpu"]).enabled,
            ["cpu", "meminfo"]
        );
    }

    #[test]
    fn not_implemented_names_are_accepted_and_reported() {
        let s = chosen(&["--collector.zfs", "--no-collector.wifi", "--collector.cpu"]);
        assert_eq!(s.not_implemented, ["zfs"]);
        assert_eq!(s.enabled, ["cpu", "meminfo"]);
        let s = chosen(&["--collector.zfs", "--no-collector.zfs"]);
        assert!(s.not_implemented.is_empty());
    }

    #[test]
    fn unknown_names_are_rejected() {
        let f = flags();
        let r = f
            .augment(Command::new("t"))
            .try_get_matches_from(["t", "--collector.nope"]);
        assert!(r.is_err());
    }

    #[test]
    fn help_states_the_default_and_hides_negations() {
        let mut cmd = flags().augment(Command::new("t"));
        let help = cmd.render_help().to_string();
        assert!(
            help.contains("Enable the cpu collector (default: enabled)."),
            "{help}"
        );
        assert!(
            help.contains("Enable the ntp collector: clock offset (default: disabled)."),
            "{help}"
        );
        assert!(help.contains("--collector.disable-defaults"), "{help}");
        assert!(!help.contains("--no-collector.cpu"), "{help}");
        assert!(!help.contains("zfs"), "{help}");
    }
}
