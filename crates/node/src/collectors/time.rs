//! time — the system clock, the local time zone and the kernel clock
//! source.
//!
//! Metrics: `node_time_seconds` (now, seconds since the epoch),
//! `node_time_zone_offset_seconds{time_zone}` (offset of the local zone
//! from UTC; the zone comes from `TZ` or `/etc/localtime` of the process,
//! like node_exporter's Go runtime — not from `--path.rootfs`),
//! `node_time_clocksource_available_info{device,clocksource}` and
//! `node_time_clocksource_current_info{device,clocksource}` from
//! `devices/system/clocksource/clocksource<N>/` in sysfs. On by default.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use oxmon_core::collector::{sync_collector, CollectResult, ScrapeContext, SyncCollector};
use oxmon_core::{Collector, MetricFamily};

use crate::collectors::Ctx;
use crate::dir_listing::{numbered_entries, Refreshed};
use crate::file_cache::{read_regular, FileCache, OnLease, MAX_FILE_BYTES};

/// A local time zone: its transitions and the offsets/names in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Transition times (seconds since the epoch), ascending, with the
    /// index into `types` in force from then on.
    transitions: Vec<(i64, usize)>,
    /// `(offset from UTC in seconds, abbreviation)`.
    types: Vec<(i32, String)>,
    /// The fixed zone of a POSIX TZ footer without DST rules, used after the
    /// last transition.
    footer: Option<(i32, String)>,
}

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        Zone {
            transitions: Vec::new(),
            types: vec![(0, "UTC".into())],
            footer: None,
        }
    }

    /// The offset and abbreviation in force at `t` (seconds since the epoch).
    pub fn lookup(&self, t: i64) -> (i32, &str) {
        let after_last = self.transitions.last().is_none_or(|(last, _)| t >= *last);
        if after_last {
            if let Some((off, name)) = &self.footer {
                return (*off, name);
            }
        }
        let idx = match self.transitions.partition_point(|(at, _)| *at <= t) {
            0 => 0,
            n => self.transitions[n - 1].1,
        };
        match self.types.get(idx) {
            Some((off, name)) => (*off, name),
            None => (0, "UTC"),
        }
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a TZif file (RFC 8536, versions 1 to 4). For version 2+ the
/// 64-bit block and the footer are used.
pub fn parse_tzif(data: &[u8]) -> Option<Zone> {
    if data.get(..4)? != b"TZif" {
        return None;
    }
    let version = *data.get(4)?;
    let counts = |at: usize| -> Option<[usize; 6]> {
        let mut c = [0usize; 6];
        for (i, slot) in c.iter_mut().enumerate() {
            *slot = be_u32(data, at + 20 + 4 * i)? as usize;
        }
        Some(c)
    };
    let block_len = |c: [usize; 6], tsize: usize| {
        let [isut, isstd, leap, time, typ, chars] = c;
        time * tsize + time + typ * 6 + chars + leap * (tsize + 4) + isstd + isut
    };
    let c1 = counts(0)?;
    let (start, c, tsize) = if version >= b'2' {
        let second = 44 + block_len(c1, 4);
        (second + 44, counts(second)?, 8)
    } else {
        (44, c1, 4)
    };
    // Truncated or corrupt files: no allocation sized by bogus counts.
    if data.len() < start.checked_add(block_len(c, tsize))? {
        return None;
    }
    let [_, _, _, timecnt, typecnt, charcnt] = c;
    let times_at = start;
    let idx_at = times_at + timecnt * tsize;
    let types_at = idx_at + timecnt;
    let chars_at = types_at + typecnt * 6;
    let chars = data.get(chars_at..chars_at + charcnt)?;
    let mut types = Vec::with_capacity(typecnt);
    for i in 0..typecnt {
        let at = types_at + i * 6;
        let off = be_u32(data, at)? as i32;
        let abbr = *data.get(at + 5)? as usize;
        let name = chars
            .get(abbr..)
            .map(|s| s.split(|b| *b == 0).next().unwrap_or(&[]))
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default();
        types.push((off, name));
    }
    let mut transitions = Vec::with_capacity(timecnt);
    for i in 0..timecnt {
        let at = times_at + i * tsize;
        let t = if tsize == 8 {
            i64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?)
        } else {
            be_u32(data, at)? as i32 as i64
        };
        let ty = *data.get(idx_at + i)? as usize;
        transitions.push((t, ty));
    }
    let footer = if version >= b'2' {
        let end = start + block_len(c, tsize);
        data.get(end..)
            .and_then(|f| std::str::from_utf8(f).ok())
            .and_then(|f| parse_fixed_posix_tz(f.trim_matches('\n')))
    } else {
        None
    };
    Some(Zone {
        transitions,
        types,
        footer,
    })
}

