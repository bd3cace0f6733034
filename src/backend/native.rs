//! Native device selection: one function turns a [`DeviceChoice`] into a started burn [`Device`].

use super::{BackendInfo, DeviceChoice, Error};
use burn::prelude::Device;

/// Starts the named device natively, or says why it cannot.
///
/// `cpu` is always available. `wgpu` and `cuda` need the Cargo features of the same names; without
/// them this returns [`Error::NotBuilt`] rather than silently running on the CPU.
pub fn select_device(choice: DeviceChoice) -> Result<(Device, BackendInfo), Error> {
    match choice {
        DeviceChoice::Cpu => Ok((Device::flex(), BackendInfo::cpu(None))),
        DeviceChoice::Wgpu => wgpu(),
        DeviceChoice::Cuda => cuda(),
    }
}

#[cfg(feature = "wgpu")]
fn wgpu() -> Result<(Device, BackendInfo), Error> {
    let (device, setup) = Device::wgpu_options()
        .init_with_setup()
        .map_err(|e| Error::Start { device: DeviceChoice::Wgpu, reason: e.to_string() })?;
    let info = setup.adapter.get_info();
    Ok((
        device,
        BackendInfo {
            device: DeviceChoice::Wgpu,
            backend: format!("wgpu/{:?}", setup.backend).to_lowercase(),
            adapter: info.name,
            notice: None,
        },
    ))
}

#[cfg(not(feature = "wgpu"))]
fn wgpu() -> Result<(Device, BackendInfo), Error> {
    Err(Error::NotBuilt { device: DeviceChoice::Wgpu, feature: "wgpu" })
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<(Device, BackendInfo), Error> {
    // burn's CUDA device is lazy: make one tiny tensor so a missing driver is reported here, as an
    // error, instead of at the first convolution. cubecl panics when no driver loads, so catch it.
    let device = Device::cuda(0);
    let probe = device.clone();
    std::panic::catch_unwind(move || {
        burn::prelude::Tensor::<1>::zeros([1], &probe).into_data();
    })
    .map_err(|panic| Error::Start {
        device: DeviceChoice::Cuda,
        reason: panic_message(&panic),
    })?;
    Ok((
        device,
        BackendInfo {
            device: DeviceChoice::Cuda,
            backend: "cuda".into(),
            adapter: "CUDA device 0".into(),
            notice: None,
        },
    ))
}

#[cfg(feature = "cuda")]
fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("the CUDA runtime failed to start");
    text.lines().next().unwrap_or_default().to_string()
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<(Device, BackendInfo), Error> {
    Err(Error::NotBuilt { device: DeviceChoice::Cuda, feature: "cuda" })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_always_starts() {
        let (_, info) = select_device(DeviceChoice::Cpu).unwrap();
        assert_eq!(info.backend, "flex");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_is_a_clear_error() {
        let err = select_device(DeviceChoice::Cuda).err().unwrap();
        assert!(err.to_string().contains("--features cuda"), "{err}");
    }
}
