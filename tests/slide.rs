//! The slide reader against files made by third-party tools (libvips, libtiff's tiffcp, PyPI
//! tifffile — installed by `make test`), the real CMU-1-Small-Region.svs, broken files, and
//! tests/server/range-server.mjs (run with node) with and without Range support.

mod common;

use common::{cmu, open, psnr, python, whole};
use ftuscope::slide::source::{HttpSource, RetryPolicy};
use ftuscope::slide::{ByteSource, Error, MemorySource, Slide, SlideFormat, TileCompression};
use ftuscope::synth::{DatasetOptions, write_dataset};
use futures_lite::future::block_on;
use image::RgbImage;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?} (make test installs it): {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A 500×470 source image (a crop of scikit-image's IHC sample) as PNG and raw RGB.
fn source(dir: &Path) -> RgbImage {
    let ihc = image::open("assets/ihc.png").unwrap().to_rgb8();
    let img = image::imageops::crop_imm(&ihc, 5, 20, 500, 470).to_image();
    img.save(dir.join("src.png")).unwrap();
    std::fs::write(dir.join("src.rgb"), img.as_raw()).unwrap();
    img
}

/// What libvips (through libtiff) decodes for page `page` of `path`, as RGB.
fn vips(path: &Path, page: usize, dir: &Path) -> RgbImage {
    let out = dir.join("vips-out.png");
    run(Command::new("vips").arg("tiffload").arg(path).arg(&out).arg("--page").arg(page.to_string()));
    image::open(&out).unwrap().to_rgb8()
}

#[test]
fn vips_and_tiffcp_layouts_read_pixel_exact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = source(d);
    let src = d.join("src.png");
    let mut files: Vec<(PathBuf, &str)> = Vec::new();
    for (name, args) in [
        ("tiled-none", "--tile --tile-width 128 --tile-height 128 --compression none"),
        ("tiled-lzw", "--tile --tile-width 128 --tile-height 128 --compression lzw"),
        ("tiled-lzw-predictor", "--tile --tile-width 64 --tile-height 64 --compression lzw --predictor horizontal"),
        ("tiled-deflate", "--tile --tile-width 128 --tile-height 128 --compression deflate"),
        ("strips-packbits", "--compression packbits"),
        ("strips-none", "--compression none"),
        ("big-deflate", "--tile --tile-width 256 --tile-height 256 --compression deflate --bigtiff"),
    ] {
        let path = d.join(format!("{name}.tif"));
        run(Command::new("vips").arg("tiffsave").arg(&src).arg(&path).args(args.split(' ')));
        files.push((path, name));
    }
    let lzw = d.join("tiled-lzw.tif");
    for (name, args) in [("tiffcp-planar", "-p separate -c none"), ("tiffcp-bigendian-planar-lzw", "-B -p separate -c lzw -t -w 64 -l 64")]
    {
        let path = d.join(format!("{name}.tif"));
        run(Command::new("tiffcp").args(args.split(' ')).arg(&lzw).arg(&path));
        files.push((path, name));
    }
    for (path, name) in &files {
        let slide = open(path);
        assert_eq!(slide.levels().len(), 1, "{name}");
        assert_eq!(slide.dimensions(), (500, 470), "{name}");
        assert!(whole(&slide, 0) == img, "{name}: pixels differ from the source");
        // An unaligned region straddling the edge: outside is white.
        let region = block_on(slide.read_region(0, 450, -10, 100, 40)).unwrap();
        assert_eq!(region.get_pixel(0, 10), img.get_pixel(450, 0), "{name}");
        assert_eq!(region.get_pixel(0, 0).0, [255; 3], "{name}");
        assert_eq!(region.get_pixel(99, 39).0, [255; 3], "{name}");
    }
}

#[test]
fn vips_pyramids_and_jpeg_match_libvips_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    source(d);
    let path = d.join("pyr.tif");
    run(Command::new("vips")
        .arg("tiffsave")
        .arg(d.join("src.png"))
        .arg(&path)
        .args("--tile --tile-width 64 --tile-height 64 --pyramid --compression jpeg --Q 90 --bigtiff".split(' ')));
    let slide = open(&path);
    let levels = slide.levels();
    assert!(levels.len() >= 3, "{levels:?}");
    assert_eq!((levels[1].width, levels[1].height), (250, 235));
    assert!((levels[1].downsample - 2.0).abs() < 1e-9);
    for level in 0..3 {
        let ours = whole(&slide, level);
        let theirs = vips(&path, level, d);
        let db = psnr(&ours, &theirs);
        assert!(db >= 40.0, "level {level}: {db:.1} dB against libjpeg via libvips");
    }
}

