//! # oxmon-sys
//!
//! Safe wrappers over Linux system calls that neither `std` nor `rustix`
//! expose. The rest of the workspace forbids `unsafe`; the few FFI calls
//! live here, each behind a safe function with its invariants written down.
//!
//! - [`read_timex`]: `adjtimex(2)` in read-only mode, for the node timex
//!   collector (clock synchronisation status, offset, PLL state).
//! - [`register_fd`]: an owned socket registered with the tokio reactor,
//!   for node's async netlink client.
//! - [`PerfCounter`]: `perf_event_open(2)` counting one event for every
//!   process on one CPU, for the node perf collector.
//! - [`EthtoolSocket`]: the read-only `SIOCETHTOOL` requests of the node
//!   ethtool collector (driver info, link modes, driver statistics), as the
//!   kernel's raw reply bytes; the collector parses them.
//! - [`tune_allocator`]: `mallopt(3)` settings that keep glibc's heap
//!   small in a long-running exporter, for oxmon-core's start-up.
//! - [`nvml::gpu_instance_id`] (feature `nvml`): `nvmlDeviceGetGpuInstanceId`
//!   on a MIG device, which nvml-wrapper 0.13 does not wrap, for oxmon-gpu.

#[cfg(feature = "nvml")]
pub mod nvml;

use std::io;
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;

/// Keeps glibc's allocator small for a process that mostly waits.
///
/// - At most `arenas` malloc arenas (`M_ARENA_MAX`): by default glibc
///   gives each thread that allocates its own arena, about 1 MB resident
///   each, and an exporter's helper threads (blocking reads) allocate little.
/// - Blocks of 128 KiB and more always come from `mmap` and go back to the
///   kernel when freed (`M_MMAP_THRESHOLD`), and the heap is trimmed when
///   128 KiB are free at its top (`M_TRIM_THRESHOLD`). glibc otherwise
///   raises both thresholds after the first large block is freed, so the state of
///   every later gzip compressor (a few hundred KB) stays in the heap.
///
/// Call it first thing, before threads start. Without glibc it does nothing.
pub fn tune_allocator(arenas: usize) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // glibc's own default for both, before it starts adapting them.
        const RETURN_BYTES: i32 = 128 * 1024;
        let arenas = i32::try_from(arenas.max(1)).unwrap_or(i32::MAX);
        // SAFETY: mallopt only changes the allocator's parameters; every
        // value is in the range glibc documents. A refused setting (return
        // 0) leaves glibc's default, which is harmless.
        #[allow(unsafe_code)]
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, arenas);
            libc::mallopt(libc::M_MMAP_THRESHOLD, RETURN_BYTES);
            libc::mallopt(libc::M_TRIM_THRESHOLD, RETURN_BYTES);
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = arenas;
}

/// Registers `fd` with the current tokio runtime's reactor, for
/// readiness-driven reads and writes of a non-blocking socket.
///
/// Must be called within a runtime with I/O enabled; fails (returning
/// the registration error) otherwise.
#[allow(unsafe_code)]
pub fn register_fd(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: `AsyncFd::register` needs the descriptor to stay open and
    // to be the same one for as long as the `AsyncFd` lives. An `OwnedFd`
    // owned by the `AsyncFd` guarantees both: it is closed only when
    // dropped (with the `AsyncFd`, after deregistration), and its
    // `as_raw_fd` never changes.
    unsafe { AsyncFd::register(fd) }.map_err(io::Error::from)
}

