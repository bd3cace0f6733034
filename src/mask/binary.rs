//! A binary (0/1) mask, row-major, at some resolution of a slide.

/// Which pixels belong to glomeruli.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinaryMask {
    width: u32,
    height: u32,
    data: Vec<bool>,
}

impl BinaryMask {
    /// An empty mask.
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height, data: vec![false; width as usize * height as usize] }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// Whether `(x, y)` is set; `false` outside the mask.
    pub fn get(&self, x: u32, y: u32) -> bool {
        x < self.width && y < self.height && self.data[y as usize * self.width as usize + x as usize]
    }

    /// Sets or clears `(x, y)`; ignored outside the mask.
    pub fn set(&mut self, x: u32, y: u32, value: bool) {
        if x < self.width && y < self.height {
            self.data[y as usize * self.width as usize + x as usize] = value;
        }
    }

    /// Number of set pixels.
    pub fn count(&self) -> u64 {
        self.data.iter().filter(|&&v| v).count() as u64
    }

    /// Pixels set in both masks (which must have the same size).
    pub fn intersection_count(&self, other: &BinaryMask) -> u64 {
        self.data.iter().zip(&other.data).filter(|(a, b)| **a && **b).count() as u64
    }
}
