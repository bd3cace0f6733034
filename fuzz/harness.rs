//! The bodies of the fuzz targets, shared by `fuzz_targets/*.rs` (libFuzzer, `make fuzz`) and
//! `tests/fuzz_corpus.rs` (every kept input, in `make test`). Each takes arbitrary bytes and must
//! return without panicking, hanging or allocating beyond the library's limits; errors are the
//! expected outcome for most inputs. Where a result can be checked against itself (RLE round
//! trips, GeoJSON re-reads), it is asserted: a wrong answer is a crash too.

#![allow(dead_code)]

use burn::prelude::Device;
use ftuscope::mask::{BinaryMask, read_annotations, rle_decode, rle_encode, rle_encode_polygons, rle_runs, write_annotations};
use ftuscope::model::folder::load_bytes;
use ftuscope::slide::{MemorySource, Slide, SlideOptions};
use futures_lite::future::block_on;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;

/// Largest single allocation allowed while fuzzing: over the reader's own limits (64 MiB per tile,
/// 256 MiB of metadata) with room for decoding buffers, far under what a hostile size could ask.
/// libFuzzer's `-malloc_limit_mb` needs a sanitizer's malloc hooks, which `-s none` builds lack, so
/// the harness enforces it itself — in the fuzz targets and in tests/fuzz_corpus.rs alike.
pub const MAX_ALLOCATION: usize = 512 << 20;

/// The system allocator, aborting (a crash libFuzzer records) on any allocation over [`MAX_ALLOCATION`].
pub struct Limited;

fn check_size(size: usize) {
    if size > MAX_ALLOCATION {
        // No formatting: it could allocate.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"fuzz harness: an allocation over 512 MiB\n");
        std::process::abort();
    }
}

// SAFETY: every call forwards to `System` with the same arguments after a size check.
unsafe impl GlobalAlloc for Limited {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check_size(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Limited = Limited;

/// Region side read per level: enough to cross tile borders without making every input slow.
const REGION: u32 = 96;
/// Largest image read whole (thumbnail, associated images, overviews), in pixels.
const WHOLE_PIXELS: u64 = 1 << 22;

/// Opens the bytes as a slide and reads regions at every level: the origin, across the middle and
/// across the far corner (part outside the image), then the thumbnail, the associated images and,
/// for small flat slides, the overview levels built in memory.
pub fn slide(data: &[u8]) {
    let source = Arc::new(MemorySource::new(data.to_vec(), "fuzz.tif"));
    let options = SlideOptions::new().with_cache_bytes(16 << 20).with_overview_bytes(16 << 20);
    let Ok(slide) = block_on(Slide::open_with(source, options)) else { return };
    let info = slide.info();
    assert!(!info.levels.is_empty(), "an opened slide has a level");
    let (w0, h0) = slide.dimensions();
    if (w0 as u64) * (h0 as u64) <= WHOLE_PIXELS {
        let _ = block_on(slide.build_overviews(&mut |_, _| {}));
    }
    for (index, level) in slide.levels().iter().enumerate() {
        let (w, h) = (level.width as i64, level.height as i64);
        for (x, y) in [(0, 0), (w / 2 - REGION as i64 / 2, h / 2 - REGION as i64 / 2), (w - REGION as i64 / 2, h - REGION as i64 / 2)] {
            if let Ok(region) = block_on(slide.read_region(index, x, y, REGION, REGION)) {
                assert_eq!(region.dimensions(), (REGION, REGION));
            }
        }
    }
    let smallest = slide.levels().last().map(|l| l.width as u64 * l.height as u64).unwrap_or(0);
    if smallest <= WHOLE_PIXELS {
        let _ = block_on(slide.thumbnail(64));
    }
    for associated in slide.associated().to_vec() {
        if associated.width as u64 * associated.height as u64 <= WHOLE_PIXELS {
            let _ = block_on(slide.associated_image(&associated.name));
        }
    }
}

/// Parses the bytes as a competition RLE; the first two bytes give an image size (1–256 on a
/// side). A decoded mask encodes back to runs that decode to the same mask.
pub fn rle(data: &[u8]) {
    let (size, text) = match data {
        [w, h, rest @ ..] => ((*w as u32 + 1, *h as u32 + 1), rest),
        _ => return,
    };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let runs = rle_runs(text);
    let Ok(mask) = rle_decode(text, size.0, size.1) else { return };
    assert!(runs.is_ok(), "rle_decode accepted what rle_runs rejects");
    let encoded = rle_encode(&mask);
    let again = rle_decode(&encoded, size.0, size.1).expect("our own RLE decodes");
    assert!(same(&mask, &again), "RLE round trip changed the mask");
}

/// Parses the bytes as HuBMAP/QuPath GeoJSON; what parses is rasterised into a small mask (any
/// coordinates, however wild) and written back, and the written text reads back the same.
pub fn geojson(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(annotations) = read_annotations(text) else { return };
    let polygons: Vec<_> = annotations.iter().flat_map(|a| a.polygons.iter().cloned()).collect();
    let _ = rle_encode_polygons(&polygons, 64, 48);
    let written = write_annotations(&annotations, true);
    let again = read_annotations(&written).expect("our own GeoJSON reads back");
    assert_eq!(again.len(), annotations.len());
}

/// Loads a model from `model.json` text and `model.bpk` bytes, split at the first zero byte.
pub fn model(data: &[u8]) {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let Ok(json) = std::str::from_utf8(&data[..split]) else { return };
    let bpk = data.get(split + 1..).unwrap_or(&[]);
    let _ = load_bytes(bpk, json, &Device::flex());
}

fn same(a: &BinaryMask, b: &BinaryMask) -> bool {
    a.width() == b.width() && a.height() == b.height() && (0..a.width()).all(|x| (0..a.height()).all(|y| a.get(x, y) == b.get(x, y)))
}
