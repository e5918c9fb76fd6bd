//! The only `unsafe` in the crate: reading and writing through pointers the
//! caller (nvml-wrapper, or any NVML client) passes in, and handle encoding.
//!
//! NVML's contract for every function used here is that a non-null pointer
//! argument points to valid, writable memory of the declared type (and, for
//! buffers, of the declared length). Null pointers are rejected with
//! NVML_ERROR_INVALID_ARGUMENT, as the real library does.

use std::ffi::{c_char, c_uint};

use nvml_wrapper_sys::bindings::nvmlDevice_t;

use crate::codes::{INSUFFICIENT_SIZE, INVALID_ARGUMENT};

/// Result of a fake NVML call: `Err` carries the NVML return code.
pub(crate) type Ret = Result<(), u32>;

/// Writes `value` to an out-parameter.
pub(crate) fn put<T>(ptr: *mut T, value: T) -> Ret {
    if ptr.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: non-null out-pointer from the caller, valid for a write of T
    // per the NVML API contract; `write` does not read or drop the old value.
    unsafe { ptr.write(value) };
    Ok(())
}

/// Reads an in/out parameter.
pub(crate) fn get<T: Copy>(ptr: *const T) -> Result<T, u32> {
    if ptr.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: non-null pointer from the caller to an initialised T.
    Ok(unsafe { ptr.read() })
}

/// An in/out struct the caller passes by pointer, to fill in place.
pub(crate) fn get_mut<'a, T>(ptr: *mut T) -> Result<&'a mut T, u32> {
    if ptr.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: non-null pointer from the caller to an initialised, writable
    // T, not aliased for the duration of the call (NVML API contract).
    Ok(unsafe { &mut *ptr })
}

/// The caller's array of `len` elements as a mutable slice.
pub(crate) fn slice_mut<'a, T>(ptr: *mut T, len: usize) -> Result<&'a mut [T], u32> {
    if ptr.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: the caller promises `len` initialised, writable elements at
    // `ptr`, not aliased for the duration of the call.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// Copies `s` and a terminating NUL into a caller buffer of `len` bytes.
pub(crate) fn put_str(buf: *mut c_char, len: c_uint, s: &str) -> Ret {
    let need = s.len() + 1;
    if (len as usize) < need {
        return Err(INSUFFICIENT_SIZE);
    }
    let out = slice_mut(buf.cast::<u8>(), need)?;
    out[..s.len()].copy_from_slice(s.as_bytes());
    out[s.len()] = 0;
    Ok(())
}

/// Device handles are not pointers to anything: the value encodes the GPU
/// index (low 16 bits, plus one) and, for a MIG device, the MIG index (plus
/// one) above that. Nobody dereferences them.
pub(crate) fn device_handle(gpu: usize, mig: Option<usize>) -> nvmlDevice_t {
    let value = (gpu + 1) | mig.map_or(0, |m| (m + 1) << 16);
    std::ptr::without_provenance_mut(value)
}

/// The `(gpu, mig)` a handle stands for.
pub(crate) fn decode_handle(handle: nvmlDevice_t) -> Option<(usize, Option<usize>)> {
    let value = handle.addr();
    let gpu = (value & 0xffff).checked_sub(1)?;
    let mig = (value >> 16).checked_sub(1);
    Some((gpu, mig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_round_trip() {
        assert_eq!(decode_handle(device_handle(3, None)), Some((3, None)));
        assert_eq!(decode_handle(device_handle(0, Some(6))), Some((0, Some(6))));
        assert_eq!(decode_handle(std::ptr::null_mut()), None);
    }

    #[test]
    fn strings_need_room_for_the_nul() {
        let mut buf = [1 as c_char; 4];
        assert_eq!(put_str(buf.as_mut_ptr(), 4, "abcd"), Err(INSUFFICIENT_SIZE));
        assert_eq!(put_str(buf.as_mut_ptr(), 4, "abc"), Ok(()));
        assert_eq!(buf[3], 0);
    }
}
