//! Decoded tiles, least recently used first out, bounded in bytes.

use image::RgbImage;
use lru::LruCache;
use std::sync::{Arc, Mutex};

/// Which decoded chunk: (level, chunk index) for levels, or (`usize::MAX - page`, index) for
/// associated images.
pub type Key = (usize, u32);

/// A byte-bounded LRU of decoded tiles, shared by all readers of a slide.
pub struct TileCache {
    inner: Mutex<Inner>,
}

struct Inner {
    map: LruCache<Key, Arc<RgbImage>>,
    bytes: u64,
    limit: u64,
}

impl TileCache {
    /// A cache holding at most `limit` bytes of decoded pixels.
    pub fn new(limit: u64) -> Self {
        Self { inner: Mutex::new(Inner { map: LruCache::unbounded(), bytes: 0, limit }) }
    }

    /// The tile, if cached (and marks it recently used).
    pub fn get(&self, key: Key) -> Option<Arc<RgbImage>> {
        self.inner.lock().ok()?.map.get(&key).cloned()
    }

    /// Adds a tile, evicting the least recently used until under the limit. A tile larger than the
    /// whole limit is not kept.
    pub fn put(&self, key: Key, tile: Arc<RgbImage>) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let size = tile.as_raw().len() as u64;
        if size > inner.limit {
            return;
        }
        if let Some(old) = inner.map.put(key, tile) {
            inner.bytes -= old.as_raw().len() as u64;
        }
        inner.bytes += size;
        while inner.bytes > inner.limit {
            match inner.map.pop_lru() {
                Some((_, old)) => inner.bytes -= old.as_raw().len() as u64,
                None => break,
            }
        }
    }

    /// Bytes of decoded pixels held now.
    pub fn bytes(&self) -> u64 {
        self.inner.lock().map(|i| i.bytes).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_under_its_byte_limit_evicting_the_least_recently_used() {
        let cache = TileCache::new(3 * 300);
        let tile = || Arc::new(RgbImage::new(10, 10));
        for i in 0..3 {
            cache.put((0, i), tile());
        }
        assert!(cache.get((0, 0)).is_some());
        cache.put((0, 3), tile());
        assert_eq!(cache.bytes(), 900);
        assert!(cache.get((0, 1)).is_none(), "1 was least recently used");
        assert!(cache.get((0, 0)).is_some());
        cache.put((1, 0), Arc::new(RgbImage::new(100, 100)));
        assert!(cache.get((1, 0)).is_none(), "larger than the whole cache");
    }
}