/// The kernel's clock discipline state, as `adjtimex(2)` reports it with
/// `modes = 0` (read only). Units are the kernel's; see the man page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timex {
    /// The call's return value: clock state (`TIME_OK` = 0 … `TIME_ERROR` = 5).
    pub state: i32,
    /// Time offset, µs, or ns when `status & STA_NANO`.
    pub offset: i64,
    /// Frequency offset, ppm with a 16-bit fractional part.
    pub freq: i64,
    /// Maximum error, µs.
    pub maxerror: i64,
    /// Estimated error, µs.
    pub esterror: i64,
    /// Clock command/status bits (`STA_*`).
    pub status: i32,
    /// PLL time constant.
    pub constant: i64,
    /// Clock precision, µs (read only).
    pub precision: i64,
    /// Clock frequency tolerance, ppm with 16-bit fraction (read only).
    pub tolerance: i64,
    /// Microseconds between clock ticks.
    pub tick: i64,
    /// PPS frequency, ppm with 16-bit fraction.
    pub ppsfreq: i64,
    /// PPS jitter, µs or ns.
    pub jitter: i64,
    /// PPS interval duration, seconds as a power of two.
    pub shift: i32,
    /// PPS stability, ppm with 16-bit fraction.
    pub stabil: i64,
    /// PPS count of jitter limit exceeded events.
    pub jitcnt: i64,
    /// PPS count of calibration intervals.
    pub calcnt: i64,
    /// PPS count of calibration errors.
    pub errcnt: i64,
    /// PPS count of stability limit exceeded events.
    pub stbcnt: i64,
    /// TAI offset, seconds.
    pub tai: i32,
}

/// Reads the kernel clock state with `adjtimex(2)`, changing nothing.
/// Needs no privilege.
#[allow(unsafe_code)]
pub fn read_timex() -> io::Result<Timex> {
    // SAFETY: `libc::timex` is a plain C struct for which all-zero bytes is a
    // valid value; `modes = 0` (from zeroing) asks the kernel only to read.
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: `tx` is a valid, exclusively borrowed `timex` for the duration
    // of the call; the kernel writes only within it.
    let state = unsafe { libc::adjtimex(&mut tx) };
    if state < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(Timex {
        state,
        offset: tx.offset as i64,
        freq: tx.freq as i64,
        maxerror: tx.maxerror as i64,
        esterror: tx.esterror as i64,
        status: tx.status,
        constant: tx.constant as i64,
        precision: tx.precision as i64,
        tolerance: tx.tolerance as i64,
        tick: tx.tick as i64,
        ppsfreq: tx.ppsfreq as i64,
        jitter: tx.jitter as i64,
        shift: tx.shift,
        stabil: tx.stabil as i64,
        jitcnt: tx.jitcnt as i64,
        calcnt: tx.calcnt as i64,
        errcnt: tx.errcnt as i64,
        stbcnt: tx.stbcnt as i64,
        tai: tx.tai,
    })
}

/// What a perf counter counts: the kernel's `perf_event_attr.type` and
/// `config` pair (`PERF_TYPE_HARDWARE` with `PERF_COUNT_HW_CPU_CYCLES`, a
/// `PERF_TYPE_HW_CACHE` id/op/result triple, a tracepoint id …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PerfEvent {
    /// `PERF_TYPE_*`.
    pub kind: u32,
    /// The event within that type.
    pub config: u64,
}

impl PerfEvent {
    /// `PERF_TYPE_HARDWARE`.
    pub const HARDWARE: u32 = 0;
    /// `PERF_TYPE_SOFTWARE`.
    pub const SOFTWARE: u32 = 1;
    /// `PERF_TYPE_TRACEPOINT`; `config` is the id under tracefs
    /// `events/<subsystem>/<event>/id`.
    pub const TRACEPOINT: u32 = 2;
    /// `PERF_TYPE_HW_CACHE`; `config` is `cache | op << 8 | result << 16`.
    pub const HW_CACHE: u32 = 3;
}

/// The first fields of the kernel's `struct perf_event_attr`, as laid out in
/// its first published version (`PERF_ATTR_SIZE_VER0`, 64 bytes), which
/// every kernel since 2.6.31 accepts; later fields default to zero.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttrV0 {
    kind: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// Bit field (`disabled`, `inherit`, `exclude_*` …): all zero counts
    /// user, kernel and hypervisor from the moment of opening.
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
}