/// A POSIX TZ string without DST (`UTC0`, `<+03>-3`, `JST-9`) as `(offset
/// east of UTC in seconds, name)`; `None` for strings with DST rules (the
/// transition table is used for those).
pub fn parse_fixed_posix_tz(s: &str) -> Option<(i32, String)> {
    let (name, rest) = if let Some(r) = s.strip_prefix('<') {
        let (n, rest) = r.split_once('>')?;
        (n, rest)
    } else {
        let n = s.bytes().take_while(|b| b.is_ascii_alphabetic()).count();
        (&s[..n], &s[n..])
    };
    if name.is_empty()
        || rest.is_empty()
        || rest.contains(|c: char| c.is_ascii_alphabetic() || c == ',' || c == '<')
    {
        return None;
    }
    let (sign, digits) = match rest.as_bytes()[0] {
        b'-' => (1, &rest[1..]),
        b'+' => (-1, &rest[1..]),
        _ => (-1, rest),
    };
    let mut secs = 0i32;
    for (i, part) in digits.split(':').enumerate() {
        let v: i32 = part.parse().ok()?;
        secs += v * [3600, 60, 1].get(i)?;
    }
    Some((sign * secs, name.to_string()))
}

/// Loads the process's local zone the way Go does: `TZ` (empty means
/// UTC, `:` prefix allowed, relative names under /usr/share/zoneinfo),
/// else `/etc/localtime`, else UTC.
pub fn local_zone() -> Zone {
    let path: PathBuf = match std::env::var("TZ") {
        Ok(tz) => {
            let tz = tz.trim_start_matches(':');
            if tz.is_empty() || tz == "UTC" {
                return Zone::utc();
            }
            if tz.starts_with('/') {
                PathBuf::from(tz)
            } else {
                Path::new("/usr/share/zoneinfo").join(tz)
            }
        }
        Err(_) => PathBuf::from("/etc/localtime"),
    };
    read_regular(&path, OnLease::Fail, MAX_FILE_BYTES)
        .ok()
        .and_then(|(d, _)| parse_tzif(&d))
        .unwrap_or_else(Zone::utc)
}

struct Time {
    zone: Zone,
    clocksource_dir: PathBuf,
    devices: Refreshed<Vec<(u32, String)>>,
    cache: FileCache,
}

/// Builds the collector.
pub fn build(ctx: &Ctx<'_>) -> Result<Arc<dyn Collector>, String> {
    Ok(sync_collector(Time {
        zone: local_zone(),
        clocksource_dir: ctx.paths.sys("devices/system/clocksource"),
        devices: Refreshed::default(),
        cache: FileCache::new(),
    }))
}

