//! Issue #17's formats against their peers: Aperio JPEG 2000 SVS (33003, 33005) and TIFF JPEG 2000
//! (34712) against OpenSlide 4 and tifffile + imagecodecs; OME-TIFF with three channel pages (and
//! per-channel SubIFD pyramids) and a four-channel 16-bit fluorescence OME-TIFF against tifffile;
//! DICOM WSI folders (JPEG YCbCr and Aperio's RGB JPEG, JPEG 2000, uncompressed TILED_SPARSE;
//! wsidicomizer) against OpenSlide;
//! formats that are not read, named in one line. The files are made by tests/peers/slides.py
//! (tifffile + imagecodecs' OpenJPEG, from a crop of the real CMU-1-Small-Region.svs); `make test`
//! installs the peers into its Python venv.

mod common;

use common::{cmu, open, psnr, python, whole};
use ftuscope::slide::source::FileSource;
use ftuscope::slide::{ByteSource, Error, MemorySource, Slide, SlideFormat, SlideOptions};
use futures_lite::future::block_on;
use image::RgbImage;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/slides.py")
}

/// The test slides, made once per run of this test binary (in its scratch folder under target/,
/// replaced each run).
fn slides() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("formats");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(python()).arg(script()).arg("make").arg(&dir).arg(cmu()).output().unwrap();
        assert!(out.status.success(), "slides.py make: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

/// The peer's decoding (OpenSlide for .svs, tifffile otherwise) of a whole level.
fn peer(path: &Path, level: usize) -> RgbImage {
    let raw = path.with_extension(format!("peer{level}.rgb"));
    let out = Command::new(python()).arg(script()).arg("peer").arg(path).arg(level.to_string()).arg(&raw).output().unwrap();
    assert!(out.status.success(), "slides.py peer: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let mut dims = text.split_whitespace().map(|v| v.parse::<u32>().unwrap());
    let (w, h) = (dims.next().unwrap(), dims.next().unwrap());
    RgbImage::from_raw(w, h, std::fs::read(&raw).unwrap()).expect("w*h*3 bytes")
}

#[test]
fn aperio_and_tiff_jpeg2000_match_openslide_and_tifffile_at_every_level() {
    for (name, levels) in [("aperio-33003.svs", 2), ("aperio-33005.svs", 2), ("j2k-34712.tif", 1)] {
        let path = slides().join(name);
        let slide = open(&path);
        let info = slide.info();
        assert_eq!(slide.levels().len(), levels, "{name}");
        assert_eq!(info.levels[0].compression, "JPEG 2000", "{name}");
        if name.ends_with(".svs") {
            assert_eq!(slide.format(), SlideFormat::Svs, "{name}");
            assert_eq!(info.vendor, "Aperio SVS");
            assert_eq!(slide.pixel_size_um(), Some(0.499));
            assert_eq!(slide.associated().iter().map(|a| a.name.as_str()).collect::<Vec<_>>(), ["thumbnail"]);
        }
        for level in 0..levels {
            let ours = whole(&slide, level);
            let theirs = peer(&path, level);
            let db = psnr(&ours, &theirs);
            println!("{name} level {level} ({}×{}): {db:.1} dB against the peer", ours.width(), ours.height());
            assert!(db >= 40.0, "{name} level {level}: {db:.1} dB");
        }
    }
}

#[test]
fn ome_three_channel_pages_read_as_rgb_at_every_level() {
    let path = slides().join("ome-rgb-pages.ome.tif");
    let slide = open(&path);
    assert_eq!(slide.format(), SlideFormat::OmeTiff);
    assert_eq!(slide.notice(), None);
    assert!(slide.associated().is_empty(), "channel pages are not associated images: {:?}", slide.associated());
    assert_eq!(slide.pixel_size_um(), Some(0.499));
    let levels = slide.levels();
    assert_eq!(levels.iter().map(|l| (l.width, l.height)).collect::<Vec<_>>(), [(1100, 900), (550, 450), (275, 225)]);
    let info = slide.info();
    assert!(info.levels.iter().all(|l| l.samples == 3 && l.planar), "{:?}", info.levels);
    for level in 0..3 {
        assert!(whole(&slide, level) == peer(&path, level), "level {level} differs from tifffile's");
    }
}

#[test]
fn fluorescence_ome_shows_its_first_channel_with_a_notice() {
    let slide = open(&slides().join("ome-fluorescence.ome.tif"));
    let notice = slide.notice().expect("a notice, never a silent grey page");
    assert!(notice.contains("fluorescence") && notice.contains("channel 1 of 4"), "{notice}");
    assert_eq!(slide.info().notice.as_deref(), Some(notice));
    assert!(slide.associated().is_empty(), "{:?}", slide.associated());
    let img = whole(&slide, 0);
    // Channel 1 is red × 200 in 16 bits: its high byte, in grey.
    let src = peer(&slides().join("ome-rgb-pages.ome.tif"), 0);
    let (x, y) = (500, 400);
    let expected = ((src.get_pixel(x, y).0[0] as u32 * 200) >> 8) as u8;
    assert_eq!(img.get_pixel(x, y).0, [expected; 3]);
}

#[test]
fn formats_not_read_are_named_in_one_line() {
    let tiff_head = b"II*\0\x08\0\0\0\0\0\0\0".to_vec();
    for (bytes, name, format) in [
        (tiff_head.clone(), "slide.mrxs", "MIRAX"),
        (b"ZISRAWFILE\0\0\0\0\0\0".to_vec(), "slide.czi", "Zeiss CZI"),
        (tiff_head.clone(), "slide.vsi", "Olympus VSI"),
        (b"<DataObject ObjectType=\"DPUfsImport\">".to_vec(), "slide.isyntax", "iSyntax"),
    ] {
        let err = block_on(Slide::open(Arc::new(MemorySource::new(bytes, name)))).err().expect("an error");
        assert!(matches!(err.kind(), Error::Foreign { .. }), "{name}: {err}");
        let message = err.to_string();
        println!("{message}");
        assert!(message.contains(format) && message.contains("bfconvert") && !message.contains('\n'), "{message}");
        assert!(message.ends_with(name), "{message}");
    }
}

#[test]
fn ndpi_is_recognised_by_its_private_tag() {
    // A one-page TIFF carrying Hamamatsu's tag 65420.
    let path = slides().join("ndpi-like.tif");
    let out = Command::new(python())
        .arg("-c")
        .arg("import sys, numpy, tifffile; tifffile.imwrite(sys.argv[1], numpy.zeros((64, 64, 3), 'uint8'), extratags=[(65420, 'I', 1, 1, True)])")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let src: Arc<dyn ByteSource> = Arc::new(FileSource::open(&path).unwrap());
    let err = block_on(Slide::open(src)).err().expect("NDPI is not read");
    assert!(err.to_string().starts_with("Hamamatsu NDPI is not read by ftuscope"), "{err}");
}

/// Opens `bytes` as the file `name` and reads level 0 (at most 4096² px of it).
fn open_and_read(bytes: Vec<u8>, name: &str) -> Result<(), Error> {
    block_on(async {
        let slide = Slide::open(Arc::new(MemorySource::new(bytes, name))).await?;
        let (w, h) = slide.dimensions();
        slide.read_region(0, 0, 0, w.min(4096), h.min(4096)).await.map(|_| ())
    })
}

/// How many of `files` fail to open or read; every failure must be an error that names the file.
fn located_errors(files: impl Iterator<Item = Vec<u8>>, name: &str) -> usize {
    files.filter_map(|bytes| open_and_read(bytes, name).err()).inspect(|e| assert!(e.to_string().ends_with(name), "{e}")).count()
}

/// `bytes` with `flips` bytes inside `within` changed (at places and by values from `seed`).
fn flipped(bytes: &[u8], seed: u64, flips: usize, within: std::ops::Range<usize>) -> Vec<u8> {
    let mut bad = bytes.to_vec();
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    for _ in 0..flips {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        bad[within.start + (x >> 33) as usize % within.len()] ^= (x >> 24) as u8 | 1;
    }
    bad
}

#[test]
fn broken_jpeg2000_tiles_are_typed_errors() {
    let bytes = std::fs::read(slides().join("aperio-33003.svs")).unwrap();
    // Cut short, and with bytes flipped through the tile data: located errors or pixels, never a panic.
    let cuts = (bytes.len() / 2..bytes.len()).step_by(bytes.len() / 40).map(|cut| bytes[..cut].to_vec());
    let errors = located_errors(cuts, "cut.svs");
    assert!(errors >= 15, "{errors} of 20 cut files failed to read");
    located_errors((0..24).map(|seed| flipped(&bytes, seed, 64, 4096..bytes.len() - 4096)), "flipped.svs");
}

fn open_dir(dir: &Path) -> Slide {
    block_on(Slide::open_location(dir.to_str().unwrap(), SlideOptions::new())).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn dicom_wsi_folders_match_openslide_at_every_level() {
    for (name, levels, associated) in [
        ("dicom-jpeg", 4, vec![]),
        ("dicom-svs", 1, vec!["label", "macro", "thumbnail"]),
        ("dicom-j2k", 1, vec![]),
        ("dicom-sparse", 1, vec![]),
    ] {
        let dir = slides().join(name);
        let slide = open_dir(&dir);
        assert_eq!(slide.format(), SlideFormat::Dicom, "{name}");
        assert_eq!(slide.info().vendor, "DICOM WSI");
        assert_eq!(slide.levels().len(), levels, "{name}: {:?}", slide.levels());
        assert_eq!(slide.pixel_size_um().map(|p| (p * 1000.0).round()), Some(499.0), "{name}");
        let mut names: Vec<_> = slide.associated().iter().map(|a| a.name.as_str()).collect();
        names.sort();
        assert_eq!(names, associated, "{name}");
        for level in 0..levels {
            let ours = whole(&slide, level);
            let theirs = peer(&dir, level);
            let db = psnr(&ours, &theirs);
            println!("{name} level {level} ({}×{}): {db:.1} dB against OpenSlide", ours.width(), ours.height());
            assert!(db >= 40.0, "{name} level {level}: {db:.1} dB");
        }
        if name == "dicom-sparse" {
            // The frame left out (tile 1 of row 0) is background, as in OpenSlide.
            let tile = block_on(slide.read_region(0, 300, 10, 8, 8)).unwrap();
            assert!(tile.pixels().all(|p| p.0 == [255; 3]));
        }
    }
    // Implicit VR (OpenSlide refuses it): the same pixels as the explicit-VR sparse copy, but the
    // tile that copy leaves out.
    let implicit = open_dir(&slides().join("dicom-implicit"));
    assert_eq!(implicit.pixel_size_um().map(|p| (p * 1000.0).round()), Some(499.0));
    let tile = implicit.levels()[0].tile_width;
    let implicit = whole(&implicit, 0);
    let mut sparse = whole(&open_dir(&slides().join("dicom-sparse")), 0);
    let mut expected = implicit.clone();
    for y in 0..tile {
        for x in tile..2 * tile {
            expected.put_pixel(x, y, image::Rgb([255; 3]));
            sparse.put_pixel(x, y, image::Rgb([255; 3]));
        }
    }
    assert!(sparse == expected, "implicit and explicit VR read differently");
    // One file of a series, alone (say from a URL): that instance as a one-level slide.
    let one = std::fs::read_dir(slides().join("dicom-j2k")).unwrap().next().unwrap().unwrap().path();
    let slide = open(&one);
    assert_eq!((slide.format(), slide.dimensions()), (SlideFormat::Dicom, (1100, 900)));
    assert!(block_on(slide.associated_image("label")).is_err());
    let label = block_on(open_dir(&slides().join("dicom-svs")).associated_image("label")).unwrap();
    assert_eq!(label.dimensions(), (387, 463));
}

#[test]
fn broken_dicom_files_are_typed_errors() {
    let dir = slides().join("dicom-jpeg");
    let mut paths: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    paths.sort_by_key(|p| std::cmp::Reverse(std::fs::metadata(p).unwrap().len()));
    let bytes = std::fs::read(&paths[0]).unwrap();
    let cuts = (0..bytes.len()).step_by(bytes.len() / 50).chain([131, 132, 200]).map(|cut| bytes[..cut].to_vec());
    let errors = located_errors(cuts, "cut.dcm");
    assert!(errors >= 48, "{errors} of 53 cut files failed");
    // Bytes flipped in the attributes.
    located_errors((0..32).map(|seed| flipped(&bytes, seed, 16, 132..4132)), "flipped.dcm");
    // A folder without DICOM files says so.
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("notes.txt"), "no slide here").unwrap();
    let err = block_on(Slide::open_location(empty.path().to_str().unwrap(), SlideOptions::new())).err().unwrap();
    assert!(err.to_string().contains("DICOM"), "{err}");
}
