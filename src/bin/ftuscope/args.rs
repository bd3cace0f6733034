//! Typed command-line values: the enums clap matches names against and the parsers that turn
//! `X,Y,W,H`, `WIDTHxHEIGHT`, `I/N` and `name:weight` into values, so that a bad argument is
//! refused while parsing, before anything runs. Their messages follow clap's
//! "invalid value 'V' for '--flag <NAME>': " and say what was expected.

use clap::ValueEnum;
use ftuscope::infer::Blend;
use ftuscope::slide::TileCompression;
use std::fmt;

/// JPEG quality of `synth --compression jpeg`.
const JPEG_QUALITY: u8 = 90;

/// `synth --compression`: how the synthetic slide's tiles are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Compression {
    /// Baseline JPEG, quality 90.
    Jpeg,
    /// Adobe Deflate (zlib), lossless.
    Deflate,
    /// LZW, lossless.
    Lzw,
    /// Raw bytes.
    None,
}

impl From<Compression> for TileCompression {
    fn from(compression: Compression) -> Self {
        match compression {
            Compression::Jpeg => Self::Jpeg(JPEG_QUALITY),
            Compression::Deflate => Self::Deflate,
            Compression::Lzw => Self::Lzw,
            Compression::None => Self::None,
        }
    }
}

/// `predict --blend`: how overlapping windows are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Blending {
    /// Each window keeps only its centre, as the HuBMAP winners did.
    #[value(alias = "center")]
    Centre,
    /// Weighted average, weights ramping up over the overlap.
    Ramp,
}

impl From<Blending> for Blend {
    fn from(blending: Blending) -> Self {
        match blending {
            Blending::Centre => Self::Centre,
            Blending::Ramp => Self::Ramp,
        }
    }
}

/// `train --schedule`: the learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LrSchedule {
    /// Linear warm-up, then cosine decay to 0.
    Cosine,
    /// Warm-up to the peak, cosine down to peak/10⁴.
    #[value(name = "onecycle", alias = "one-cycle")]
    OneCycle,
    /// The peak throughout (after warm-up).
    Constant,
}

/// `region --rect X,Y,W,H`: a region in one level's pixels; X and Y may lie outside the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    /// Left edge.
    pub x: i64,
    /// Top edge.
    pub y: i64,
    /// Width, at least 1.
    pub width: u32,
    /// Height, at least 1.
    pub height: u32,
}

/// Parses `X,Y,W,H` (integers; W and H at least 1).
pub fn parse_rect(text: &str) -> Result<Rect, String> {
    let numbers: Vec<i64> = text
        .split(',')
        .map(|v| v.trim().parse::<i64>())
        .collect::<Result<_, _>>()
        .map_err(|_| "expected four integers X,Y,W,H".to_string())?;
    let [x, y, w, h] = numbers[..] else { return Err("expected four integers X,Y,W,H".into()) };
    match (u32::try_from(w), u32::try_from(h)) {
        (Ok(width @ 1..), Ok(height @ 1..)) => Ok(Rect { x, y, width, height }),
        _ if w < 1 || h < 1 => Err(format!("W and H must be at least 1, not {w}×{h}")),
        _ => Err(format!("{w}×{h} is too large")),
    }
}

/// Largest side `synth --size` accepts.
const MAX_SYNTH_SIDE: u32 = 200_000;

/// Parses `WIDTHxHEIGHT` (either `x` or `X`), each side 1–200000 pixels.
pub fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let parsed = text.split_once(['x', 'X']).and_then(|(w, h)| Some((w.trim().parse::<u32>().ok()?, h.trim().parse::<u32>().ok()?)));
    match parsed {
        Some((w, h)) if (1..=MAX_SYNTH_SIDE).contains(&w) && (1..=MAX_SYNTH_SIDE).contains(&h) => Ok((w, h)),
        _ => Err(format!("expected WIDTHxHEIGHT, each 1–{MAX_SYNTH_SIDE}")),
    }
}

/// `predict --shard I/N`: this process takes slides I, I+N, I+2N, … of the list given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, 0-based, below `count`.
    pub index: usize,
    /// How many shards the slides are split into.
    pub count: usize,
}

impl Shard {
    /// One shard holding every slide.
    pub const ALL: Self = Self { index: 0, count: 1 };

    /// This shard's items: every `count`-th, starting at `index`, in the order given.
    pub fn select<T: Clone>(self, items: &[T]) -> Vec<T> {
        items.iter().skip(self.index).step_by(self.count).cloned().collect()
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Parses `I/N` with 0 ≤ I < N.
pub fn parse_shard(text: &str) -> Result<Shard, String> {
    let parsed = text.split_once('/').and_then(|(i, n)| Some((i.trim().parse::<usize>().ok()?, n.trim().parse::<usize>().ok()?)));
    match parsed {
        Some((index, count)) if index < count => Ok(Shard { index, count }),
        _ => Err("expected I/N with 0 ≤ I < N (e.g. $SLURM_ARRAY_TASK_ID/8)".into()),
    }
}

/// `--pixel-size UM`: a positive, finite number of µm per pixel (at most 1000).
pub fn parse_pixel_size(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 1000.0 => Ok(v),
        _ => Err(format!("'{text}' is not a pixel size in µm (a positive number up to 1000, e.g. 0.5)")),
    }
}

/// Parses `predict --tta`: 1, 2, 4 or 8 flipped views.
pub fn parse_tta(text: &str) -> Result<u8, String> {
    match text.trim().parse::<u8>() {
        Ok(views @ (1 | 2 | 4 | 8)) => Ok(views),
        _ => Err("expected 1, 2, 4 or 8 views".into()),
    }
}

/// What one term of `train --loss` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LossName {
    /// Binary cross-entropy.
    Bce,
    /// BCE with positives weighted (pos_weight 3 unless set).
    Wbce,
    /// Weight of positive pixels in the BCE.
    #[value(name = "pos_weight")]
    PosWeight,
    /// Soft Dice.
    Dice,
    /// Focal loss.
    Focal,
    /// Focal loss γ.
    Gamma,
    /// Lovász hinge.
    Lovasz,
}

