//! logind: login sessions from systemd-logind over the D-Bus system bus
//! (`org.freedesktop.login1`).
//!
//! Reads `Manager.ListSeats`, `Manager.ListSessions` and each session's
//! `Remote`, `Type` and `Class` properties. Metric (gauge):
//! `node_logind_sessions{seat,remote,type,class}`, the number of sessions,
//! with a series for every seat (plus the empty seat of remote sessions),
//! `remote` true/false, every known type (`other`, `unspecified`, `tty`,
//! `x11`, `wayland`, `mir`, `web`) and class (`other`, `user`, `greeter`,
//! `lock-screen`, `background`); a type or class logind added later counts
//! as `other`. Off by default; no flags.
//!
//! A session that vanishes between the listing and the property reads is
//! skipped; a reply of the wrong D-Bus type fails the collector; no
//! reachable system bus fails it too, as in node_exporter.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use oxmon_core::collector::{BoxFuture, CollectResult, ScrapeContext};
use oxmon_core::{Collector, MetricFamily};
use zbus::zvariant::OwnedObjectPath;
use zbus::Connection;

use crate::collectors::Ctx;
use crate::system_bus::{call, typed_property, BusError, SystemBus, MAX_IN_FLIGHT};

/// The `remote` label values.
pub const REMOTE_VALUES: [&str; 2] = ["true", "false"];
/// The `type` label values (logind's as of systemd 229).
pub const TYPE_VALUES: [&str; 7] = [
    "other",
    "unspecified",
    "tty",
    "x11",
    "wayland",
    "mir",
    "web",
];
/// The `class` label values.
pub const CLASS_VALUES: [&str; 5] = ["other", "user", "greeter", "lock-screen", "background"];

const DEST: &str = "org.freedesktop.login1";
const PATH: &str = "/org/freedesktop/login1";
const MANAGER: &str = "org.freedesktop.login1.Manager";
const SESSION: &str = "org.freedesktop.login1.Session";

/// One row of `Manager.ListSessions` (`a(susso)`): id, uid, user, seat,
/// object path.
pub type ListedSession = (String, u32, String, String, OwnedObjectPath);

/// The labels one session is counted under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// Seat id, empty for sessions without one (SSH).
    pub seat: String,
    /// Whether the session is remote.
    pub remote: bool,
    /// Session type, or `other` when logind's value is not a known one.
    pub kind: &'static str,
    /// Session class, or `other`.
    pub class: &'static str,
}

/// `value` when it is one of `known`, else `"other"`.
pub fn known_or_other(value: &str, known: &[&'static str]) -> &'static str {
    known
        .iter()
        .find(|k| **k == value)
        .copied()
        .unwrap_or("other")
}

/// Every series of `node_logind_sessions`: the full product of seats
/// (with the empty seat added), remote, type and class, in node_exporter's
/// order, with the number of sessions under each.
pub fn session_series<'a>(
    seats: &'a [String],
    counts: &'a HashMap<SessionKey, f64>,
) -> impl Iterator<Item = ([(&'static str, &'a str); 4], f64)> + 'a {
    let seats = seats.iter().map(String::as_str).chain(std::iter::once(""));
    let seats: Vec<&str> = seats.collect();
    REMOTE_VALUES.iter().flat_map(move |remote| {
        let seats = seats.clone();
        TYPE_VALUES.iter().flat_map(move |kind| {
            let seats = seats.clone();
            CLASS_VALUES.iter().flat_map(move |class| {
                seats.clone().into_iter().map(move |seat| {
                    let key = SessionKey {
                        seat: seat.to_string(),
                        remote: *remote == "true",
                        kind,
                        class,
                    };
                    let n = counts.get(&key).copied().unwrap_or(0.0);
                    (
                        [
                            ("seat", seat),
                            ("remote", *remote),
                            ("type", *kind),
                            ("class", *class),
                        ],
                        n,
                    )
                })
            })
        })
    })
}

/// The logind collector.
#[derive(Default)]
pub struct Logind {
    bus: SystemBus,
}

