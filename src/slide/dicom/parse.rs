//! The part of a DICOM file a whole-slide reader needs, read from a prefix of its bytes: the
//! transfer syntax, the image attributes, the functional groups (pixel spacing, tile positions)
//! and where Pixel Data starts. Little-endian explicit and implicit VR; Pixel Data itself is never
//! read here (frames are fetched one by one later).
//!
//! Not the dicom-rs crates: the reader needs the byte offset of Pixel Data and of each frame for
//! Range requests, and stops before Pixel Data, which dicom-object's in-memory model does not give.

use crate::slide::Error;

/// A tag as (group << 16) | element.
pub type Tag = u32;

const fn tag(group: u16, element: u16) -> Tag {
    ((group as u32) << 16) | element as u32
}

pub const TRANSFER_SYNTAX: Tag = tag(0x0002, 0x0010);
pub const SOP_CLASS: Tag = tag(0x0008, 0x0016);
pub const IMAGE_TYPE: Tag = tag(0x0008, 0x0008);
pub const SERIES_UID: Tag = tag(0x0020, 0x000E);
pub const DIMENSION_ORGANIZATION: Tag = tag(0x0020, 0x9311);
pub const CONCATENATION_OFFSET: Tag = tag(0x0020, 0x9228);
pub const SAMPLES: Tag = tag(0x0028, 0x0002);
pub const PHOTOMETRIC: Tag = tag(0x0028, 0x0004);
pub const PLANAR: Tag = tag(0x0028, 0x0006);
pub const FRAMES: Tag = tag(0x0028, 0x0008);
pub const ROWS: Tag = tag(0x0028, 0x0010);
pub const COLUMNS: Tag = tag(0x0028, 0x0011);
pub const PIXEL_SPACING: Tag = tag(0x0028, 0x0030);
pub const BITS_ALLOCATED: Tag = tag(0x0028, 0x0100);
pub const TOTAL_COLUMNS: Tag = tag(0x0048, 0x0006);
pub const TOTAL_ROWS: Tag = tag(0x0048, 0x0007);
pub const FOCAL_PLANES: Tag = tag(0x0048, 0x0303);
pub const COLUMN_POSITION: Tag = tag(0x0048, 0x021E);
pub const ROW_POSITION: Tag = tag(0x0048, 0x021F);
pub const SHARED_GROUPS: Tag = tag(0x5200, 0x9229);
pub const PER_FRAME_GROUPS: Tag = tag(0x5200, 0x9230);
pub const EXTENDED_OFFSETS: Tag = tag(0x7FE0, 0x0001);
pub const EXTENDED_LENGTHS: Tag = tag(0x7FE0, 0x0002);
pub const PIXEL_DATA: Tag = tag(0x7FE0, 0x0010);
const PIXEL_MEASURES: Tag = tag(0x0028, 0x9110);
const PLANE_POSITION: Tag = tag(0x0048, 0x021A);
/// Sequences read in implicit VR, where a defined-length sequence does not say it is one.
const KNOWN_SEQUENCES: [Tag; 4] = [SHARED_GROUPS, PER_FRAME_GROUPS, PIXEL_MEASURES, PLANE_POSITION];
const ITEM: Tag = tag(0xFFFE, 0xE000);
const ITEM_END: Tag = tag(0xFFFE, 0xE00D);
const SEQUENCE_END: Tag = tag(0xFFFE, 0xE0DD);
const UNDEFINED: u32 = u32::MAX;
/// Nesting deeper than this is a hostile file.
const MAX_DEPTH: usize = 12;

/// One element the caller asked for: where it sits (the sequences and item numbers above it),
/// and its value bytes.
pub struct Found<'a> {
    /// (sequence tag, item index) from the top down.
    pub path: &'a [(Tag, usize)],
    /// The element's tag.
    pub tag: Tag,
    /// Its value.
    pub value: &'a [u8],
}

/// Where Pixel Data's value starts, and its length (`None`: undefined, i.e. encapsulated frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelData {
    pub offset: u64,
    pub length: Option<u32>,
}

/// Why a walk stopped early.
#[derive(Debug)]
pub enum Stop {
    /// The prefix ends before Pixel Data: read more bytes.
    NeedMore,
    /// The bytes are not valid DICOM (or not a kind this reader takes).
    Bad(Error),
}

fn bad(why: impl Into<String>) -> Stop {
    Stop::Bad(Error::Format(format!("DICOM: {}", why.into())))
}

