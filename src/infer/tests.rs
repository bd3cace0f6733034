use super::*;
use crate::slide::test_pattern;

/// Fingerprint of the placeholder network on the 64×64 test pattern (tile 64): the mean probability
/// and the probabilities at pixels (10, 10) and (40, 45). `tests/web.rs` checks the browser's result
/// against the same numbers.
const PLACEHOLDER_FINGERPRINT_64: [f32; 3] = [0.513_692_6, 0.513_601, 0.500_958_3];

/// The fingerprint of a 64×64 mask.
fn fingerprint(mask: &ProbMask) -> [f32; 3] {
    let p = mask.data();
    [p.iter().sum::<f32>() / p.len() as f32, p[10 * 64 + 10], p[45 * 64 + 40]]
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    futures_lite::future::block_on(f)
}

fn segmenter(tile: usize, batch: usize) -> Segmenter {
    let config = SegmentConfig::new().with_tile(tile).with_batch(batch);
    Segmenter::placeholder(&Device::flex(), config).unwrap()
}

#[test]
fn mask_has_image_size_and_probabilities_in_range() {
    let image = test_pattern(70, 45);
    let mask = block_on(segmenter(32, 3).segment(&image)).unwrap();
    assert_eq!((mask.width(), mask.height()), (70, 45));
    assert!(mask.data().iter().all(|p| (0.0..=1.0).contains(p)));
    // A random network is not constant: the pattern's discs and gradients must show.
    let (lo, hi) = mask.data().iter().fold((1f32, 0f32), |(lo, hi), &p| (lo.min(p), hi.max(p)));
    println!("placeholder probabilities span {lo}..{hi}");
    assert!(hi - lo > 1e-3, "output is flat: {lo}..{hi}");
}

#[test]
fn batching_does_not_change_the_result() {
    let image = test_pattern(96, 64);
    let one = block_on(segmenter(32, 1).segment(&image)).unwrap();
    let many = block_on(segmenter(32, 6).segment(&image)).unwrap();
    let diff = one.data().iter().zip(many.data()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(diff < 1e-5, "max diff {diff}");
}

#[test]
fn fixed_seed_output_checksum() {
    let mask = block_on(segmenter(64, 1).segment(&test_pattern(64, 64))).unwrap();
    let got = fingerprint(&mask);
    println!("placeholder fingerprint on the 64×64 pattern: {got:?}");
    for (g, want) in got.iter().zip(PLACEHOLDER_FINGERPRINT_64) {
        assert!((g - want).abs() < 1e-5, "fingerprint {got:?} != {PLACEHOLDER_FINGERPRINT_64:?}");
    }
}

#[test]
fn bad_settings_are_typed_errors() {
    let device = Device::flex();
    for config in [SegmentConfig::new().with_tile(30), SegmentConfig::new().with_tile(0), SegmentConfig::new().with_batch(0)] {
        assert!(matches!(Segmenter::placeholder(&device, config), Err(Error::Config(_))));
    }
}