#[test]
fn tifffile_ome_subifds_16_bit_and_hubmap_planes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = source(d);
    let script = r#"
import sys, numpy as np, tifffile
d = sys.argv[1]
img = np.fromfile(d + '/src.rgb', np.uint8).reshape(470, 500, 3)
with tifffile.TiffWriter(d + '/ome.ome.tif', ome=True, bigtiff=True) as tif:
    meta = {'PhysicalSizeX': 250, 'PhysicalSizeXUnit': 'nm', 'PhysicalSizeY': 250, 'PhysicalSizeYUnit': 'nm'}
    tif.write(img, subifds=2, tile=(128, 128), photometric='rgb', compression='zlib', metadata=meta)
    tif.write(img[::2, ::2], subfiletype=1, tile=(128, 128), photometric='rgb', compression='zlib')
    tif.write(img[::4, ::4], subfiletype=1, tile=(128, 128), photometric='rgb', compression='zlib')
tifffile.imwrite(d + '/u16.tif', img.astype(np.uint16) * 256 + 7, tile=(64, 64), photometric='rgb')
tifffile.imwrite(d + '/planes.tif', np.ascontiguousarray(img.transpose(2, 0, 1)), photometric='minisblack')
tifffile.imwrite(d + '/planar.tif', np.ascontiguousarray(img.transpose(2, 0, 1)), photometric='rgb', planarconfig='separate', tile=(64, 64))
"#;
    run(Command::new(python()).arg("-c").arg(script).arg(d));
    let ome = open(&d.join("ome.ome.tif"));
    assert_eq!(ome.format(), SlideFormat::OmeTiff);
    assert_eq!(ome.pixel_size_um(), Some(0.25));
    let levels = ome.levels();
    assert_eq!(levels.iter().map(|l| (l.width, l.height)).collect::<Vec<_>>(), vec![(500, 470), (250, 235), (125, 118)]);
    assert!(whole(&ome, 0) == img);
    let half = image::RgbImage::from_fn(250, 235, |x, y| *img.get_pixel(2 * x, 2 * y));
    assert!(whole(&ome, 1) == half, "the SubIFD level holds img[::2, ::2]");

    let u16 = open(&d.join("u16.tif"));
    assert!(whole(&u16, 0) == img, "16-bit samples keep their high byte");

    let planes = open(&d.join("planes.tif"));
    assert_eq!(planes.format(), SlideFormat::HubmapPlanes);
    assert!(whole(&planes, 0) == img, "three grey pages read as one RGB image");

    let planar = open(&d.join("planar.tif"));
    assert!(whole(&planar, 0) == img);
}