async fn session_key(conn: &Connection, s: &ListedSession) -> Result<Option<SessionKey>, BusError> {
    let path = s.4.as_str();
    let remote = typed_property::<bool>(conn, DEST, path, SESSION, "Remote").await;
    let kind = typed_property::<String>(conn, DEST, path, SESSION, "Type").await;
    let class = typed_property::<String>(conn, DEST, path, SESSION, "Class").await;
    match (remote, kind, class) {
        (Ok(remote), Ok(kind), Ok(class)) => Ok(Some(SessionKey {
            seat: s.3.clone(),
            remote,
            kind: known_or_other(&kind, &TYPE_VALUES),
            class: known_or_other(&class, &CLASS_VALUES),
        })),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            if !e.is_refusal() {
                return Err(e);
            }
            tracing::debug!(session = %s.0, error = %e, "logind session gone or unreadable");
            Ok(None)
        }
    }
}

impl Logind {
    async fn scrape(&self, out: &mut Vec<MetricFamily>) -> Result<(), BusError> {
        let conn = self.bus.connection().await?;
        let seats: Vec<(String, OwnedObjectPath)> =
            call(&conn, DEST, PATH, MANAGER, "ListSeats", &()).await?;
        let seats: Vec<String> = seats.into_iter().map(|(id, _)| id).collect();
        let sessions: Vec<ListedSession> =
            call(&conn, DEST, PATH, MANAGER, "ListSessions", &()).await?;
        let mut counts: HashMap<SessionKey, f64> = HashMap::new();
        // The futures are built first: a closure inside the stream would
        // make the boxed collect future fail the `Send` check.
        let pending: Vec<_> = sessions.iter().map(|s| session_key(&conn, s)).collect();
        let keys: Vec<_> = stream::iter(pending)
            .buffered(MAX_IN_FLIGHT)
            .collect()
            .await;
        for key in keys {
            if let Some(key) = key? {
                *counts.entry(key).or_default() += 1.0;
            }
        }
        let mut f = MetricFamily::gauge(
            "node_logind_sessions",
            "Number of sessions registered in logind.",
        );
        for (labels, n) in session_series(&seats, &counts) {
            f.add(&labels, n);
        }
        out.push(f);
        Ok(())
    }
}

impl Collector for Logind {
    fn name(&self) -> &str {
        "logind"
    }

    fn collect<'a>(
        &'a self,
        _ctx: &'a ScrapeContext,
        out: &'a mut Vec<MetricFamily>,
    ) -> BoxFuture<'a, CollectResult> {
        Box::pin(async move {
            let result = self.scrape(out).await;
            self.bus.forget_if_broken(&result).await;
            result.map_err(Into::into)
        })
    }
}

/// Builds the collector.
pub fn build(_ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(Arc::new(Logind::default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_types_and_classes_are_other() {
        assert_eq!(known_or_other("wayland", &TYPE_VALUES), "wayland");
        assert_eq!(known_or_other("hologram", &TYPE_VALUES), "other");
        assert_eq!(known_or_other("user-early", &CLASS_VALUES), "other");
        assert_eq!(known_or_other("", &CLASS_VALUES), "other");
    }

    #[test]
    fn every_combination_is_a_series() {
        let seats = vec!["seat0".to_string()];
        let mut counts = HashMap::new();
        let ssh = SessionKey {
            seat: String::new(),
            remote: true,
            kind: "tty",
            class: "user",
        };
        counts.insert(ssh, 2.0);
        let series: Vec<_> = session_series(&seats, &counts).collect();
        assert_eq!(series.len(), 2 * 7 * 5 * 2);
        let find = |seat, remote, kind, class| {
            series
                .iter()
                .find(|(l, _)| {
                    l == &[
                        ("seat", seat),
                        ("remote", remote),
                        ("type", kind),
                        ("class", class),
                    ]
                })
                .map(|(_, n)| *n)
        };
        assert_eq!(find("", "true", "tty", "user"), Some(2.0));
        assert_eq!(find("seat0", "true", "tty", "user"), Some(0.0));
        assert_eq!(find("seat0", "false", "x11", "greeter"), Some(0.0));
        // A session on a seat logind did not list is not shown.
        assert_eq!(find("seat9", "false", "tty", "user"), None);
    }
}
