//! NVML functions nvml-wrapper loads but does not wrap safely.

use nvml_wrapper::error::{nvml_sym, nvml_try, NvmlError};
use nvml_wrapper::Device;

/// The GPU instance ID of a MIG device (`nvmlDeviceGetGpuInstanceId`):
/// the ID `nvmlGpmMigSampleGet` takes and DCGM labels `GPU_I_ID`.
/// A full GPU's handle answers `InvalidArg` (NVML) or `NotSupported`.
pub fn gpu_instance_id(mig: &Device<'_>) -> Result<u32, NvmlError> {
    let sym = nvml_sym(mig.nvml().lib().nvmlDeviceGetGpuInstanceId.as_ref())?;
    let mut id: std::ffi::c_uint = 0;
    // SAFETY: `sym` is NVML's nvmlDeviceGetGpuInstanceId, resolved from the
    // library `mig` was obtained from, which stays loaded while `mig`
    // borrows its `Nvml`; the handle is valid for that lifetime, and `id` is
    // a live, writable c_uint for the duration of the call.
    #[allow(unsafe_code)]
    let code = unsafe { sym(mig.handle(), &mut id) };
    nvml_try(code)?;
    Ok(id)
}