/// Walks a DICOM file's prefix: preamble, file meta, then the dataset in the transfer syntax the
/// meta names. `visit` sees every element that is not a sequence; the walk ends at Pixel Data.
pub fn walk(bytes: &[u8], visit: &mut dyn FnMut(Found<'_>)) -> Result<(String, PixelData), Stop> {
    if bytes.len() < 132 {
        return Err(Stop::NeedMore);
    }
    if &bytes[128..132] != b"DICM" {
        return Err(bad("no DICM signature at byte 128"));
    }
    let mut w = Walker { bytes, explicit: true, path: Vec::new(), transfer_syntax: String::new(), pixel: None };
    // File meta (group 0002): explicit VR little endian, always.
    let mut at = 132;
    while at + 4 <= bytes.len() && u16::from_le_bytes([bytes[at], bytes[at + 1]]) == 0x0002 {
        at = w.element(at, None, visit)?;
    }
    if at + 4 > bytes.len() {
        return Err(Stop::NeedMore);
    }
    w.explicit = match w.transfer_syntax.as_str() {
        "1.2.840.10008.1.2" => false,
        "1.2.840.10008.1.2.2" => return Err(Stop::Bad(Error::Unsupported("DICOM in big-endian transfer syntax".into()))),
        "1.2.840.10008.1.2.1.99" => return Err(Stop::Bad(Error::Unsupported("DICOM in deflated transfer syntax".into()))),
        _ => true,
    };
    while w.pixel.is_none() {
        if at >= bytes.len() {
            return Err(Stop::NeedMore);
        }
        at = w.element(at, None, visit)?;
    }
    Ok((w.transfer_syntax, w.pixel.unwrap_or(PixelData { offset: 0, length: None })))
}

struct Walker<'a> {
    bytes: &'a [u8],
    explicit: bool,
    path: Vec<(Tag, usize)>,
    transfer_syntax: String,
    pixel: Option<PixelData>,
}