#[test]
fn the_real_svs_has_its_levels_associated_images_and_colours() {
    let slide = open(&cmu());
    assert_eq!(slide.format(), SlideFormat::Svs);
    assert_eq!(slide.dimensions(), (2220, 2967));
    assert_eq!(slide.pixel_size_um(), Some(0.499));
    let names: Vec<_> = slide.associated().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["thumbnail", "label", "macro"]);
    let dir = tempfile::tempdir().unwrap();
    let ours = block_on(slide.read_region(0, 1000, 1000, 600, 400)).unwrap();
    let theirs = vips(&cmu(), 0, dir.path());
    let theirs = image::imageops::crop_imm(&theirs, 1000, 1000, 600, 400).to_image();
    let db = psnr(&ours, &theirs);
    assert!(db >= 40.0, "{db:.1} dB against libvips");
    let label = block_on(slide.associated_image("label")).unwrap();
    assert_eq!(label.dimensions(), (387, 463));
    assert!(block_on(slide.build_overviews(&mut |_, _| {})).unwrap() > 0, "2967 px tall and flat: overviews are built");
    let thumb = block_on(slide.thumbnail(256)).unwrap();
    assert_eq!(thumb.height(), 256);
    // A second reader of the same file takes the first's overviews (the page's two workers make
    // one pass), not ones that do not fit; once it has them, it takes no more.
    let second = open(&cmu());
    let built = slide.overviews();
    let mut wrong: Vec<_> = built.iter().map(|(d, image)| (*d, (**image).clone())).collect();
    wrong[0].0 *= 2.0;
    assert!(matches!(second.adopt_overviews(wrong), Err(ftuscope::slide::Error::Limit(_))), "a level that does not fit is refused");
    let levels: Vec<_> = built.iter().map(|(d, image)| (*d, (**image).clone())).collect();
    assert_eq!(second.adopt_overviews(levels.clone()).unwrap(), built.len());
    let sizes = |s: &ftuscope::slide::Slide| s.levels().iter().map(|l| (l.width, l.height, l.downsample, l.is_virtual)).collect::<Vec<_>>();
    assert_eq!(sizes(&second), sizes(&slide));
    assert_eq!(block_on(second.thumbnail(256)).unwrap(), thumb);
    assert_eq!(second.adopt_overviews(levels).unwrap(), 0, "overviews are taken once");
    // A region of an overview level at an offset shows the same place as level 0 (averaged): an
    // overview once answered every offset region with its top-left corner shifted, i.e. glass.
    let levels = slide.levels();
    let (index, level) = levels.iter().enumerate().find(|(_, l)| l.is_virtual).unwrap();
    let d = level.downsample as u32;
    let (x, y) = (1200 / d, 1600 / d);
    let small = block_on(slide.read_region(index, x as i64, y as i64, 96, 96)).unwrap();
    let full = block_on(slide.read_region(0, (x * d) as i64, (y * d) as i64, 96 * d, 96 * d)).unwrap();
    let full = image::imageops::resize(&full, 96, 96, image::imageops::FilterType::Triangle);
    let db = psnr(&small, &full);
    assert!(db >= 25.0, "overview level {index} (÷{d}) vs level 0 at ({x}, {y}): {db:.1} dB");
}

#[test]
fn broken_files_give_typed_errors_never_panics() {
    let bytes = std::fs::read(cmu()).unwrap();
    let open_bytes = |b: Vec<u8>| block_on(Slide::open(Arc::new(MemorySource::new(b, "mem.svs")))).map(|_| ());
    let err = open_bytes(b"\x89PNG not a tiff at all".to_vec()).unwrap_err();
    assert!(matches!(err.kind(), Error::NotTiff), "{err}");
    assert!(err.to_string().ends_with(": mem.svs"), "{err}");
    assert!(matches!(open_bytes(Vec::new()).unwrap_err().kind(), Error::NotTiff));
    // Cut at many points: every one is an error or a readable slide, never a panic.
    let mut errors = 0;
    for cut in (0..bytes.len()).step_by(bytes.len() / 97).chain([8, 9, 15, 16]) {
        let cut_bytes = bytes[..cut].to_vec();
        let slide = block_on(Slide::open(Arc::new(MemorySource::new(cut_bytes, "cut"))));
        match slide {
            Err(_) => errors += 1,
            Ok(slide) => {
                // Reading may fail (tiles past the end), but with a typed error.
                let (w, h) = slide.dimensions();
                if let Err(e) = block_on(slide.read_region(0, 0, 0, w.min(2000), h.min(2000))) {
                    assert!(!e.to_string().is_empty());
                    errors += 1;
                }
            }
        }
    }
    assert!(errors > 90, "{errors}");
    // Bad levels and regions are errors too.
    let slide = open(&cmu());
    assert!(matches!(block_on(slide.read_region(9, 0, 0, 10, 10)).unwrap_err().kind(), Error::NotFound(_)));
    assert!(matches!(block_on(slide.read_region(0, 0, 0, 100_000, 10)).unwrap_err().kind(), Error::Limit(_)));
    assert_eq!(block_on(slide.read_region(0, -5000, -5000, 10, 10)).unwrap().get_pixel(5, 5).0, [255; 3]);
}

/// tests/server/range-server.mjs (the browser tests' server too) over `dir` on a free port, with
/// its misbehaving modes (`/flaky/…`, `/switch/…` and `/set/…`, …) and request counts (`/count/…`);
/// stopped on drop.
struct RangeServer {
    child: Child,
    url: String,
}