const PERF_ATTR_SIZE_VER0: u32 = 64;
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 8;

/// A running perf counter: one event, every process, one CPU. Closed on
/// drop.
#[derive(Debug)]
pub struct PerfCounter {
    file: std::fs::File,
}

impl PerfCounter {
    /// Opens and starts a counter of `event` for all processes on `cpu`
    /// (`perf_event_open(attr, pid = -1, cpu, group_fd = -1,
    /// PERF_FLAG_FD_CLOEXEC)`). Needs `CAP_PERFMON` (or `CAP_SYS_ADMIN`) or
    /// `kernel.perf_event_paranoid` ≤ 0; refused with `EACCES`/`EPERM`
    /// otherwise, `ENOENT`/`EOPNOTSUPP` where the CPU has no such event
    /// (hardware events in most VMs), `ENODEV` for a CPU that is offline,
    /// `ENOSYS` where seccomp hides the call (containers).
    #[allow(unsafe_code)]
    pub fn open(event: PerfEvent, cpu: u32) -> io::Result<PerfCounter> {
        use std::os::fd::{FromRawFd, OwnedFd};
        let cpu =
            libc::c_int::try_from(cpu).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        let attr = PerfEventAttrV0 {
            kind: event.kind,
            size: PERF_ATTR_SIZE_VER0,
            config: event.config,
            ..Default::default()
        };
        // SAFETY: `attr` is a valid `perf_event_attr` prefix whose `size`
        // field tells the kernel how many bytes to read from it; it lives
        // across the call and the kernel does not keep the pointer. The
        // other arguments are plain integers.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                &attr as *const PerfEventAttrV0,
                -1 as libc::pid_t,
                cpu,
                -1 as libc::c_int,
                PERF_FLAG_FD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd =
            libc::c_int::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: the kernel returned a new descriptor that nothing else
        // owns; `OwnedFd` closes it exactly once.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(PerfCounter { file: fd.into() })
    }

    /// The count so far (`read_format` 0: one native-endian u64).
    pub fn read(&self) -> io::Result<u64> {
        use std::io::Read;
        let mut buf = [0u8; 8];
        (&self.file).read_exact(&mut buf)?;
        Ok(u64::from_ne_bytes(buf))
    }
}

/// `sizeof(struct ethtool_drvinfo)`.
pub const ETHTOOL_DRVINFO_LEN: usize = 196;
/// `sizeof(struct ethtool_cmd)`.
pub const ETHTOOL_CMD_LEN: usize = 44;
/// `ETH_GSTRING_LEN`: one statistic name.
pub const ETH_GSTRING_LEN: usize = 32;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GSET: u32 = 0x1;
const ETHTOOL_GDRVINFO: u32 = 0x3;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_GSTATS: u32 = 0x1d;
const ETH_SS_STATS: u32 = 1;

/// A datagram socket to send read-only `SIOCETHTOOL` requests on. Each
/// method returns the kernel's reply struct as bytes (native endian), or
/// the errno (`EOPNOTSUPP` where the driver has no such operation, `ENODEV`
/// for a device that went away).
#[derive(Debug)]
pub struct EthtoolSocket {
    fd: std::os::fd::OwnedFd,
}

impl EthtoolSocket {
    /// Opens an `AF_INET` datagram socket (no privilege needed).
    #[allow(unsafe_code)]
    pub fn open() -> io::Result<EthtoolSocket> {
        use std::os::fd::FromRawFd;
        // SAFETY: plain integer arguments; the result is checked below.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor that nothing else owns.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(EthtoolSocket { fd })
    }

    /// `ETHTOOL_GDRVINFO`: `struct ethtool_drvinfo` (driver, version,
    /// firmware, bus info, expansion ROM version, `n_stats` …).
    pub fn driver_info(&self, device: &str) -> io::Result<[u8; ETHTOOL_DRVINFO_LEN]> {
        let mut buf = [0u8; ETHTOOL_DRVINFO_LEN];
        buf[..4].copy_from_slice(&ETHTOOL_GDRVINFO.to_ne_bytes());
        self.request(device, &mut buf, ETHTOOL_DRVINFO_LEN)?;
        Ok(buf)
    }

