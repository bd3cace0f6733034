//! The Kaggle HuBMAP run-length encoding: pixels numbered top to bottom, then left to right
//! (column-major), 1-indexed, as space-separated `start length` pairs.

use super::{BinaryMask, Error};
use std::fmt::Write;

/// Encodes a mask as the competition did. An empty mask gives an empty string.
pub fn rle_encode(mask: &BinaryMask) -> String {
    let (w, h) = (mask.width() as u64, mask.height() as u64);
    let mut out = String::new();
    let mut run_start = None;
    for i in 0..w * h {
        let on = mask.get((i / h) as u32, (i % h) as u32);
        match (on, run_start) {
            (true, None) => run_start = Some(i),
            (false, Some(start)) => {
                push_run(&mut out, start, i - start);
                run_start = None;
            }
            _ => {}
        }
    }
    if let Some(start) = run_start {
        push_run(&mut out, start, w * h - start);
    }
    out
}

fn push_run(out: &mut String, start0: u64, length: u64) {
    if !out.is_empty() {
        out.push(' ');
    }
    // Writing to a String cannot fail.
    let _ = write!(out, "{} {}", start0 + 1, length);
}

/// Decodes a competition RLE for a `width`×`height` image, strictly: every number a positive
/// integer, complete pairs, runs in increasing order without overlap, all inside the image.
pub fn rle_decode(rle: &str, width: u32, height: u32) -> Result<BinaryMask, Error> {
    let numbers = rle
        .split_ascii_whitespace()
        .enumerate()
        .map(|(index, token)| match token.parse::<u64>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(Error::RleToken { index, token: token.to_string() }),
        })
        .collect::<Result<Vec<u64>, Error>>()?;
    if numbers.len() % 2 != 0 {
        return Err(Error::RleOddCount(numbers.len()));
    }
    let pixels = width as u64 * height as u64;
    let mut mask = BinaryMask::new(width, height);
    let mut previous_end = 0u64;
    for (index, pair) in numbers.chunks_exact(2).enumerate() {
        let (start, length) = (pair[0], pair[1]);
        if start <= previous_end {
            return Err(Error::RleOrder { index, start, previous_end });
        }
        let end = start.checked_add(length - 1).filter(|&e| e <= pixels);
        let Some(end) = end else {
            return Err(Error::RleOutside { index, start, length, pixels, width, height });
        };
        for i in start - 1..end {
            mask.set((i / height as u64) as u32, (i % height as u64) as u32, true);
        }
        previous_end = end;
    }
    Ok(mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_competitions_example_is_column_major_and_crosses_columns() {
        // "1 3 10 5": pixels 1, 2, 3 and 10..=14, numbered down each column, 1-indexed.
        let mask = rle_decode("1 3 10 5", 4, 4).unwrap();
        let set: Vec<(u32, u32)> =
            (0..4).flat_map(|x| (0..4).map(move |y| (x, y))).filter(|&(x, y)| mask.get(x, y)).collect();
        assert_eq!(set, vec![(0, 0), (0, 1), (0, 2), (2, 1), (2, 2), (2, 3), (3, 0), (3, 1)]);
        assert_eq!(rle_encode(&mask), "1 3 10 5");
    }

    #[test]
    fn round_trips_including_runs_to_the_last_pixel() {
        let mut mask = BinaryMask::new(7, 5);
        for (x, y) in [(0, 4), (1, 0), (1, 1), (3, 2), (6, 3), (6, 4), (5, 4)] {
            mask.set(x, y, true);
        }
        let rle = rle_encode(&mask);
        assert_eq!(rle_decode(&rle, 7, 5).unwrap(), mask);
        // (0,4),(1,0),(1,1) is one run across a column end; (6,3),(6,4) ends at the last pixel, 35.
        assert_eq!(rle, "5 3 18 1 30 1 34 2");
        assert_eq!(rle_encode(&BinaryMask::new(3, 3)), "");
        assert_eq!(rle_decode("  ", 3, 3).unwrap(), BinaryMask::new(3, 3));
    }

    #[test]
    fn malformed_encodings_are_typed_errors() {
        assert!(matches!(rle_decode("1 3 x 2", 4, 4), Err(Error::RleToken { index: 2, .. })));
        assert!(matches!(rle_decode("0 3", 4, 4), Err(Error::RleToken { index: 0, .. })));
        assert!(matches!(rle_decode("1 0", 4, 4), Err(Error::RleToken { index: 1, .. })));
        assert!(matches!(rle_decode("-1 2", 4, 4), Err(Error::RleToken { .. })));
        assert_eq!(rle_decode("1 3 5", 4, 4), Err(Error::RleOddCount(3)));
        assert!(matches!(rle_decode("5 2 1 2", 4, 4), Err(Error::RleOrder { index: 1, .. })));
        assert!(matches!(rle_decode("1 3 3 2", 4, 4), Err(Error::RleOrder { index: 1, start: 3, previous_end: 3 })));
        assert!(matches!(rle_decode("15 3", 4, 4), Err(Error::RleOutside { index: 0, .. })));
        assert!(matches!(rle_decode("1 18446744073709551615", 4, 4), Err(Error::RleOutside { .. })));
    }
}
