//! The slide reader for the page: open a `File`/`Blob` or a URL, describe it, read regions as RGBA.

use super::{js_error, js_value, to_js};
use crate::slide::source::{BlobSource, FetchSource, RetryPolicy};
use crate::slide::{ByteSource, Slide};
use std::rc::Rc;
use std::sync::Arc;
use wasm_bindgen::prelude::*;

/// An open slide, streamed: each region fetches and decodes only its tiles.
#[wasm_bindgen]
pub struct WebSlide {
    slide: Rc<Slide>,
}

#[wasm_bindgen]
impl WebSlide {
    /// Opens a `File`/`Blob` (read by slices, never whole) or an http(s) URL string (Range requests).
    pub async fn open(source: JsValue) -> Result<WebSlide, JsError> {
        Self::open_source(source).await.map_err(js_error)
    }

    /// `{source, bytes, format, bigtiff, byte_order, pages, pixel_size_um, levels: [...], associated: [...]}`.
    #[wasm_bindgen(getter)]
    pub fn info(&self) -> Result<JsValue, JsError> {
        // Plain objects, not `Map`s (the level entries are flattened maps in serde's model).
        to_js(&self.slide.info())
    }

    /// Sets the pixel size in µm (`null`, `0` or `NaN` clear it, back to the file's): what the user
    /// typed when the file records none or the wrong one. Segmentation resamples by it, and the
    /// summary's areas in µm² follow it.
    #[wasm_bindgen(js_name = setPixelSize)]
    pub fn set_pixel_size(&self, pixel_size_um: Option<f64>) {
        self.slide.set_pixel_size_um(pixel_size_um);
    }

    /// Resolves to the `w`×`h` region at (`x`, `y`) of `level` as RGBA bytes (for `new ImageData`);
    /// outside the image is white.
    #[wasm_bindgen(js_name = readRegion)]
    pub fn read_region_js(&self, level: usize, x: f64, y: f64, w: u32, h: u32) -> js_sys::Promise {
        let slide = self.slide.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let rgb = slide.read_region(level, x as i64, y as i64, w, h).await.map_err(js_value)?;
            Ok(js_sys::Uint8Array::from(rgba(&rgb).as_slice()).into())
        })
    }

    /// Resolves to the level-0 rectangle (`x`, `y`, `w`, `h`) scaled to `out_w`×`out_h`, as RGBA
    /// bytes ([`crate::slide::Slide::read_scaled`]: the cheapest level with the detail, resized).
    /// What a pan/zoom viewer asks for per tile.
    #[wasm_bindgen(js_name = readScaled)]
    pub fn read_scaled_js(&self, x: f64, y: f64, w: f64, h: f64, out_w: u32, out_h: u32) -> js_sys::Promise {
        let slide = self.slide.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            if !(w > 0.0 && h > 0.0 && out_w > 0 && out_h > 0 && x.is_finite() && y.is_finite()) || out_w > 4096 || out_h > 4096 {
                return Err(js_value("readScaled: the rectangle and output size must be positive (output at most 4096²)"));
            }
            let scaled = slide.read_scaled(x, y, w, h, out_w, out_h).await.map_err(js_value)?;
            Ok(js_sys::Uint8Array::from(rgba(&scaled).as_slice()).into())
        })
    }

    /// Builds overview levels for a flat slide (one pass; `progress(done, total)` after each band).
    /// Resolves to the number of levels added.
    #[wasm_bindgen(js_name = buildOverviews)]
    pub fn build_overviews_js(&self, progress: Option<js_sys::Function>) -> js_sys::Promise {
        let slide = self.slide.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let mut report = |done: u32, total: u32| {
                if let Some(f) = &progress {
                    let _ = f.call2(&JsValue::NULL, &done.into(), &total.into());
                }
            };
            let added = slide.build_overviews(&mut report).await.map_err(js_value)?;
            Ok(JsValue::from(added as u32))
        })
    }

    /// The overview levels built by `buildOverviews`, largest first, as `[{downsample, width,
    /// height, rgb: Uint8Array}]`: handed to the other worker's reader of the same slide
    /// (`adoptOverviews`), so that the pass over a flat slide is made once.
    pub fn overviews(&self) -> js_sys::Array {
        self.slide
            .overviews()
            .iter()
            .map(|(downsample, image)| {
                let level = js_sys::Object::new();
                let set = |k: &str, v: JsValue| js_sys::Reflect::set(&level, &k.into(), &v);
                let _ = set("downsample", (*downsample).into());
                let _ = set("width", image.width().into());
                let _ = set("height", image.height().into());
                let _ = set("rgb", js_sys::Uint8Array::from(image.as_raw().as_slice()).into());
                JsValue::from(level)
            })
            .collect()
    }

    /// Takes overview levels that another reader of the same slide built (`overviews()`),
    /// refusing ones that do not fit this slide. Returns how many were added (0: none needed, or
    /// this slide has them already).
    #[wasm_bindgen(js_name = adoptOverviews)]
    pub fn adopt_overviews(&self, levels: js_sys::Array) -> Result<u32, JsError> {
        let field = |level: &JsValue, k: &str| js_sys::Reflect::get(level, &k.into()).ok().filter(|v| !v.is_undefined());
        let mut images = Vec::with_capacity(levels.length() as usize);
        for (i, level) in levels.iter().enumerate() {
            let bad = || JsError::new(&format!("overview {i}: expected {{downsample, width, height, rgb: Uint8Array}}"));
            let number = |k: &str| field(&level, k).and_then(|v| v.as_f64()).ok_or_else(bad);
            let (downsample, width, height) = (number("downsample")?, number("width")?, number("height")?);
            let rgb = field(&level, "rgb").and_then(|v| v.dyn_into::<js_sys::Uint8Array>().ok()).ok_or_else(bad)?;
            let image = image::RgbImage::from_raw(width as u32, height as u32, rgb.to_vec()).ok_or_else(bad)?;
            images.push((downsample, image));
        }
        Ok(self.slide.adopt_overviews(images).map_err(js_error)? as u32)
    }
}