impl RangeServer {
    fn start(dir: &Path) -> Self {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/server/range-server.mjs");
        let mut child = Command::new("node")
            .arg(&script)
            .arg("0")
            .arg(dir)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run node for {} (`make setup-npm` installs it): {e}", script.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.split_whitespace().next().unwrap_or_else(|| panic!("{} printed no URL", script.display()));
        Self { url: url.trim_end_matches('/').to_string(), child }
    }

    /// The text answer to a GET of `path` (`/count/…`, `/set/…`).
    fn get(&self, path: &str) -> String {
        ureq::get(format!("{}{path}", self.url)).call().unwrap().into_body().read_to_string().unwrap()
    }
}

impl Drop for RangeServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn http_range_reading_matches_the_file_and_errors_are_clear() {
    let server = RangeServer::start(cmu().parent().unwrap());
    let policy = RetryPolicy { retries: 3, backoff_ms: 1, timeout_s: 30 };
    let http = |path: &str| block_on(HttpSource::open(&format!("{}{path}", server.url), policy));
    let local = open(&cmu());
    let expected = block_on(local.read_region(0, 300, 700, 500, 300)).unwrap();
    for path in ["/range/CMU-1-Small-Region.svs", "/flaky/CMU-1-Small-Region.svs", "/norange/CMU-1-Small-Region.svs"] {
        let requests = || server.get(&format!("/count{path}")).parse::<usize>().unwrap();
        let source: Arc<dyn ByteSource> = Arc::new(http(path).unwrap());
        let before = requests();
        let slide = block_on(Slide::open(source)).unwrap();
        assert_eq!(slide.associated().len(), 3);
        let got = block_on(slide.read_region(0, 300, 700, 500, 300)).unwrap();
        assert!(got == expected, "{path}");
        let used = requests() - before;
        println!("{path}: {before} requests to open the source, {used} more to open the slide and read one region");
        assert!(used <= 12, "{path}: {used} requests to open and read one region");
    }
    let err = http("/range/missing").err().unwrap();
    assert!(matches!(err.kind(), Error::Http { status: 404 }), "{err}");
    assert!(err.to_string().ends_with("/missing"), "{err}");
    let err = block_on(HttpSource::open("http://127.0.0.1:9/closed.tif", policy)).err().unwrap();
    assert!(matches!(err.kind(), Error::Network(_)), "{err}");
}

#[test]
fn hostile_servers_give_typed_errors_and_never_wrong_pixels() {
    let server = RangeServer::start(cmu().parent().unwrap());
    let url = |mode: &str| format!("{}/{mode}/CMU-1-Small-Region.svs", server.url);
    let local = open(&cmu());
    let expected = block_on(local.read_region(0, 300, 700, 500, 300)).unwrap();
    let policy = RetryPolicy { retries: 3, backoff_ms: 1, timeout_s: 30 };
    // 500 twice, then 200s: the retries succeed; a redirect is followed.
    for mode in ["error500", "redirect"] {
        let source = Arc::new(block_on(HttpSource::open(&url(mode), policy)).unwrap());
        let opened = server.get(&format!("/count/{mode}/CMU-1-Small-Region.svs"));
        assert!(mode != "error500" || opened == "3", "two 500s, then the first block: {opened} requests");
        let slide = block_on(Slide::open(source)).unwrap();
        assert!(block_on(slide.read_region(0, 300, 700, 500, 300)).unwrap() == expected, "{mode}");
    }
    // A server that does not answer: a "timed out" error after the policy's timeout, not a hang.
    server.get("/set/slow");
    let started = std::time::Instant::now();
    let quick = RetryPolicy { retries: 0, backoff_ms: 1, timeout_s: 1 };
    let err = block_on(HttpSource::open(&url("switch"), quick)).err().expect("a silent server is an error");
    println!("slow: {err} after {:.1} s", started.elapsed().as_secs_f64());
    assert!(matches!(err.kind(), Error::Network(_)) && err.to_string().to_lowercase().contains("time"), "{err}");
    assert!(started.elapsed().as_secs_f64() < 3.5, "took {:?}", started.elapsed());
    // A wrong Content-Range or a body cut short after the slide opened: the region fails with a
    // typed error — never pixels from the wrong bytes — and a second read fails the same way (no
    // corrupt tile was cached).
    for mode in ["wrongrange", "drop"] {
        server.get("/set/none");
        let source = Arc::new(block_on(HttpSource::open(&url("switch"), policy)).unwrap());
        let slide = match block_on(Slide::open(source)) {
            Ok(slide) => slide,
            Err(e) => panic!("{mode}: the slide must open while the server behaves: {e}"),
        };
        server.get(&format!("/set/{mode}"));
        for _ in 0..2 {
            match block_on(slide.read_region(0, 300, 700, 500, 300)) {
                Ok(got) => panic!("{mode}: a region read through a hostile server succeeded (same pixels: {})", got == expected),
                Err(e) => {
                    println!("{mode}: {e}");
                    assert!(matches!(e.kind(), Error::BadResponse(_) | Error::Network(_) | Error::Truncated { .. }), "{mode}: {e}");
                }
            }
        }
    }
}

