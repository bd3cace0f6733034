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

/// `count` devices of one kind for data-parallel training: CUDA devices 0…count−1 (each started
/// and checked); on the CPU the same device `count` times (which exercises the multi-device path
/// without speeding it up); wgpu supports one.
pub fn select_devices(choice: DeviceChoice, count: usize) -> Result<(Vec<Device>, BackendInfo), Error> {
    let (first, info) = select_device(choice)?;
    let mut devices = vec![first.clone()];
    for _index in 1..count.max(1) {
        match choice {
            DeviceChoice::Cpu => devices.push(first.clone()),
            #[cfg(feature = "cuda")]
            DeviceChoice::Cuda => devices.push(Device::cuda(_index)),
            _ => return Err(Error::Start { device: choice, reason: "only one device of this kind can be used".into() }),
        }
    }
    Ok((devices, info))
}

#[cfg(feature = "wgpu")]
fn wgpu() -> Result<(Device, BackendInfo), Error> {
    let (device, setup) =
        Device::wgpu_options().init_with_setup().map_err(|e| Error::Start { device: DeviceChoice::Wgpu, reason: e.to_string() })?;
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
    use std::sync::{Arc, Mutex};
    // burn's CUDA device is lazy, and cubecl panics (on its own thread) when no driver loads. Make
    // one tiny tensor now, with panics caught and silenced, so a missing driver becomes this error
    // rather than a panic at the first convolution.
    let device = Device::cuda(0);
    let probe = device.clone();
    let first_panic = Arc::new(Mutex::new(None::<String>));
    let sink = first_panic.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Ok(mut first) = sink.lock() {
            first.get_or_insert_with(|| panic_message(info.payload()));
        }
    }));
    let started = std::panic::catch_unwind(move || {
        burn::prelude::Tensor::<1>::zeros([1], &probe).into_data();
    });
    std::panic::set_hook(previous);
    if started.is_err() {
        let reason = first_panic.lock().ok().and_then(|mut p| p.take());
        return Err(Error::Start {
            device: DeviceChoice::Cuda,
            reason: reason.unwrap_or_else(|| "the CUDA runtime failed to start".into()),
        });
    }
    Ok((device, BackendInfo { device: DeviceChoice::Cuda, backend: "cuda".into(), adapter: "CUDA device 0".into(), notice: None }))
}

/// The first sentence of a panic's message (cudarc's run on with a long list of library names).
#[cfg(feature = "cuda")]
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    let text = payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or("the CUDA runtime failed to start");
    let first_line = text.lines().next().unwrap_or_default();
    first_line.split(" - ").next().unwrap_or(first_line).to_string()
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