impl WebSlide {
    /// Opens a Blob or URL (the Rust-side entry, used by the browser tests).
    pub async fn open_source(source: JsValue) -> Result<WebSlide, String> {
        if let Some(files) = source.dyn_ref::<js_sys::Array>() {
            return Self::open_files(files).await;
        }
        let bytes: Arc<dyn ByteSource> = if let Some(url) = source.as_string() {
            Arc::new(FetchSource::open(&url, RetryPolicy::default()).await.map_err(|e| e.to_string())?)
        } else if let Some(blob) = source.dyn_ref::<web_sys::Blob>() {
            let name = source.dyn_ref::<web_sys::File>().map(|f| f.name()).unwrap_or_else(|| "blob".into());
            Arc::new(BlobSource::new(blob.clone(), &name))
        } else {
            return Err("open a File, a Blob or a URL string".into());
        };
        let slide = Slide::open(bytes).await.map_err(|e| e.to_string())?;
        Ok(WebSlide { slide: Rc::new(slide) })
    }

    /// Several files picked or dropped together (a DICOM WSI series: one file per level): one
    /// file opens as usual; more open as a DICOM series (files that are not DICOM are left out).
    async fn open_files(files: &js_sys::Array) -> Result<WebSlide, String> {
        if files.length() == 1 {
            return Box::pin(Self::open_source(files.get(0))).await;
        }
        if files.length() as usize > crate::slide::MAX_SERIES_FILES {
            return Err(format!("{} files at once; a DICOM series is at most {}", files.length(), crate::slide::MAX_SERIES_FILES));
        }
        let mut sources: Vec<Arc<dyn ByteSource>> = Vec::new();
        for file in files.iter() {
            let blob = file.dyn_ref::<web_sys::Blob>().ok_or("open Files or Blobs")?;
            let name = file.dyn_ref::<web_sys::File>().map(|f| f.name()).unwrap_or_else(|| "blob".into());
            sources.push(Arc::new(BlobSource::new(blob.clone(), &name)));
        }
        let name = format!("{} files", sources.len());
        let slide = Slide::open_dicom(sources, &name, crate::slide::SlideOptions::new()).await.map_err(|e| e.to_string())?;
        Ok(WebSlide { slide: Rc::new(slide) })
    }

    /// The Rust slide.
    pub fn slide(&self) -> &Slide {
        &self.slide
    }

    /// The slide, shared with a running segmentation.
    pub(crate) fn shared(&self) -> Rc<Slide> {
        self.slide.clone()
    }
}

fn rgba(rgb: &image::RgbImage) -> Vec<u8> {
    rgb.pixels().flat_map(|p| [p.0[0], p.0[1], p.0[2], 255]).collect()
}