/// Mean R, G, B of level 0's (10, 20, 200×150) region of tests/data/cmu-300x200.tif (a libvips
/// JPEG pyramid of a CMU-1 crop); the browser test checks the same numbers.
const CROP_MEAN: [f64; 3] = [167.471_433, 120.423_933, 155.451_367];

#[test]
fn the_small_fixture_reads_the_same_as_in_the_browser() {
    let slide = open(Path::new("tests/data/cmu-300x200.tif"));
    assert_eq!(slide.levels().len(), 4);
    let region = block_on(slide.read_region(0, 10, 20, 200, 150)).unwrap();
    let mean: Vec<f64> = (0..3).map(|c| region.pixels().map(|p| p.0[c] as f64).sum::<f64>() / (200.0 * 150.0)).collect();
    for c in 0..3 {
        assert!((mean[c] - CROP_MEAN[c]).abs() < 0.01, "{mean:?}");
    }
}

#[test]
fn grey_and_rgba_pages_read_as_rgb() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = source(d);
    run(Command::new("vips").arg("colourspace").arg(d.join("src.png")).arg(d.join("grey.png")).arg("b-w"));
    run(Command::new("vips").arg("bandjoin_const").arg(d.join("src.png")).arg(d.join("rgba.png")).arg("255"));
    for name in ["grey", "rgba"] {
        let tif = d.join(format!("{name}.tif"));
        run(Command::new("vips").arg("tiffsave").arg(d.join(format!("{name}.png"))).arg(&tif).args(["--tile", "--compression", "deflate"]));
        let slide = open(&tif);
        let ours = whole(&slide, 0);
        let theirs = image::open(d.join(format!("{name}.png"))).unwrap().to_rgb8();
        assert!(ours == theirs, "{name}");
    }
    assert!(whole(&open(&d.join("rgba.tif")), 0) == img);
}

#[test]
fn synthetic_slides_read_back_with_pixel_size_levels_and_planes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (planes, compression) in [(false, TileCompression::Jpeg(90)), (true, TileCompression::Lzw)] {
        let out = d.join(format!("set-{planes}"));
        let options = DatasetOptions {
            count: 1,
            size: (1500, 1100),
            seed: 3,
            tile: 256,
            compression,
            pyramid: true,
            bigtiff: !planes,
            hubmap_planes: planes,
            unannotated_fraction: 0.0,
            tissue_scale: 1.0,
        };
        let summary = write_dataset(&out, &options, |_, _| {}).unwrap();
        let path = out.join("train").join(format!("{}.tiff", summary[0].id));
        let slide = open(&path);
        assert_eq!(slide.pixel_size_um(), Some(0.5));
        assert_eq!(slide.format(), if planes { SlideFormat::HubmapPlanes } else { SlideFormat::Tiff });
        let levels = slide.levels();
        assert_eq!((levels[0].width, levels[0].height), (1500, 1100));
        assert!(levels.len() >= 3, "{levels:?}");
        assert_eq!(levels[1].downsample, 2.0);
        if !planes {
            let db = psnr(&whole(&slide, 0), &vips(&path, 0, d));
            assert!(db >= 40.0, "{db:.1} dB against libvips");
        }
    }
}

