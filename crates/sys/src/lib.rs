//! # oxmon-sys
//!
//! Safe wrappers over Linux system calls that neither `std` nor `rustix`
//! expose. The rest of the workspace forbids `unsafe`; the few FFI calls
//! live here, each behind a safe function with its invariants written down.
//!
//! - [`read_timex`]: `adjtimex(2)` in read-only mode, for the node timex
//!   collector (clock synchronisation status, offset, PLL state).
//! - [`PerfCounter`]: `perf_event_open(2)` counting one event for every
//!   process on one CPU, for the node perf collector.

use std::io;

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
