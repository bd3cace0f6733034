//! End-to-end tests of the native `ftuscope` binary: help, version, segmentation through the real
//! engine, prediction and evaluation, and clean one-line failures.
#![cfg(not(target_arch = "wasm32"))]

use std::path::Path;
use std::process::{Command, Output};

fn ftuscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ftuscope")).args(args).output().expect("the binary runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_one_line_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "exit code for: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "'{needle}' not in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn help_and_version() {
    let help = ftuscope(&["--help"]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("segment"));
    let version = ftuscope(&["--version"]);
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("ftuscope {}", env!("CARGO_PKG_VERSION")));
}

fn data(path: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path).to_string_lossy().into_owned()
}

/// `segment` runs the whole-slide engine on a plain image (a one-level slide): on the synthetic
/// test slide saved as a PNG, the demo model's probabilities match the slide's truth.
#[test]
fn segments_an_image_with_the_model_through_the_whole_slide_engine() {
    let dir = tempfile::tempdir().unwrap();
    let (png, mask, overlay) = (dir.path().join("slide.png"), dir.path().join("mask.png"), dir.path().join("overlay.png"));
    let slide = data("tests/data/synth-3072x2048.tif");
    let region = ftuscope(&["region", &slide, "--rect", "0,0,3072,2048", "--out", png.to_str().unwrap()]);
    assert!(region.status.success(), "{}", stderr(&region));
    let model = data("www/models/fast");
    let out = ftuscope(&[
        "segment",
        png.to_str().unwrap(),
        "--model",
        &model,
        "--out",
        mask.to_str().unwrap(),
        "--overlay",
        overlay.to_str().unwrap(),
        "--pixel-size",
        "0.5",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("flex") && printed.contains("4 glomeruli"), "{printed}");
    let probs = image::open(&mask).unwrap().to_luma8();
    assert_eq!(probs.dimensions(), (3072, 2048));
    let mut predicted = ftuscope::mask::BinaryMask::new(3072, 2048);
    for (x, y, p) in probs.enumerate_pixels() {
        predicted.set(x, y, p.0[0] >= 128);
    }
    let rle = std::fs::read_to_string(data("tests/data/synth-3072x2048.rle")).unwrap();
    let truth = ftuscope::mask::rle_decode(rle.trim(), 3072, 2048).unwrap();
    let dice = ftuscope::mask::dice(&truth, &predicted);
    println!("segment on the synthetic test slide: Dice {dice:.4}");
    assert!(dice >= 0.9, "Dice {dice}");
    let (input, overlay) = (image::open(&png).unwrap().to_rgb8(), image::open(&overlay).unwrap().to_rgb8());
    let tinted = overlay.pixels().zip(input.pixels()).filter(|(a, b)| a != b).count() as u64;
    assert!(tinted >= truth.count() / 2, "the overlay tints the glomeruli: {tinted} pixels changed");
    // The bundled image (not kidney) runs too: the issue's check command.
    let ihc = ftuscope(&["segment", &data("assets/ihc.png"), "--model", &model, "--out", mask.to_str().unwrap()]);
    assert!(ihc.status.success() && String::from_utf8_lossy(&ihc.stdout).contains("glomeruli"), "{}", stderr(&ihc));
}

/// `eval` on an annotated image folder (the synthetic test slide as a PNG with a mask PNG) runs the
/// model and prints pooled Dice, mean per-image Dice and object recall/precision; `predict` and
/// `info` read PNG/JPEG images as slides, with --pixel-size for files that record none.
#[test]
fn eval_scores_an_annotated_folder_and_images_are_slides() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("truth");
    std::fs::create_dir_all(&folder).unwrap();
    let png = folder.join("synth.png");
    let region = ftuscope(&["region", &data("tests/data/synth-3072x2048.tif"), "--rect", "0,0,3072,2048", "--out", png.to_str().unwrap()]);
    assert!(region.status.success(), "{}", stderr(&region));
    let rle = std::fs::read_to_string(data("tests/data/synth-3072x2048.rle")).unwrap();
    let truth = ftuscope::mask::rle_decode(rle.trim(), 3072, 2048).unwrap();
    image::GrayImage::from_fn(3072, 2048, |x, y| image::Luma([255 * truth.get(x, y) as u8])).save(folder.join("synth_mask.png")).unwrap();
    let scores = dir.path().join("scores.csv");
    let model = data("www/models/fast");
    let out = ftuscope(&[
        "eval",
        "--truth",
        folder.to_str().unwrap(),
        "--model",
        &model,
        "--pixel-size",
        "0.5",
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    let pooled = printed.lines().last().unwrap();
    assert!(pooled.starts_with("pooled Dice ") && pooled.contains("mean per-image Dice") && pooled.contains("recall"), "{printed}");
    let dice: f64 = pooled["pooled Dice ".len()..].split(',').next().unwrap().parse().unwrap();
    assert!(dice >= 0.9, "{printed}");
    assert!(pooled.contains("4 true"), "{printed}");
    let csv = std::fs::read_to_string(&scores).unwrap();
    assert!(csv.starts_with("id,dice,truth,predicted,matched,recall,precision\nsynth,") && csv.contains("\npooled,"), "{csv}");
    // The PNG is a slide: info names it, predict writes its outputs under its name.
    let info = ftuscope(&["info", png.to_str().unwrap()]);
    assert!(info.status.success() && String::from_utf8_lossy(&info.stdout).contains("\"Png\""), "{}", stderr(&info));
    let o = dir.path().join("o");
    let predicted = ftuscope(&["predict", png.to_str().unwrap(), "--model", &model, "--out", o.to_str().unwrap(), "--pixel-size", "0.5"]);
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    let stats = std::fs::read_to_string(o.join("synth.glomeruli.json")).unwrap();
    assert!(stats.contains("\"count\": 4") && stats.contains("\"pixel_size_um\": 0.5"), "{stats}");
    // Without a pixel size the model's is assumed, and said.
    let assumed = ftuscope(&["predict", png.to_str().unwrap(), "--model", &model, "--out", o.to_str().unwrap()]);
    assert!(assumed.status.success() && stderr(&assumed).contains("pixel size unknown — assuming"), "{}", stderr(&assumed));
    // Folders without images or without truth, and bad pixel sizes: one-line errors.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert_one_line_error(&ftuscope(&["eval", "--truth", empty.to_str().unwrap(), "--model", &model]), "no images");
    std::fs::remove_file(folder.join("synth_mask.png")).unwrap();
    assert_one_line_error(&ftuscope(&["eval", "--truth", folder.to_str().unwrap(), "--model", &model]), "no annotations");
    assert_one_line_error(
        &ftuscope(&["predict", png.to_str().unwrap(), "--model", &model, "--out", "x", "--pixel-size", "0"]),
        "pixel size",
    );
}

#[test]
fn unknown_device_missing_file_and_not_an_image_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let out_png = dir.path().join("m.png");
    let out_png = out_png.to_str().unwrap();
    let input = data("assets/ihc.png");
    let input = input.as_str();
    let model = data("www/models/fast");
    let segment = |args: &[&str]| {
        let mut all = vec!["segment"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--model", &model, "--out", out_png]);
        ftuscope(&all)
    };

    assert_one_line_error(&segment(&[input, "--device", "tpu"]), "unknown device 'tpu'");
    assert_one_line_error(&segment(&["/no/such/file.png"]), "/no/such/file.png");

    let text = dir.path().join("notes.png");
    std::fs::write(&text, "not an image at all").unwrap();
    assert_one_line_error(&segment(&[text.to_str().unwrap()]), "nor a PNG or JPEG image");

    let truncated = dir.path().join("truncated.png");
    let bytes = std::fs::read(input).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert_one_line_error(&segment(&[truncated.to_str().unwrap()]), "truncated.png");

    assert_one_line_error(&segment(&[input, "--tta", "3"]), "'--tta <TTA>'");
    assert_one_line_error(&ftuscope(&["segment", input, "--model", "/no/such/model", "--out", out_png]), "/no/such/model");
    let wrong = dir.path().join("wrong-model");
    std::fs::create_dir_all(&wrong).unwrap();
    std::fs::write(wrong.join("model.json"), "{\"format\": \"ftuscope-model/1\"}").unwrap();
    std::fs::write(wrong.join("model.bpk"), b"not weights").unwrap();
    assert_one_line_error(&ftuscope(&["segment", input, "--model", wrong.to_str().unwrap(), "--out", out_png]), "model.json");
    assert_one_line_error(&ftuscope(&["info", "/no/such/slide.tiff"]), "/no/such/slide.tiff");
    assert_one_line_error(&ftuscope(&["info", text.to_str().unwrap()]), "notes.png");
    assert!(!Path::new(out_png).exists(), "no output after a failure");
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_says_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let out_png = dir.path().join("m.png");
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/ihc.png");
    let model = data("www/models/fast");
    let out = ftuscope(&["segment", input.to_str().unwrap(), "--model", &model, "--out", out_png.to_str().unwrap(), "--device", "cuda"]);
    assert_one_line_error(&out, "--features cuda");
}

#[test]
fn predict_writes_every_output_and_eval_scores_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = dir.path().join("out");
    let synth = ftuscope(&["synth", "--out", data.to_str().unwrap(), "--count", "1", "--size", "1400x1000", "--seed", "3"]);
    assert!(synth.status.success(), "{}", stderr(&synth));
    let slide = std::fs::read_dir(data.join("train"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "tiff"))
        .unwrap();
    let id = slide.file_stem().unwrap().to_string_lossy().to_string();
    let run =
        ftuscope(&["predict", slide.to_str().unwrap(), "--model", "untrained:unet-tiny", "--out", out.to_str().unwrap(), "--tta", "2"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stderr(&run).contains("UNTRAINED"), "the untrained model is named as such");
    // What it prints is progress and a summary — never pixels or masks (those go to files).
    let printed = format!("{}{}", String::from_utf8_lossy(&run.stdout), stderr(&run));
    assert!(printed.len() < 16_384 && printed.lines().all(|l| l.len() < 2000), "{} bytes printed", printed.len());
    for file in [format!("{id}.geojson"), format!("{id}.glomeruli.json"), format!("{id}.mask.png"), "submission.csv".into()] {
        assert!(out.join(&file).is_file(), "{file}");
    }
    let csv = std::fs::read_to_string(out.join("submission.csv")).unwrap();
    assert!(csv.starts_with("id,predicted\n") && csv.contains(&format!("\n{id},")), "{csv}");
    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join(format!("{id}.glomeruli.json"))).unwrap()).unwrap();
    assert_eq!(stats["width"], 1400);
    let truth = data.join("train.csv");
    let same = ftuscope(&["eval", "--truth", truth.to_str().unwrap(), "--pred", truth.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&same.stdout).contains("mean,1.000000"));
    let scored = ftuscope(&["eval", "--truth", truth.to_str().unwrap(), "--pred", out.join("submission.csv").to_str().unwrap()]);
    assert!(scored.status.success() && String::from_utf8_lossy(&scored.stdout).contains(&format!("{id},")));
    assert_one_line_error(
        &ftuscope(&[
            "predict",
            slide.to_str().unwrap(),
            "--model",
            "untrained:unet-tiny",
            "--out",
            out.to_str().unwrap(),
            "--shard",
            "2/2",
        ]),
        "invalid value '2/2' for '--shard <I/N>'",
    );
    assert_one_line_error(
        &ftuscope(&["predict", slide.to_str().unwrap(), "--model", "/no/such/model", "--out", out.to_str().unwrap()]),
        "model",
    );
}