#[test]
fn unsupported_compression_is_named() {
    // An uncompressed page whose Compression tag is patched to LERC (34887), which is not read.
    let img = image::RgbImage::from_pixel(64, 64, image::Rgb([10, 20, 30]));
    let mut writer = ftuscope::slide::TiffWriter::new(std::io::Cursor::new(Vec::new()), false).unwrap();
    let spec = ftuscope::slide::PageSpec {
        width: 64,
        height: 64,
        tile: 32,
        compression: TileCompression::None,
        reduced: false,
        channel: None,
        description: None,
        pixel_size_um: None,
    };
    writer.write_page(&spec, |_, _| image::RgbImage::from_pixel(32, 32, image::Rgb([10, 20, 30]))).unwrap();
    let mut bytes = writer.finish().unwrap().into_inner();
    let entry = [3u8, 1, 3, 0, 1, 0, 0, 0, 1, 0];
    let at = bytes.windows(10).position(|w| w == entry).expect("the Compression entry");
    bytes[at + 8..at + 10].copy_from_slice(&34887u16.to_le_bytes());
    let result = block_on(async {
        let slide = Slide::open(Arc::new(MemorySource::new(bytes, "lerc.tif"))).await?;
        slide.read_region(0, 0, 0, 64, 64).await
    });
    let err = result.unwrap_err();
    assert!(matches!(err.kind(), Error::Unsupported(_)), "{err}");
    assert!(err.to_string().contains("34887"), "{err}");
    assert!(img.width() == 64);
}

/// A classic little-endian TIFF with one IFD of `entries` (tag, type, count, value-or-offset), then
/// `tail` bytes appended (offsets in entries may point into it: it starts at `tail_at`).
fn crafted(entries: &[(u16, u16, u32, u32)], tail: &[u8], next_ifd: Option<u32>) -> Vec<u8> {
    let mut b = b"II*\0".to_vec();
    b.extend_from_slice(&8u32.to_le_bytes());
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|e| e.0);
    b.extend_from_slice(&(sorted.len() as u16).to_le_bytes());
    for (tag, typ, count, value) in sorted {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&typ.to_le_bytes());
        b.extend_from_slice(&count.to_le_bytes());
        b.extend_from_slice(&value.to_le_bytes());
    }
    b.extend_from_slice(&next_ifd.unwrap_or(0).to_le_bytes());
    b.extend_from_slice(tail);
    b
}

/// Where `crafted`'s tail starts for `n` entries.
fn tail_at(n: usize) -> u32 {
    8 + 2 + 12 * n as u32 + 4
}