    /// `ETHTOOL_GSET`: `struct ethtool_cmd` (supported and advertised link
    /// modes as 32-bit masks, autonegotiation …).
    pub fn link_settings(&self, device: &str) -> io::Result<[u8; ETHTOOL_CMD_LEN]> {
        let mut buf = [0u8; ETHTOOL_CMD_LEN];
        buf[..4].copy_from_slice(&ETHTOOL_GSET.to_ne_bytes());
        self.request(device, &mut buf, ETHTOOL_CMD_LEN)?;
        Ok(buf)
    }

    /// `ETHTOOL_GSTRINGS` for `ETH_SS_STATS`: `struct ethtool_gstrings`,
    /// a 12-byte header (`cmd`, `string_set`, `len`: the number of names
    /// the kernel wrote) and 32 bytes per name. `count` is the driver's
    /// `n_stats` from [`EthtoolSocket::driver_info`].
    pub fn stat_names(&self, device: &str, count: u32) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 12 + stat_capacity(count) * ETH_GSTRING_LEN];
        buf[..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
        buf[4..8].copy_from_slice(&ETH_SS_STATS.to_ne_bytes());
        buf[8..12].copy_from_slice(&count.to_ne_bytes());
        let need = |b: &[u8]| 12 + u32_at(b, 8) as usize * ETH_GSTRING_LEN;
        self.request_sized(device, &mut buf, need)?;
        Ok(buf)
    }

    /// `ETHTOOL_GSTATS`: `struct ethtool_stats`, an 8-byte header (`cmd`,
    /// `n_stats`: the number of values written) and a u64 per value, in
    /// the order of [`EthtoolSocket::stat_names`].
    pub fn stat_values(&self, device: &str, count: u32) -> io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 8 + stat_capacity(count) * 8];
        buf[..4].copy_from_slice(&ETHTOOL_GSTATS.to_ne_bytes());
        buf[4..8].copy_from_slice(&count.to_ne_bytes());
        let need = |b: &[u8]| 8 + u32_at(b, 4) as usize * 8;
        self.request_sized(device, &mut buf, need)?;
        Ok(buf)
    }

    fn request_sized(
        &self,
        device: &str,
        buf: &mut [u8],
        written: impl Fn(&[u8]) -> usize,
    ) -> io::Result<()> {
        let capacity = buf.len();
        self.request(device, buf, capacity)?;
        // The kernel reports how many entries it wrote; more than the
        // buffer holds would already have overrun it (see
        // `stat_capacity`), so treat it as the fatal bug it would be.
        let used = written(buf);
        assert!(
            used <= capacity,
            "SIOCETHTOOL on {device} wrote {used} bytes into {capacity}"
        );
        Ok(())
    }

    /// Sends `buf` (a request struct starting with its `cmd`) for `device`.
    #[allow(unsafe_code)]
    fn request(&self, device: &str, buf: &mut [u8], min_len: usize) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        #[repr(C)]
        struct IfReq {
            name: [u8; libc::IFNAMSIZ],
            data: *mut libc::c_void,
            _pad: [u8; 16],
        }
        let name = device.as_bytes();
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(&0) {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        assert!(buf.len() >= min_len, "ethtool request buffer too small");
        let mut req = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: buf.as_mut_ptr().cast(),
            _pad: [0; 16],
        };
        req.name[..name.len()].copy_from_slice(name);
        // SAFETY: `req` is a valid `struct ifreq` (NUL-terminated name,
        // `ifr_data` pointing at `buf`), alive and exclusively borrowed for
        // the call. The kernel reads the command from `buf` and writes that
        // command's reply into it: fixed-size structs for GDRVINFO and GSET
        // (the callers pass buffers of exactly those sizes), and for
        // GSTRINGS/GSTATS as many entries as the driver counts at the time
        // of the call, which the callers size with `stat_capacity` headroom
        // over a count read just before. Only these four read-only commands
        // are ever sent.
        let rc = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                SIOCETHTOOL as _,
                &mut req as *mut IfReq,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Entries to make room for when the driver reported `count` statistics a