#[test]
fn train_and_export_fail_cleanly_on_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = ftuscope(&[
        "train",
        "--data",
        dir.path().join("nothing").to_str().unwrap(),
        "--run",
        run.to_str().unwrap(),
        "--arch",
        "unet-tiny",
        "--size",
        "128",
    ]);
    if cfg!(feature = "train") {
        assert_one_line_error(&out, "train.csv");
    } else {
        assert_one_line_error(&out, "--features train");
    }
    let out = ftuscope(&["export", dir.path().join("nothing").to_str().unwrap(), "--out", dir.path().join("m").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = ftuscope(&["train", "--data", "x", "--run", run.to_str().unwrap(), "--loss", "huber:1"]);
    assert_one_line_error(&out, "unknown term 'huber'");
    let out = ftuscope(&["train", "--data", "x,weight=0", "--run", run.to_str().unwrap()]);
    assert_one_line_error(&out, "--data 'weight=0': must be positive");
    let out = ftuscope(&["bench", "train", "--size", "100", "--steps", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn bad_argument_values_fail_in_one_line_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let cases: [(&[&str], &str); 11] = [
        (&["region", "s.tiff", "--rect", "1,2,x", "--out", out], "invalid value '1,2,x' for '--rect <X,Y,W,H>': expected four integers"),
        (&["region", "s.tiff", "--rect", "0,0,0,5", "--out", out], "W and H must be at least 1, not 0×5"),
        (&["synth", "--out", out, "--size", "0x5"], "invalid value '0x5' for '--size <WIDTHxHEIGHT>': expected WIDTHxHEIGHT"),
        (
            &["synth", "--out", out, "--compression", "zip"],
            "invalid value 'zip' for '--compression <COMPRESSION>' [possible values: jpeg, deflate, lzw, none]",
        ),
        (&["predict", "s.tiff", "--model", "m", "--out", out, "--blend", "foo"], "[possible values: centre, ramp]"),
        (&["predict", "s.tiff", "--model", "m", "--out", out, "--device", "tpu"], "unknown device 'tpu'"),
        (&["predict", "s.tiff", "--model", "m", "--out", out, "--tta", "3"], "invalid value '3' for '--tta <TTA>': expected 1, 2, 4 or 8"),
        (&["bench", "infer", "s.tiff", "--device", "tpu"], "unknown device 'tpu'"),
        (&["train", "--data", "x", "--run", out, "--device", "tpu"], "unknown device 'tpu'"),
        (&["train", "--data", "x", "--run", out, "--schedule", "linear"], "[possible values: cosine, onecycle, constant]"),
        (&["train", "--data", "x", "--run", out, "--loss", "bce:1,dice:-1"], "invalid value 'dice:-1' for '--loss <NAME:WEIGHT>'"),
    ];
    for (args, needle) in cases {
        assert_one_line_error(&ftuscope(args), needle);
    }
    assert!(!Path::new(out).exists(), "nothing ran");
}

/// `train --max-minutes`: a run whose next epoch would end past its time box stops cleanly at an
/// epoch's end (checkpoint and metrics of that epoch kept), says how to continue and exits with
/// code 3; `--resume` then finishes it.
#[cfg(feature = "train")]
#[test]
fn a_time_boxed_training_run_stops_at_an_epoch_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, run, cache) = (dir.path().join("data"), dir.path().join("run"), dir.path().join("cache"));
    let synth = ftuscope(&["synth", "--out", data.to_str().unwrap(), "--count", "2", "--size", "1024x1024", "--seed", "5"]);
    assert!(synth.status.success(), "{}", stderr(&synth));
    let epochs = |run: &Path| std::fs::read_to_string(run.join("metrics.csv")).map(|m| m.lines().count() - 1).unwrap_or(0);
    #[rustfmt::skip]
    let out = ftuscope(&[
        "train", "--data", data.to_str().unwrap(), "--run", run.to_str().unwrap(), "--cache", cache.to_str().unwrap(),
        "--arch", "unet-tiny", "--tiny-widths", "8,8,16,16,16", "--decoder-channels", "16,12,8,8,8", "--size", "128",
        "--window", "512", "--tile-overlap", "256", "--epochs", "3", "--batch", "4", "--samples-per-epoch", "8",
        "--folds", "2", "--no-augment", "--no-slide-validation", "--max-minutes", "0.0001",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("after epoch 1 of 3") && err.contains(&format!("--resume {}", run.display())), "{err}");
    assert!(!err.contains("panicked") && !err.starts_with("error"), "{err}");
    assert_eq!(epochs(&run), 1);
    let resumed = ftuscope(&["train", "--resume", run.to_str().unwrap(), "--cache", cache.to_str().unwrap()]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(epochs(&run), 3);
    let out = ftuscope(&["train", "--resume", run.to_str().unwrap(), "--max-minutes", "0"]);
    assert_one_line_error(&out, "not a positive number of minutes");
}

#[test]
fn review_lists_disagreements_applies_decisions_and_its_export_is_truth_for_eval() {
    let dir = tempfile::tempdir().unwrap();
    let (o, model) = (dir.path().join("o"), data("www/models/fast"));
    let image = data("tests/data/real-kidney/306.jpg");
    let predicted = ftuscope(&["predict", &image, "--model", &model, "--out", o.to_str().unwrap(), "--pixel-size", "1"]);
    assert!(predicted.status.success(), "{}", stderr(&predicted));
    let pred = o.join("306.geojson");
    assert!(std::fs::read_to_string(&pred).unwrap().contains("Mean probability"), "predicted GeoJSON carries confidences");
    let r = dir.path().join("r");
    let truth = data("tests/data/real-kidney/306.json");
    // `ftuscope review` of this prediction against the tile's outlines, with `more` arguments.
    let run_review = |more: &[&str]| {
        let mut args = vec!["review", "--pred", pred.to_str().unwrap(), "--truth", &truth, "--out", r.to_str().unwrap()];
        args.extend_from_slice(more);
        ftuscope(&args)
    };
    let out = run_review(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("8 annotated") && printed.contains("agree"), "{printed}");
    let review: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(r.join("review.json")).unwrap()).unwrap();
    let items = review["items"].as_array().unwrap();
    let counts = &review["counts"];
    assert_eq!(counts["agreed"].as_u64().unwrap() + counts["not_found"].as_u64().unwrap() + counts["overlap"].as_u64().unwrap(), 8);
    assert!(!items.is_empty());
    // Accept every item (annotations the model missed stay, predictions nobody annotated become
    // glomeruli), add one; the reviewed set is exported and read back as truth by eval.
    let mut decisions: Vec<serde_json::Value> = (0..items.len()).map(|i| serde_json::json!({"action": "accept", "item": i})).collect();
    decisions.push(serde_json::json!({"action": "add", "outline": [[10.0, 10.0], [60.0, 10.0], [60.0, 60.0], [10.0, 60.0]]}));
    let file = dir.path().join("decisions.json");
    std::fs::write(&file, serde_json::to_string(&serde_json::json!({ "decisions": decisions })).unwrap()).unwrap();
    let (w, h) = image::image_dimensions(&image).unwrap();
    let size = format!("{w}x{h}");
    let applied = run_review(&["--decisions", file.to_str().unwrap(), "--size", &size]);
    assert!(applied.status.success(), "{}", stderr(&applied));
    let printed = String::from_utf8_lossy(&applied.stdout);
    assert!(printed.contains("1 added") && printed.contains("0 unreviewed"), "{printed}");
    let reviewed = ftuscope::mask::read_annotations(&std::fs::read_to_string(r.join("reviewed.geojson")).unwrap()).unwrap();
    assert_eq!(reviewed.iter().filter(|a| a.classification == "Glomerulus (added)").count(), 1);
    assert!(std::fs::read_to_string(r.join("reviewed.csv")).unwrap().starts_with("id,encoding\n306,"));
    let folder = dir.path().join("truth");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(&image, folder.join("306.jpg")).unwrap();
    std::fs::copy(r.join("reviewed.geojson"), folder.join("306.json")).unwrap();
    let eval = ftuscope(&["eval", "--truth", folder.to_str().unwrap(), "--model", &model, "--pixel-size", "1"]);
    assert!(eval.status.success(), "{}", stderr(&eval));
    let last = String::from_utf8_lossy(&eval.stdout).lines().last().unwrap().to_string();
    assert!(last.contains(&format!("{} true", reviewed.len())), "eval counts the reviewed glomeruli as truth: {last}");
    // A decision on an item that does not exist: one line.
    std::fs::write(&file, r#"[{"action": "reject", "item": 999}]"#).unwrap();
    assert_one_line_error(&run_review(&["--decisions", file.to_str().unwrap()]), "item 999 is not in the review");
}