#[test]
fn hostile_slides_are_typed_errors_in_bounded_time() {
    const SHORT: u16 = 3;
    const LONG: u16 = 4;
    const ASCII: u16 = 2;
    let tiled = |w: u32, h: u32, tile: u32, offsets: u32, counts: u32, n_tiles: u32, compression: u32| {
        vec![
            (256, LONG, 1, w),
            (257, LONG, 1, h),
            (258, SHORT, 1, 8),
            (259, SHORT, 1, compression),
            (262, SHORT, 1, 2),
            (277, SHORT, 1, 3),
            (322, LONG, 1, tile),
            (323, LONG, 1, tile),
            (324, LONG, n_tiles, offsets),
            (325, LONG, n_tiles, counts),
        ]
    };
    let check = |name: &str, bytes: Vec<u8>| {
        let started = std::time::Instant::now();
        let outcome = match block_on(Slide::open(Arc::new(MemorySource::new(bytes, name)))) {
            Err(e) => Err(e),
            Ok(slide) => {
                let (w, h) = slide.dimensions();
                block_on(slide.read_region(0, (w / 2) as i64, (h / 2) as i64, 1024, 1024)).map(|_| ())
            }
        };
        let secs = started.elapsed().as_secs_f64();
        println!("{name}: {:?} in {secs:.3} s", outcome.as_ref().map_err(|e| e.to_string()));
        assert!(secs < 2.0, "{name} took {secs} s");
        outcome
    };
    // 100000×100000 px whose tile offsets point past the end of the file.
    let n = 391 * 391;
    let entries = tiled(100_000, 100_000, 256, tail_at(10), tail_at(10) + 4 * n, n, 1);
    let mut tail = Vec::new();
    for _ in 0..n {
        tail.extend_from_slice(&4_000_000_000u32.to_le_bytes());
    }
    for _ in 0..n {
        tail.extend_from_slice(&(256u32 * 256 * 3).to_le_bytes());
    }
    assert!(check("huge-past-end", crafted(&entries, &tail, None)).is_err());
    // One 8192² uncompressed tile: 201 MB decoded, over the per-tile limit — refused before decoding.
    let entries = tiled(8192, 8192, 8192, tail_at(10), 1000, 1, 1);
    let err = check("tile-bomb", crafted(&entries, &[0u8; 1000], None)).unwrap_err();
    assert!(matches!(err.kind(), Error::Limit(_) | Error::Format(_) | Error::Truncated { .. }), "{err}");
    // Deflate bombs: one 4096² tile (48 MiB) from 49 KB of zeros is within the limits and decodes
    // in bounded time; the first 2000 bytes of the same stream claim a ratio over 4096:1 — refused
    // before inflating.
    let zeros = {
        use std::io::Write;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 4096 * 4096 * 3]).unwrap();
        z.finish().unwrap()
    };
    let entries = tiled(4096, 4096, 4096, tail_at(10), zeros.len() as u32, 1, 8);
    assert!(check("deflate-48MiB", crafted(&entries, &zeros, None)).is_ok());
    let entries = tiled(4096, 4096, 4096, tail_at(10), 2000, 1, 8);
    let err = check("deflate-bomb", crafted(&entries, &zeros[..2000], None)).unwrap_err();
    assert!(matches!(err.kind(), Error::Limit(_)), "{err}");
    // Zero-sized tiles.
    let entries = tiled(512, 512, 256, 0, 0, 4, 8);
    assert!(check("zero-tiles", crafted(&entries, &[], None)).is_err());
    // An IFD whose "next" points back to itself.
    let entries = tiled(256, 256, 256, tail_at(10), 10, 1, 8);
    let looped = crafted(&entries, &[0u8; 10], Some(8));
    assert!(check("ifd-loop", looped).is_err());
    // Width as text, not a number.
    let mut entries = tiled(256, 256, 256, tail_at(10), 10, 1, 8);
    entries[0] = (256, ASCII, 4, u32::from_le_bytes(*b"abc\0"));
    assert!(check("wrong-type", crafted(&entries, &[0u8; 10], None)).is_err());
    // Dimensions of zero.
    let entries = tiled(0, 0, 256, tail_at(10), 10, 1, 8);
    assert!(check("zero-size", crafted(&entries, &[0u8; 10], None)).is_err());
}

/// Every prefix of small slides of every layout the seeds cover (classic and BigTIFF, both byte
/// orders, strips and tiles, pyramids, SubIFDs, SVS-like, planes): cut at every byte — so at every
/// structural point (header, each IFD entry, out-of-line values, each tile's first and last byte) —
/// opening and reading every level is a typed error or a slide, never a panic, and the whole file reads.
#[test]
fn slides_cut_at_every_byte_are_typed_errors() {
    let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/slide");
    let started = std::time::Instant::now();
    let (mut cuts, mut opened) = (0, 0);
    for name in [
        "synth-lzw-pyramid.tif",
        "synth-deflate-bigtiff.tif",
        "ome-subifd-pyramid.ome.tif",
        "grey16-bigendian-strips.tif",
        "aperio-like.svs",
    ] {
        let bytes = std::fs::read(seeds.join(name)).unwrap();
        let read_all = |data: Vec<u8>| -> Result<(), Error> {
            let slide = block_on(Slide::open(Arc::new(MemorySource::new(data, name))))?;
            for (i, level) in slide.levels().iter().enumerate() {
                block_on(slide.read_region(i, 0, 0, level.width, level.height))?;
            }
            Ok(())
        };
        read_all(bytes.clone()).unwrap_or_else(|e| panic!("{name} whole: {e}"));
        for cut in 0..bytes.len() {
            let outcome = std::panic::catch_unwind(|| read_all(bytes[..cut].to_vec()));
            let outcome = outcome.unwrap_or_else(|_| panic!("{name} cut at {cut}: panicked"));
            cuts += 1;
            opened += outcome.is_ok() as usize;
        }
    }
    println!(
        "{cuts} cuts in {:.1} s: {opened} still read whole (cut in padding or unused bytes), the rest typed errors",
        started.elapsed().as_secs_f64()
    );
    assert!(opened < cuts / 10);
}
