use super::*;
use crate::mask::{BinaryMask, dice, rasterise, rle_decode, rle_encode};

fn scene(w: u32, h: u32, seed: u64) -> Scene {
    Scene::new(&SynthConfig::new(w, h).with_seed(seed))
}

#[test]
fn same_seed_same_pixels_and_tiles_match_the_whole() {
    let mut blur_seen = [false, false];
    for seed in 1..=6 {
        let a = scene(1200, 900, seed);
        blur_seen[a.blurred as usize] = true;
        let whole = a.render(0, 0, 1200, 900);
        assert_eq!(whole.as_raw(), scene(1200, 900, seed).render(0, 0, 1200, 900).as_raw());
        let tile = a.render(512, 256, 300, 200);
        let cropped = image::imageops::crop_imm(&whole, 512, 256, 300, 200).to_image();
        assert!(tile.as_raw() == cropped.as_raw(), "seed {seed}: a tile equals the same rectangle of the whole");
        assert!(whole.as_raw() != scene(1200, 900, seed + 100).render(0, 0, 1200, 900).as_raw());
    }
    assert_eq!(blur_seen, [true, true], "both sharp and blurred slides were checked");
}

#[test]
fn annotations_match_the_rendered_glomeruli() {
    let s = scene(6000, 4000, 7);
    let glomeruli = s.glomeruli();
    assert!(glomeruli.len() >= 5, "{} glomeruli", glomeruli.len());
    for g in glomeruli {
        let r = g.shape.rx.min(g.shape.ry);
        assert!((75.0..=200.0).contains(&r), "radius {r}: 150–400 px across");
    }
    // The outline polygons, rasterised, cover the same pixels the renderer draws as glomerulus.
    let (w, h) = (s.width(), s.height());
    let polygons: Vec<_> = s.glomerulus_annotations().into_iter().flat_map(|a| a.polygons).collect();
    let truth = rasterise(&polygons, w, h);
    let mut drawn = BinaryMask::new(w, h);
    for g in glomeruli {
        let reach = g.shape.reach().ceil() as i64;
        for y in (g.shape.cy as i64 - reach).max(0)..(g.shape.cy as i64 + reach).min(h as i64) {
            for x in (g.shape.cx as i64 - reach).max(0)..(g.shape.cx as i64 + reach).min(w as i64) {
                if g.shape.norm(x as f64 + 0.5, y as f64 + 0.5) < 1.0 {
                    drawn.set(x as u32, y as u32, true);
                }
            }
        }
    }
    let d = dice(&truth, &drawn);
    assert!(d >= 0.995, "polygons vs drawn glomeruli: Dice {d}");
    // And the competition's RLE of that mask decodes to the same mask.
    assert_eq!(rle_decode(&rle_encode(&truth), w, h).unwrap(), truth);
}

#[test]
fn unannotated_glomeruli_are_drawn_but_left_out_of_the_annotations() {
    let config = SynthConfig::new(6000, 4000).with_seed(3).with_unannotated_fraction(1.0);
    let s = Scene::new(&config);
    assert!(!s.glomeruli().is_empty());
    assert!(s.glomerulus_annotations().is_empty());
    let anatomy = s.anatomy_annotations();
    assert!(anatomy.iter().any(|a| a.classification == "Cortex"));
    assert!(anatomy.iter().any(|a| a.classification == "Medulla"));
}

#[test]
fn render_speed_2000_square() {
    let s = scene(2000, 2000, 1);
    let started = std::time::Instant::now();
    let image = s.render(0, 0, 2000, 2000);
    println!("2000×2000 rendered in {:.0} ms", started.elapsed().as_secs_f64() * 1e3);
    if let Ok(dir) = std::env::var("FTUSCOPE_PREVIEW_DIR") {
        image.save(format!("{dir}/synth-2000.png")).unwrap();
        scene(6000, 4000, 7).render(0, 0, 6000, 4000).save(format!("{dir}/synth-6000x4000.png")).unwrap();
    }
}

#[test]
fn tissue_scale_sets_how_much_of_the_slide_is_tissue() {
    let fraction = |scale: f64| {
        let scene = Scene::new(&SynthConfig::new(4000, 4000).with_seed(11).with_tissue_scale(scale));
        let hits = (0..100)
            .flat_map(|i| (0..100).map(move |j| (i, j)))
            .filter(|&(i, j)| super::scene::on_tissue(&scene.pieces, i as f64 * 40.0 + 20.0, j as f64 * 40.0 + 20.0))
            .count();
        hits as f64 / 10_000.0
    };
    let (small, default, large) = (fraction(0.7), fraction(1.0), fraction(1.25));
    assert!(small < default && default < large, "{small} {default} {large}");
    assert!((0.12..0.3).contains(&small) && (0.5..0.8).contains(&large), "{small} {large}");
}