impl Walker<'_> {
    fn u16_at(&self, at: usize) -> Result<u16, Stop> {
        self.bytes.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]])).ok_or(Stop::NeedMore)
    }

    fn u32_at(&self, at: usize) -> Result<u32, Stop> {
        self.bytes.get(at..at + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok_or(Stop::NeedMore)
    }

    /// Reads the element at `at` (within `end`, for defined-length containers); returns where the
    /// next one starts.
    fn element(&mut self, at: usize, end: Option<usize>, visit: &mut dyn FnMut(Found<'_>)) -> Result<usize, Stop> {
        let t = ((self.u16_at(at)? as u32) << 16) | self.u16_at(at + 2)? as u32;
        let group_two = t >> 16 == 0x0002;
        let (vr, length, header) = if self.explicit || group_two {
            let vr = self.bytes.get(at + 4..at + 6).ok_or(Stop::NeedMore)?;
            let vr = [vr[0], vr[1]];
            if matches!(&vr, b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV") {
                (Some(vr), self.u32_at(at + 8)?, 12)
            } else if vr.iter().all(u8::is_ascii_uppercase) {
                (Some(vr), self.u16_at(at + 6)? as u32, 8)
            } else {
                return Err(bad(format!("element ({:04X},{:04X}) has no VR", t >> 16, t & 0xFFFF)));
            }
        } else {
            (None, self.u32_at(at + 4)?, 8)
        };
        let start = at + header;
        if t == PIXEL_DATA && self.path.is_empty() {
            self.pixel = Some(PixelData { offset: start as u64, length: (length != UNDEFINED).then_some(length) });
            return Ok(start);
        }
        let sequence = vr == Some(*b"SQ")
            || (vr.is_none() && KNOWN_SEQUENCES.contains(&t))
            || (length == UNDEFINED && (vr.is_none() || vr == Some(*b"UN")));
        if sequence {
            if self.path.len() >= MAX_DEPTH {
                return Err(bad("sequences nested too deep"));
            }
            let was_explicit = self.explicit;
            // An undefined-length UN holds implicit-VR items.
            if vr == Some(*b"UN") {
                self.explicit = false;
            }
            let next = self.sequence(t, start, length, visit);
            self.explicit = was_explicit;
            return next;
        }
        if length == UNDEFINED {
            return Err(bad(format!("element ({:04X},{:04X}) has an undefined length", t >> 16, t & 0xFFFF)));
        }
        let stop = start.checked_add(length as usize).ok_or_else(|| bad("length overflows"))?;
        if end.is_some_and(|e| stop > e) {
            return Err(bad("an element runs past its item"));
        }
        let value = self.bytes.get(start..stop).ok_or(Stop::NeedMore)?;
        if t == TRANSFER_SYNTAX {
            self.transfer_syntax = text(value);
        }
        visit(Found { path: &self.path, tag: t, value });
        Ok(stop)
    }

    fn sequence(&mut self, t: Tag, start: usize, length: u32, visit: &mut dyn FnMut(Found<'_>)) -> Result<usize, Stop> {
        let end = (length != UNDEFINED).then(|| start + length as usize);
        let mut at = start;
        let mut index = 0;
        loop {
            if end.is_some_and(|e| at >= e) {
                return Ok(at);
            }
            let item = ((self.u16_at(at)? as u32) << 16) | self.u16_at(at + 2)? as u32;
            let item_length = self.u32_at(at + 4)?;
            at += 8;
            match item {
                SEQUENCE_END => return Ok(at),
                ITEM => {}
                _ => return Err(bad(format!("expected an item in sequence ({:04X},{:04X})", t >> 16, t & 0xFFFF))),
            }
            self.path.push((t, index));
            let item_end = (item_length != UNDEFINED).then(|| at + item_length as usize);
            loop {
                if item_end.is_some_and(|e| at >= e) {
                    break;
                }
                let next = ((self.u16_at(at)? as u32) << 16) | self.u16_at(at + 2)? as u32;
                if next == ITEM_END {
                    at += 8;
                    break;
                }
                at = self.element(at, item_end, visit)?;
            }
            self.path.pop();
            index += 1;
        }
    }
}

/// A text value without DICOM's padding.
pub fn text(value: &[u8]) -> String {
    String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).trim_start().to_string()
}

/// An unsigned binary value (US or UL, told apart by length).
pub fn unsigned(value: &[u8]) -> Option<u64> {
    match *value {
        [a, b] => Some(u16::from_le_bytes([a, b]) as u64),
        [a, b, c, d] => Some(u32::from_le_bytes([a, b, c, d]) as u64),
        _ => None,
    }
}

/// A signed 32-bit value (SL).
pub fn signed(value: &[u8]) -> Option<i64> {
    (value.len() == 4).then(|| i32::from_le_bytes([value[0], value[1], value[2], value[3]]) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An explicit-VR element.
    fn el(group: u16, element: u16, vr: &[u8; 2], value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend(group.to_le_bytes());
        out.extend(element.to_le_bytes());
        out.extend(vr);
        if matches!(vr, b"OB" | b"SQ" | b"UN" | b"OW") {
            out.extend([0, 0]);
            out.extend((value.len() as u32).to_le_bytes());
        } else {
            out.extend((value.len() as u16).to_le_bytes());
        }
        out.extend(value);
        out
    }

    fn item(content: &[u8]) -> Vec<u8> {
        let mut out = vec![0xFE, 0xFF, 0x00, 0xE0];
        out.extend((content.len() as u32).to_le_bytes());
        out.extend(content);
        out
    }

    #[test]
    fn walks_to_pixel_data_through_nested_sequences() {
        let mut file = vec![0u8; 128];
        file.extend(b"DICM");
        file.extend(el(0x0002, 0x0010, b"UI", b"1.2.840.10008.1.2.4.50\0"));
        file.extend(el(0x0028, 0x0011, b"US", &240u16.to_le_bytes()));
        let position = [el(0x0048, 0x021E, b"SL", &481i32.to_le_bytes()), el(0x0048, 0x021F, b"SL", &1i32.to_le_bytes())].concat();
        let frame = el(0x0048, 0x021A, b"SQ", &item(&position));
        file.extend(el(0x5200, 0x9230, b"SQ", &[item(&[]), item(&frame)].concat()));
        let at = file.len();
        file.extend([0xE0, 0x7F, 0x10, 0x00, b'O', b'B', 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        let mut seen = Vec::new();
        let (syntax, pixel) = walk(&file, &mut |f| seen.push((f.path.to_vec(), f.tag, f.value.to_vec()))).unwrap();
        assert_eq!(syntax, "1.2.840.10008.1.2.4.50");
        assert_eq!(pixel, PixelData { offset: at as u64 + 12, length: None });
        let column = seen.iter().find(|s| s.1 == COLUMN_POSITION).unwrap();
        assert_eq!(column.0, [(PER_FRAME_GROUPS, 1), (tag(0x0048, 0x021A), 0)]);
        assert_eq!(signed(&column.2), Some(481));
        assert_eq!(unsigned(&seen.iter().find(|s| s.1 == COLUMNS).unwrap().2), Some(240));
        // Cut anywhere before Pixel Data: "read more", never a panic.
        for cut in 0..at + 12 {
            assert!(matches!(walk(&file[..cut], &mut |_| {}), Err(Stop::NeedMore)), "cut at {cut}");
        }
        let mut broken = file.clone();
        broken[128] = b'X';
        assert!(matches!(walk(&broken, &mut |_| {}), Err(Stop::Bad(_))));
    }
}
