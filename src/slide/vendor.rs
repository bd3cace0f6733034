//! Formats recognised by their signature or name, whether ftuscope reads them or not: the one-line
//! answer for a file it does not read (with the conversion that makes it readable), and the human
//! name of each format it does read, for `info` and the app.

use super::{Error, SlideFormat};

/// Bytes read from the start of a file to recognise it (DICOM's "DICM" sits at 128).
pub(super) const HEAD: u64 = 512;

/// The conversion suggested for formats ftuscope does not read.
const CONVERT: &str = "convert it to OME-TIFF (`bfconvert -pyramid-resolutions 5 IN OUT.ome.tif`, or `vips tiffsave IN OUT.tif --tile --pyramid --bigtiff` where OpenSlide reads it)";

/// A file format ftuscope recognises but does not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Foreign {
    /// Its name, with the vendor.
    pub format: &'static str,
    /// Why it is not read, in a few words.
    pub why: &'static str,
}

impl Foreign {
    /// The error a user sees: what the file is, why it is not read, what to do.
    pub fn error(self) -> Error {
        Error::Foreign { format: self.format, why: self.why, advice: CONVERT }
    }
}

/// Recognises formats that are not read, by the first bytes and the file's name (some are
/// TIFF-based or share another format's signature, so the name is needed).
pub fn recognise(head: &[u8], name: &str) -> Option<Foreign> {
    let lower = name.rsplit(['/', '\\']).next().unwrap_or(name).split(['?', '#']).next().unwrap_or("").to_ascii_lowercase();
    let ext = |e: &str| lower.ends_with(e);
    let found = |format, why| Some(Foreign { format, why });
    if head.starts_with(b"ZISRAWFILE") || ext(".czi") {
        return found("Zeiss CZI", "its sub-block layout is proprietary");
    }
    if ext(".mrxs") || head.starts_with(b"[GENERAL]") || head.starts_with(b"\xEF\xBB\xBF[GENERAL]") {
        return found("3DHISTECH MIRAX (.mrxs with a folder of Data*.dat files)", "its tile index is proprietary");
    }
    if ext(".isyntax") || contains(head, b"<DataObject ObjectType=\"DPUfsImport\"") && !is_tiff(head) {
        return found("Philips iSyntax", "its wavelet coefficients need Philips' SDK");
    }
    if ext(".vsi") || ext(".ets") {
        return found("Olympus VSI (pixels in .ets files beside it)", "the pixels are in .ets files");
    }
    if head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) {
        return found("an OLE compound file (Zeiss ZVI or similar)", "it is not an image format ftuscope reads");
    }
    if ext(".kfb") || ext(".sdpc") || ext(".tron") {
        return found("a KFBio/SQRAY slide", "its format is proprietary");
    }
    None
}

/// Hamamatsu NDPI: TIFF-like, but tiles are JPEG restart intervals and offsets past 4 GiB are
/// stored out of band, so a plain TIFF reader would show wrong pixels.
pub const NDPI: Foreign =
    Foreign { format: "Hamamatsu NDPI", why: "its JPEG restart-marker tiling and 64-bit offset extension are not read" };

fn is_tiff(head: &[u8]) -> bool {
    matches!(head.get(..4), Some(b"II*\0" | b"MM\0*" | b"II+\0" | b"MM\0+"))
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The name `info` and the app print for a format that is read.
pub fn describe(format: SlideFormat) -> &'static str {
    match format {
        SlideFormat::Svs => "Aperio SVS",
        SlideFormat::OmeTiff => "OME-TIFF",
        SlideFormat::HubmapPlanes => "TIFF, RGB as three grey pages",
        SlideFormat::Tiff => "TIFF",
        SlideFormat::Philips => "Philips TIFF",
        SlideFormat::VentanaBif => "Ventana BIF",
        SlideFormat::LeicaScn => "Leica SCN",
        SlideFormat::Dicom => "DICOM WSI",
        SlideFormat::Png => "PNG image",
        SlideFormat::Jpeg => "JPEG image",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_and_names_are_recognised() {
        let mut dicom = vec![0u8; 132];
        dicom[128..].copy_from_slice(b"DICM");
        assert_eq!(recognise(&dicom, "level-0.dcm"), None, "DICOM is read");
        assert_eq!(recognise(b"ZISRAWFILE\0\0", "x").unwrap().format, "Zeiss CZI");
        assert!(recognise(b"\xFF\xD8\xFF\xE0", "CMU-1.mrxs").unwrap().format.contains("MIRAX"));
        assert!(recognise(b"[GENERAL]\r\nSLIDE_ID", "Slidedat.ini").unwrap().format.contains("MIRAX"));
        assert!(recognise(b"II*\0\x08\0\0\0", "https://host/a/OS-1.VSI?x=1").unwrap().format.contains("VSI"));
        assert!(recognise(b"<DataObject ObjectType=\"DPUfsImport\">", "a.isyntax").unwrap().format.contains("iSyntax"));
        assert_eq!(recognise(b"II*\0\x08\0\0\0", "slide.svs"), None);
        assert_eq!(recognise(b"\x89PNG\r\n\x1a\n", "a.png"), None);
        let message = NDPI.error().to_string();
        assert!(message.starts_with("Hamamatsu NDPI is not read by ftuscope"), "{message}");
        assert!(message.contains("bfconvert") && !message.contains('\n'), "{message}");
    }
}