impl Time {
    fn collect_clocksources(&self, out: &mut Vec<MetricFamily>) -> CollectResult {
        let devices = self
            .devices
            .get(|| numbered_entries(&self.clocksource_dir, "clocksource"))?;
        if devices.is_empty() {
            return Ok(());
        }
        let mut available = MetricFamily::gauge(
            "node_time_clocksource_available_info",
            "Available clocksources read from '/sys/devices/system/clocksource'.",
        );
        let mut current = MetricFamily::gauge(
            "node_time_clocksource_current_info",
            "Current clocksource read from '/sys/devices/system/clocksource'.",
        );
        let mut scope = self.cache.scope();
        let mut buf = String::new();
        for (n, name) in devices.iter() {
            let device = n.to_string();
            let dir = self.clocksource_dir.join(name);
            if scope
                .read_into(&dir.join("available_clocksource"), &mut buf)
                .is_err()
            {
                self.devices.invalidate();
            } else {
                for cs in buf.split_ascii_whitespace() {
                    available.add(&[("device", &device), ("clocksource", cs)], 1.0);
                }
            }
            if scope
                .read_into(&dir.join("current_clocksource"), &mut buf)
                .is_ok()
            {
                let cs = buf.trim();
                if !cs.is_empty() {
                    current.add(&[("device", &device), ("clocksource", cs)], 1.0);
                }
            }
        }
        out.push(available);
        out.push(current);
        Ok(())
    }
}

impl SyncCollector for Time {
    fn name(&self) -> &'static str {
        "time"
    }

    fn collect(&self, _: &ScrapeContext, out: &mut Vec<MetricFamily>) -> CollectResult {
        // Negative before 1970 (a clock not yet set), not a made-up 0.
        let now = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        };
        out.push(oxmon_core::gauge(
            "node_time_seconds",
            "System time in seconds since epoch (1970).",
            now,
        ));
        let (offset, name) = self.zone.lookup(now as i64);
        let mut tz = MetricFamily::gauge(
            "node_time_zone_offset_seconds",
            "System time zone offset in seconds.",
        );
        tz.add(&[("time_zone", name)], offset as f64);
        out.push(tz);
        self.collect_clocksources(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A version-2 TZif file with one transition (at t=1000 from "AAA" +1h
    /// to "BBB" +2h) and the given footer.
    fn tzif(footer: &str) -> Vec<u8> {
        let mut v = Vec::new();
        let header = |v: &mut Vec<u8>, time: u32, typ: u32, chars: u32| {
            v.extend_from_slice(b"TZif2");
            v.extend_from_slice(&[0; 15]);
            for c in [0, 0, 0, time, typ, chars] {
                v.extend_from_slice(&c.to_be_bytes());
            }
        };
        // v1 block: empty.
        header(&mut v, 0, 1, 4);
        v.extend_from_slice(&0i32.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(b"UTC\0");
        // v2 block.
        header(&mut v, 1, 2, 8);
        v.extend_from_slice(&1000i64.to_be_bytes());
        v.push(1);
        v.extend_from_slice(&3600i32.to_be_bytes());
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&7200i32.to_be_bytes());
        v.extend_from_slice(&[1, 4]);
        v.extend_from_slice(b"AAA\0BBB\0");
        v.extend_from_slice(format!("\n{footer}\n").as_bytes());
        v
    }

    #[test]
    fn tzif_transitions_and_footer() {
        let z = parse_tzif(&tzif("CCC-3")).unwrap();
        assert_eq!(z.lookup(10), (3600, "AAA"));
        assert_eq!(z.lookup(5000), (10800, "CCC"));
        let z = parse_tzif(&tzif("EST5EDT,M3.2.0,M11.1.0")).unwrap();
        assert_eq!(z.lookup(5000), (7200, "BBB"));
        assert!(parse_tzif(b"nope").is_none());
        assert!(parse_tzif(&tzif("X0")[..60]).is_none());
    }

    #[test]
    fn posix_fixed() {
        assert_eq!(parse_fixed_posix_tz("UTC0"), Some((0, "UTC".into())));
        assert_eq!(
            parse_fixed_posix_tz("<+0530>-5:30"),
            Some((19800, "+0530".into()))
        );
        assert_eq!(parse_fixed_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3"), None);
    }

    #[test]
    fn utc_zone() {
        assert_eq!(Zone::utc().lookup(123), (0, "UTC"));
    }
}
