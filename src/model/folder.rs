//! The model folder, the one format a trained model travels in: `model.bpk` (burnpack weights,
//! f32 or f16) beside `model.json` (the [`Manifest`]). Loaded from bytes on every target (the
//! browser has no files) and, natively, from a path by reading the same two files; saved natively.

use super::{Error, Manifest, Result, SegmentationModel};
use burn::module::Module;
use burn::prelude::Device;

/// The weights file of a model folder.
pub const WEIGHTS_FILE: &str = "model.bpk";
/// The manifest file of a model folder.
pub const MANIFEST_FILE: &str = "model.json";

/// Rebuilds a network from the bytes of `model.bpk` and the text of `model.json`: burn's module
/// record reads the burnpack, casting f16 weights back to the network's f32. Wrong or truncated
/// files are errors, never a panic.
pub fn load_bytes(bpk: &[u8], manifest_json: &str, device: &Device) -> Result<(SegmentationModel, Manifest)> {
    let manifest = Manifest::from_json(manifest_json)?;
    Ok((load_weights(bpk, &manifest, device)?, manifest))
}

/// The network of `manifest` with the weights of `bpk` (as [`load_bytes`] reads them), on `device`.
pub fn load_weights(bpk: &[u8], manifest: &Manifest, device: &Device) -> Result<SegmentationModel> {
    let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bpk.to_vec()))
        .map_err(|e| Error::Weights(format!("model.bpk is not a burnpack file: {e:?}")))?
        .cast_to_module_dtype();
    let model = manifest
        .model
        .init(device)
        .try_load_record(record)
        .map_err(|e| Error::Weights(format!("model.bpk does not fit the {} network of model.json: {e:?}", manifest.model.arch())))?;
    Ok(model)
}

/// The bytes of `model.bpk` for `model` (f32): what [`load_bytes`] reads back, on every target
/// (the browser's export of a fine-tuned model; natively [`save`] also writes f16).
pub fn weights_bytes(model: &SegmentationModel) -> Result<Vec<u8>> {
    let bytes = model.clone().into_record().into_bytes().map_err(|e| Error::Weights(format!("cannot write the weights: {e:?}")))?;
    Ok(bytes.to_vec())
}

/// A copy of `model` on the CPU backend, its tensors read back asynchronously (the only read-back
/// WebGPU allows; a synchronous one, as [`weights_bytes`] makes, would panic in the browser).
pub async fn to_cpu(model: &SegmentationModel) -> Result<SegmentationModel> {
    use burn::module::{ModuleMapper, ModuleVisitor, Param};
    use burn::prelude::{Tensor, TensorData};
    struct Collect(Vec<Tensor<1>>);
    impl ModuleVisitor for Collect {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let t = param.val();
            let n = t.shape().num_elements();
            self.0.push(t.reshape([n]));
        }
    }
    struct Replace(std::vec::IntoIter<TensorData>, Device);
    impl ModuleMapper for Replace {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let data = self.0.next();
            let device = self.1.clone();
            param.map(|t| match data {
                Some(data) => Tensor::<1>::from_data(data, &device).reshape(t.dims()),
                None => t,
            })
        }
    }
    let mut collect = Collect(Vec::new());
    model.visit(&mut collect);
    let mut data = Vec::with_capacity(collect.0.len());
    for t in collect.0 {
        data.push(t.into_data_async().await.map_err(|e| Error::Weights(format!("cannot read the weights back: {e:?}")))?);
    }
    Ok(model.clone().map(&mut Replace(data.into_iter(), Device::flex())))
}

/// Reads `dir/model.json` (a manifest, or a bare network config) and `dir/model.bpk`, and
/// rebuilds the network on `device` (through [`load_bytes`], as the browser does).
#[cfg(not(target_arch = "wasm32"))]
pub fn load(dir: &std::path::Path, device: &Device) -> Result<(SegmentationModel, Manifest)> {
    let at = dir.display().to_string();
    let io = |file: &str, e: std::io::Error| Error::Io(format!("cannot load the model: cannot read {file}: {e}: {at}"));
    let json = std::fs::read_to_string(dir.join(MANIFEST_FILE)).map_err(|e| io(MANIFEST_FILE, e))?;
    let bpk = std::fs::read(dir.join(WEIGHTS_FILE)).map_err(|e| io(WEIGHTS_FILE, e))?;
    load_bytes(&bpk, &json, device).map_err(|e| e.at(&at))
}

/// Writes `dir/model.bpk` (f32, or f16 for conv weights when the manifest's precision is f16;
/// BatchNorm stays f32) and `dir/model.json`, each through a temporary file and a rename, so a
/// failed save never leaves half a model where a good one was.
#[cfg(not(target_arch = "wasm32"))]
pub fn save(model: &SegmentationModel, manifest: &Manifest, dir: &std::path::Path) -> Result<()> {
    use super::Precision;
    use burn_store::{BurnpackStore, HalfPrecisionAdapter, ModuleSnapshot};
    let io = |e: &dyn std::fmt::Display| Error::Io(format!("cannot save the model: {e}: {}", dir.display()));
    manifest.check()?;
    std::fs::create_dir_all(dir).map_err(|e| io(&e))?;
    let tmp = dir.join("model.bpk.partial");
    let mut store = BurnpackStore::from_file(&tmp).overwrite(true);
    if manifest.precision == Precision::F16 {
        store = store.with_to_adapter(HalfPrecisionAdapter::new());
    }
    model.save_into(&mut store).map_err(|e| io(&e))?;
    std::fs::rename(&tmp, dir.join(WEIGHTS_FILE)).map_err(|e| io(&e))?;
    let tmp = dir.join("model.json.partial");
    std::fs::write(&tmp, manifest.to_json()).map_err(|e| io(&e))?;
    std::fs::rename(&tmp, dir.join(MANIFEST_FILE)).map_err(|e| io(&e))
}
