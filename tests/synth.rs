//! `ftuscope synth` end to end: the Kaggle layout, ground truth that agrees with itself, files a
//! third-party reader opens, and byte-identical output for the same seed.
#![cfg(not(target_arch = "wasm32"))]

use ftuscope::mask::{dice, rasterise, read_annotations, rle_decode};
use ftuscope::synth::{Scene, SynthConfig};
use std::path::Path;
use std::process::Command;

fn synth(out: &Path, extra: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_ftuscope"))
        .args(["synth", "--out", out.to_str().unwrap(), "--count", "2", "--size", "3000x2000", "--seed", "7", "--tile", "256"])
        .args(extra)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
}

#[test]
fn writes_the_hubmap_layout_with_consistent_truth() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), &["--compression", "deflate", "--pyramid"]);
    let csv = std::fs::read_to_string(dir.path().join("train.csv")).unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("id,encoding"));
    let rows: Vec<(&str, &str)> = lines.map(|l| l.split_once(',').unwrap()).collect();
    assert_eq!(rows.len(), 2);
    let info = std::fs::read_to_string(dir.path().join("HuBMAP-20-dataset_information.csv")).unwrap();
    assert!(info.starts_with("image_file,width_pixels,height_pixels,"));
    for (id, rle) in rows {
        assert_eq!(id.len(), 9, "Kaggle-style id: {id}");
        let train = dir.path().join("train");
        assert!(train.join(format!("{id}.tiff")).exists());
        assert!(train.join(format!("{id}-anatomical-structure.json")).exists());
        // train.csv and <id>.json describe the same glomeruli.
        let json = std::fs::read_to_string(train.join(format!("{id}.json"))).unwrap();
        let annotations = read_annotations(&json).unwrap();
        assert!(annotations.iter().all(|a| a.classification == "glomerulus"));
        let polygons: Vec<_> = annotations.into_iter().flat_map(|a| a.polygons).collect();
        let from_json = rasterise(&polygons, 3000, 2000);
        let from_csv = rle_decode(rle, 3000, 2000).unwrap();
        assert_eq!(dice(&from_json, &from_csv), 1.0);
        assert!(from_csv.count() > 0, "{id} has glomeruli");
    }
}

#[test]
fn level_zero_reads_back_as_rendered_and_vips_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    synth(dir.path(), &["--compression", "deflate", "--pyramid", "--bigtiff"]);
    let info = std::fs::read_to_string(dir.path().join("HuBMAP-20-dataset_information.csv")).unwrap();
    let row: Vec<&str> = info.lines().nth(1).unwrap().split(',').collect();
    let (file, seed) = (row[0], row[7].parse::<u64>().unwrap());
    let path = dir.path().join("train").join(file);
    let mut decoder = tiff::decoder::Decoder::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(decoder.dimensions().unwrap(), (3000, 2000));
    let tiff::decoder::DecodingResult::U8(pixels) = decoder.read_image().unwrap() else { panic!("8-bit expected") };
    let scene = Scene::new(&SynthConfig::new(3000, 2000).with_seed(seed));
    assert!(pixels == *scene.render(0, 0, 3000, 2000).as_raw(), "level 0 equals the scene");
    let mut pages = 1;
    while decoder.more_images() {
        decoder.next_image().unwrap();
        pages += 1;
    }
    assert_eq!(pages, 5, "level 0 + ÷2, ÷4, ÷8, ÷16");
    // A third-party reader (libvips) agrees on size and page count.
    let vips = Command::new("vipsheader")
        .args(["-f", "n-pages"])
        .arg(&path)
        .output()
        .expect("vipsheader (libvips-tools) is installed by make setup");
    assert_eq!(String::from_utf8_lossy(&vips.stdout).trim(), "5");
    let vips = Command::new("vipsheader").arg(&path).output().unwrap();
    assert!(String::from_utf8_lossy(&vips.stdout).contains("3000x2000"), "{}", String::from_utf8_lossy(&vips.stdout));
}

#[test]
fn same_seed_gives_byte_identical_files_and_jpeg_planes_work() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    synth(a.path(), &["--hubmap-planes"]);
    synth(b.path(), &["--hubmap-planes"]);
    let mut files: Vec<_> = std::fs::read_dir(a.path().join("train")).unwrap().map(|e| e.unwrap().file_name()).collect();
    files.sort();
    assert_eq!(files.len(), 6);
    for name in files {
        let left = std::fs::read(a.path().join("train").join(&name)).unwrap();
        let right = std::fs::read(b.path().join("train").join(&name)).unwrap();
        assert!(left == right, "{name:?} differs between two runs with the same seed");
    }
    assert_eq!(std::fs::read(a.path().join("train.csv")).unwrap(), std::fs::read(b.path().join("train.csv")).unwrap());
    let tiff = std::fs::read_dir(a.path().join("train"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tiff"))
        .unwrap();
    let pages = Command::new("vipsheader").args(["-f", "n-pages"]).arg(&tiff).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&pages.stdout).trim(), "3", "three single-channel pages");
}

#[test]
fn bad_synth_arguments_fail_cleanly() {
    for args in [["--size", "12x"], ["--compression", "webp"], ["--tile", "100"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ftuscope")).args(["synth", "--out", "/tmp/never-written"]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: ") && err.trim_end().lines().count() == 1, "{err}");
    }
    assert!(!Path::new("/tmp/never-written").exists());
}
