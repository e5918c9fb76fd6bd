//! # oxmon-sys
//!
//! Safe wrappers over Linux system calls that neither `std` nor `rustix`
//! expose. The rest of the workspace forbids `unsafe`; the few FFI calls
//! live here, each behind a safe function with its invariants written down.
//!
//! - [`read_timex`]: `adjtimex(2)` in read-only mode, for the node timex
//!   collector (clock synchronisation status, offset, PLL state).
//! - [`nvml::gpu_instance_id`] (feature `nvml`): `nvmlDeviceGetGpuInstanceId`
//!   on a MIG device, which nvml-wrapper 0.13 does not wrap, for oxmon-gpu.

#[cfg(feature = "nvml")]
pub mod nvml;

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
}