/// moment ago: twice as many plus 64, so a driver that grows its list
/// between two calls (queues added) cannot make the kernel write past the
/// buffer; capped at 1 << 20 entries.
fn stat_capacity(count: u32) -> usize {
    (count as usize)
        .saturating_mul(2)
        .saturating_add(64)
        .min(1 << 20)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_live_clock_state() {
        let t = read_timex().expect("adjtimex in read-only mode needs no privilege");
        assert!((0..=5).contains(&t.state), "clock state {}", t.state);
        // The kernel's tick is 1e6/HZ µs: 1000 to 10000 for HZ 100..1000.
        assert!((1000..=10000).contains(&t.tick), "tick {}", t.tick);
    }

    /// Loopback has driver info everywhere; its statistics and link
    /// settings are driver-dependent, so only their error kinds are checked.
    #[test]
    fn ethtool_on_loopback() {
        let sock = EthtoolSocket::open().unwrap();
        match sock.driver_info("lo") {
            Ok(info) => {
                assert_eq!(u32_at(&info, 0), ETHTOOL_GDRVINFO);
                assert!(info[4] != 0, "driver name is empty");
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "{e}"),
        }
        let e = sock.driver_info("oxmon-none0").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        let e = sock.driver_info("a-name-longer-than-ifnamsiz").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV), "{e}");
        if let Err(e) = sock.link_settings("lo") {
            assert!(e.raw_os_error().is_some(), "{e}");
        }
        match sock.stat_names("lo", 0) {
            Ok(names) => assert!(names.len() >= 12),
            Err(e) => assert!(e.raw_os_error().is_some(), "{e}"),
        }
    }

    #[test]
    fn stat_buffers_have_headroom() {
        assert_eq!(stat_capacity(0), 64);
        assert_eq!(stat_capacity(100), 264);
        assert_eq!(stat_capacity(u32::MAX), 1 << 20);
    }

    #[test]
    fn attr_prefix_has_the_kernels_first_layout() {
        assert_eq!(
            std::mem::size_of::<PerfEventAttrV0>(),
            PERF_ATTR_SIZE_VER0 as usize
        );
    }

    /// Counts context switches on CPU 0 where the kernel lets this process
    /// (root, or `perf_event_paranoid` <= 0); elsewhere the refusal must be
    /// an error, never a panic or a bogus counter.
    #[test]
    fn counts_context_switches_on_cpu0_or_is_refused() {
        let event = PerfEvent {
            kind: PerfEvent::SOFTWARE,
            config: 3, // PERF_COUNT_SW_CONTEXT_SWITCHES
        };
        match PerfCounter::open(event, 0) {
            Ok(c) => {
                let first = c.read().unwrap();
                // Any timer tick or wakeup on CPU 0 switches tasks; wait
                // for one, at most 2 s.
                let mut second = first;
                for _ in 0..200 {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    second = c.read().unwrap();
                    if second > first {
                        break;
                    }
                }
                println!("perf_event_open allowed: {first} then {second} context switches");
                assert!(second > first, "{first} then {second}");
            }
            Err(e) => {
                println!("perf_event_open refused: {e}");
                let code = e.raw_os_error().unwrap();
                assert!(
                    [libc::EACCES, libc::EPERM, libc::ENOSYS, libc::ENOENT].contains(&code),
                    "{e}"
                );
            }
        }
        let bad = PerfCounter::open(event, u32::MAX).unwrap_err();
        assert!(bad.raw_os_error().is_some(), "{bad}");
    }
}