/// One `name:weight` of `train --loss` (a bare name means weight 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossTerm {
    /// What it sets.
    pub name: LossName,
    /// Its weight (or γ, or the positive weight): finite and ≥ 0.
    pub weight: f64,
}

/// Parses one `name:weight`, e.g. `dice:1`, `gamma:2` or `lovasz`.
pub fn parse_loss_term(text: &str) -> Result<LossTerm, String> {
    let (name, weight) = text.split_once(':').unwrap_or((text, "1"));
    let Some(name) =
        LossName::value_variants().iter().copied().find(|n| n.to_possible_value().is_some_and(|v| v.matches(name.trim(), false)))
    else {
        let known: Vec<String> =
            LossName::value_variants().iter().filter_map(|n| n.to_possible_value()).map(|v| v.get_name().to_string()).collect();
        return Err(format!("unknown term '{}': expected name:weight with name one of {}", name.trim(), known.join(", ")));
    };
    match weight.trim().parse::<f64>() {
        Ok(weight) if weight.is_finite() && weight >= 0.0 => Ok(LossTerm { name, weight }),
        _ => Err(format!("'{}' is not a weight ≥ 0", weight.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rects_are_four_integers_with_a_positive_size() {
        assert_eq!(parse_rect("-5, 10,256,128").unwrap(), Rect { x: -5, y: 10, width: 256, height: 128 });
        for bad in ["1,2,x", "1,2,3", "1,2,3,4,5", "", "0,0,-1,4", "0,0,4,0", "0,0,4294967296,1"] {
            assert!(parse_rect(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_rect("1,2,x").unwrap_err(), "expected four integers X,Y,W,H");
        assert_eq!(parse_rect("0,0,-1,4").unwrap_err(), "W and H must be at least 1, not -1×4");
        assert_eq!(parse_rect("0,0,4294967296,1").unwrap_err(), "4294967296×1 is too large");
    }

    #[test]
    fn sizes_are_width_x_height_within_limits() {
        assert_eq!(parse_size("6000x4000").unwrap(), (6000, 4000));
        assert_eq!(parse_size("20X 10").unwrap(), (20, 10));
        for bad in ["0x5", "5x0", "200001x5", "5", "5x", "x5", "-1x5", "5*5"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_size("0x5").unwrap_err(), "expected WIDTHxHEIGHT, each 1–200000");
    }

    #[test]
    fn shards_parse_and_partition_the_slides() {
        let slides: Vec<u32> = (0..10).collect();
        let mut all: Vec<u32> = (0..3).flat_map(|index| Shard { index, count: 3 }.select(&slides)).collect();
        all.sort();
        assert_eq!(all, slides);
        assert_eq!(Shard { index: 1, count: 3 }.select(&slides), vec![1, 4, 7]);
        assert_eq!(Shard::ALL.select(&slides), slides);
        assert!(parse_shard("3/3").is_err() && parse_shard("x").is_err() && parse_shard("1/0").is_err());
        assert_eq!(parse_shard("2/8").unwrap(), Shard { index: 2, count: 8 });
        assert_eq!(parse_shard("2/8").unwrap().to_string(), "2/8");
    }

    #[test]
    fn tta_is_one_two_four_or_eight() {
        assert_eq!([1, 2, 4, 8].map(|n: u8| parse_tta(&n.to_string())), [Ok(1), Ok(2), Ok(4), Ok(8)]);
        for bad in ["0", "3", "16", "x", "-1", ""] {
            assert_eq!(parse_tta(bad).unwrap_err(), "expected 1, 2, 4 or 8 views", "{bad}");
        }
    }

    #[test]
    fn names_map_onto_the_library_types() {
        assert_eq!(TileCompression::from(Compression::Jpeg), TileCompression::Jpeg(90));
        assert_eq!(TileCompression::from(Compression::from_str("none", false).unwrap()), TileCompression::None);
        assert!(Compression::from_str("zip", false).is_err());
        assert_eq!(Blend::from(Blending::from_str("center", false).unwrap()), Blend::Centre);
        assert_eq!(Blend::from(Blending::from_str("ramp", false).unwrap()), Blend::Ramp);
        assert_eq!(LrSchedule::from_str("one-cycle", false), Ok(LrSchedule::OneCycle));
        assert_eq!(LrSchedule::from_str("onecycle", false), Ok(LrSchedule::OneCycle));
        assert!(LrSchedule::from_str("x", false).is_err());
    }

    #[test]
    fn loss_terms_parse_or_fail_clearly() {
        assert_eq!(parse_loss_term(" wbce:1").unwrap(), LossTerm { name: LossName::Wbce, weight: 1.0 });
        assert_eq!(parse_loss_term("pos_weight:2.5").unwrap(), LossTerm { name: LossName::PosWeight, weight: 2.5 });
        assert_eq!(parse_loss_term("lovasz").unwrap(), LossTerm { name: LossName::Lovasz, weight: 1.0 });
        for bad in ["bce:x", "bce:-1", "bce:inf", "huber:1", ""] {
            assert!(parse_loss_term(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_loss_term("huber:1").unwrap_err(),
            "unknown term 'huber': expected name:weight with name one of bce, wbce, pos_weight, dice, focal, gamma, lovasz"
        );
        assert_eq!(parse_loss_term("bce:-1").unwrap_err(), "'-1' is not a weight ≥ 0");
    }
}
