//! Which compute device runs the network: the names users type, and the one place natively where a
//! name becomes a burn [`Device`](burn::prelude::Device). The browser's asynchronous WebGPU start-up lives in `web`.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// Errors while choosing or starting a compute device.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user named a device ftuscope does not know.
    #[error("unknown device '{0}': expected cpu, wgpu or cuda")]
    Unknown(String),
    /// The device exists but this build was compiled without it.
    #[error("device '{device}' is not available: ftuscope was built without the `{feature}` feature (rebuild with `--features {feature}`)")]
    NotBuilt {
        /// The device that was asked for.
        device: DeviceChoice,
        /// The Cargo feature that enables it.
        feature: &'static str,
    },
    /// The device is compiled in but could not be started (no adapter, no driver).
    #[error("could not start device '{device}': {reason}")]
    Start {
        /// The device that was asked for.
        device: DeviceChoice,
        /// What the backend said.
        reason: String,
    },
}

/// A compute device as named on the command line or in the web app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// burn's pure-Rust `flex` CPU backend; always built, the fallback everywhere.
    Cpu,
    /// wgpu: Vulkan/Metal/DX12 natively, WebGPU in the browser.
    Wgpu,
    /// NVIDIA CUDA.
    Cuda,
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        })
    }
}

impl FromStr for DeviceChoice {
    type Err = Error;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_lowercase().as_str() {
            "cpu" | "flex" => Ok(Self::Cpu),
            "wgpu" | "gpu" | "webgpu" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            _ => Err(Error::Unknown(name.to_string())),
        }
    }
}

/// What ran the network, for people to read: shown in the web app and printed by the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendInfo {
    /// The device family that ran it.
    pub device: DeviceChoice,
    /// The burn backend, e.g. `flex`, `wgpu/webgpu`, `cuda`.
    pub backend: String,
    /// The adapter's name as its driver reports it (e.g. "SwiftShader Device (Subzero)").
    pub adapter: String,
    /// Why the device differs from what was asked for (e.g. WebGPU missing → CPU), if it does.
    pub notice: Option<String>,
}

impl BackendInfo {
    /// The CPU backend, with an optional notice saying why it was chosen.
    pub fn cpu(notice: Option<String>) -> Self {
        Self { device: DeviceChoice::Cpu, backend: "flex".into(), adapter: "CPU (burn flex, pure Rust)".into(), notice }
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(not(target_arch = "wasm32"))]
pub use native::{select_device, select_devices};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_parse_and_unknown_names_are_typed_errors() {
        assert_eq!("cpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!(" CUDA ".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda);
        assert_eq!("wgpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Wgpu);
        let err = "tpu".parse::<DeviceChoice>().unwrap_err();
        assert!(matches!(err, Error::Unknown(ref n) if n == "tpu"));
        assert!(!err.to_string().contains('\n'), "errors are one line");
    }
}
