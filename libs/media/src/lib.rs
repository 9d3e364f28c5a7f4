//! Image containers without decoding pixels.
//!
//! [`sniff`] names the format from the first bytes, [`inspect`] reads the
//! size, frame count and EXIF from the headers after a cheap structural walk
//! (no pixel decoding, so it suits the upload path), and [`strip_metadata`]
//! removes EXIF, XMP, IPTC and comments without touching the coded pixels.
//!
//! Everything here is a pure function over bytes: no I/O, no async.

mod bmff;
mod exif;
mod gif;
mod jpeg;
mod png;
mod read;
mod webp;

use std::borrow::Cow;
use std::fmt;

/// An image format this crate understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Jpeg,
    Png,
    Gif,
    Webp,
    /// HEIF with HEVC-coded images (`.heic`), as iPhones write.
    Heic,
    /// HEIF with AV1-coded images.
    Avif,
}

impl Format {
    /// Every supported format.
    pub const ALL: [Format; 6] = [
        Format::Jpeg,
        Format::Png,
        Format::Gif,
        Format::Webp,
        Format::Heic,
        Format::Avif,
    ];

    /// The media type, for `Content-Type`: `image/jpeg`, `image/png`, ...
    pub fn mime(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Gif => "image/gif",
            Format::Webp => "image/webp",
            Format::Heic => "image/heic",
            Format::Avif => "image/avif",
        }
    }

    /// The usual file name extension, without the dot: `jpg`, `png`, ...
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jpeg => "jpg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Heic => "heic",
            Format::Avif => "avif",
        }
    }

    /// The stable lowercase name (`jpeg`, `png`, ...), as in serde and the
    /// database; [`Format::parse`] is its inverse.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Gif => "gif",
            Format::Webp => "webp",
            Format::Heic => "heic",
            Format::Avif => "avif",
        }
    }

    /// The format named by [`Format::as_str`], or `None`.
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The format whose [`Format::extension`] is `ext`, or `None`.
    pub fn from_extension(ext: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.extension() == ext)
    }
}

impl fmt::Display for Format {
    /// The name people know the format by: `JPEG`, `PNG`, `GIF`, `WebP`,
    /// `HEIC`, `AVIF`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Jpeg => "JPEG",
            Format::Png => "PNG",
            Format::Gif => "GIF",
            Format::Webp => "WebP",
            Format::Heic => "HEIC",
            Format::Avif => "AVIF",
        })
    }
}

/// The format from the first bytes only (magic numbers, or the brands of an
/// ISO-BMFF `ftyp` box: `heic`, `heix`, `hevc`, ... or `mif1`/`msf1` with a
/// HEVC brand among the compatible ones give [`Format::Heic`], `avif`/`avis`
/// give [`Format::Avif`]). `None` when the bytes are not a supported image.
///
/// 32 bytes are enough for every format; a HEIF `ftyp` box may list its
/// compatible brands further on.
pub fn sniff(head: &[u8]) -> Option<Format> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some(Format::Jpeg)
    } else if head.starts_with(png::SIGNATURE) {
        Some(Format::Png)
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some(Format::Gif)
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some(Format::Webp)
    } else {
        bmff::sniff(head)
    }
}

/// Limits that [`inspect`] enforces from the headers alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest `width * height` of any one frame.
    pub max_pixels: u64,
}

impl Limits {
    fn check(&self, width: u32, height: u32) -> Result<(), InspectError> {
        if u64::from(width) * u64::from(height) > self.max_pixels {
            Err(InspectError::TooManyPixels {
                width,
                height,
                limit: self.max_pixels,
            })
        } else {
            Ok(())
        }
    }
}

/// What [`inspect`] learnt about an image.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Inspected {
    pub format: Format,
    /// The stored (coded) width, before any EXIF orientation is applied; for
    /// HEIC/AVIF the primary item's `ispe`.
    pub width: u32,
    /// The stored (coded) height; see [`Inspected::width`].
    pub height: u32,
    /// The number of frames, for the formats that can animate and say so in
    /// their structure: GIF (image descriptors), WebP (`ANMF` chunks, 1 for
    /// a still) and PNG (APNG's `acTL`, 1 for a still). `None` for JPEG,
    /// HEIC and AVIF.
    pub frames: Option<u32>,
    /// The EXIF fields we use, `None` when there is no EXIF block, it is
    /// broken, or it holds none of them.
    pub exif: Option<ExifData>,
    /// HEIC and AVIF: whether the primary item's `irot` property turns it a
    /// quarter (90 or 270 degrees). `None` for the other formats, whose
    /// EXIF orientation says how they are shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarter_turn: Option<bool>,
}

impl Inspected {
    /// The size as shown: width and height swapped when the image is turned
    /// a quarter: by its EXIF orientation (5 to 8), or for HEIC and AVIF by
    /// its `irot` property.
    ///
    /// HEIF decoders apply `irot` and `imir` and return pixels already
    /// turned, so a HEIF's EXIF orientation (phones keep it in step) must
    /// not be applied a second time.
    pub fn display_size(&self) -> (u32, u32) {
        let turned = self.quarter_turn.unwrap_or_else(|| {
            matches!(
                self.exif.as_ref().and_then(|exif| exif.orientation),
                Some(5..=8)
            )
        });
        if turned {
            (self.height, self.width)
        } else {
            (self.width, self.height)
        }
    }
}

/// The EXIF fields Pinhole shows or uses.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExifData {
    /// The EXIF orientation, 1 to 8 (other values are dropped).
    pub orientation: Option<u16>,
    pub camera_make: Option<String>,
    pub camera_model: Option<String>,
    /// `LensModel`, prefixed by `LensMake` when that is set and the model
    /// does not already name it.
    pub lens: Option<String>,
    /// As photographers write it: `1/250` below a quarter second, else
    /// seconds with one decimal at most (`0.4`, `2.5`, `30`).
    pub exposure_time: Option<String>,
    /// Rounded to two decimals, like the focal length.
    pub f_number: Option<f64>,
    /// `PhotographicSensitivity` (ISO speed), or `ISOSpeed` /
    /// `RecommendedExposureIndex` where that one is missing or saturated.
    pub iso: Option<u32>,
    pub focal_length_mm: Option<f64>,
    /// `DateTimeOriginal` (else `DateTime`) as `2008-05-30T15:56:01`, with
    /// the offset appended (`2008-05-30T15:56:01+02:00`) when
    /// `OffsetTimeOriginal` (else `OffsetTime`) gives one.
    pub taken_at: Option<String>,
    pub gps: Option<Gps>,
}

/// A position from EXIF GPS tags.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Gps {
    /// Decimal degrees, south negative, within -90..=90.
    pub lat: f64,
    /// Decimal degrees, west negative, within -180..=180.
    pub lon: f64,
    /// Metres above sea level (negative below).
    pub altitude_m: Option<f64>,
}

/// Why [`inspect`] refused an image.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InspectError {
    #[error("not an image in a supported format (JPEG, PNG, GIF, WebP, HEIC, AVIF)")]
    Unsupported,
    #[error("the image is truncated")]
    Truncated,
    #[error("the image is corrupt: {0}")]
    Corrupt(String),
    #[error("the image is {width}x{height} pixels, over the limit of {limit} pixels")]
    TooManyPixels { width: u32, height: u32, limit: u64 },
}

/// What the container walk of one format found.
struct Header<'a> {
    width: u32,
    height: u32,
    frames: Option<u32>,
    /// The raw EXIF (TIFF) block, from its byte-order mark on.
    exif: Option<Cow<'a, [u8]>>,
    /// HEIF only: whether `irot` turns the image a quarter.
    quarter_turn: Option<bool>,
}

/// Sniffs the format, walks the container structure (markers, chunks,
/// blocks or boxes: never the pixel data), reads the size from the headers
/// and checks it against `limits` before walking further, then reads EXIF.
///
/// A file that ends early is [`InspectError::Truncated`]; broken EXIF is
/// never an error, only `exif: None`.
pub fn inspect(bytes: &[u8], limits: &Limits) -> Result<Inspected, InspectError> {
    let format = sniff(bytes).ok_or(InspectError::Unsupported)?;
    let header = match format {
        Format::Jpeg => jpeg::inspect(bytes, limits)?,
        Format::Png => png::inspect(bytes, limits)?,
        Format::Gif => gif::inspect(bytes, limits)?,
        Format::Webp => webp::inspect(bytes, limits)?,
        Format::Heic | Format::Avif => bmff::inspect(bytes, limits)?,
    };
    Ok(Inspected {
        format,
        width: header.width,
        height: header.height,
        frames: header.frames,
        exif: header.exif.and_then(|tiff| exif::parse(tiff.into_owned())),
        quarter_turn: header.quarter_turn,
    })
}

/// Why [`strip_metadata`] could not produce a clean copy.
#[derive(Debug, thiserror::Error)]
pub enum StripError {
    /// The file stores its metadata in a way we cannot remove safely (a
    /// HEIF item built from other items or kept in another file).
    #[error("removing the metadata of this {0} file is not supported")]
    Unsupported(Format),
    #[error("the image is corrupt: {0}")]
    Corrupt(String),
}

impl StripError {
    fn from_walk(error: InspectError) -> StripError {
        match error {
            InspectError::Corrupt(why) => StripError::Corrupt(why),
            other => StripError::Corrupt(other.to_string()),
        }
    }
}

/// The same image with its metadata removed, losslessly: the coded pixel
/// data is copied byte for byte.
///
/// - JPEG: drops APP1 (EXIF, XMP), APP13 (IPTC, Photoshop), COM, the other
///   vendor APPn segments (APP3 to APP12, APP15, JFXX thumbnails, APP2 other
///   than the ICC profile) and anything after the end of the primary image
///   (MPF previews, motion-photo videos: they carry their own EXIF). Keeps
///   APP0 JFIF, APP2 ICC profile and APP14 Adobe, which colour needs.
/// - PNG: drops `eXIf`, `tEXt`, `iTXt`, `zTXt`, `tIME` and anything after
///   `IEND`; keeps `iCCP`, `sRGB`, `gAMA` and the rest.
/// - WebP: drops `EXIF` and `XMP ` chunks and clears their `VP8X` flags.
/// - GIF: drops comment extensions and application extensions other than
///   `NETSCAPE2.0` / `ANIMEXTS1.0` (looping), such as XMP.
/// - HEIC/AVIF: overwrites the Exif item and XMP items (`mime`,
///   `application/rdf+xml`) in place, so every size and offset stays valid:
///   the Exif item becomes an empty TIFF block padded with zeros, XMP an
///   empty packet padded with spaces. A file without such items comes back
///   unchanged.
///
/// One field survives on purpose: for JPEG, PNG and WebP an EXIF
/// orientation other than 1 is written back as a fresh EXIF block holding
/// only that tag, since viewers rotate by it and dropping it would show the
/// photo on its side. (HEIF keeps its rotation in `irot`/`imir`.)
///
/// `format` must be the format of `bytes` (as [`sniff`] tells), else the
/// result is [`StripError::Corrupt`].
pub fn strip_metadata(bytes: &[u8], format: Format) -> Result<Vec<u8>, StripError> {
    if sniff(bytes) != Some(format) {
        return Err(StripError::Corrupt(format!(
            "the data is not a {format} image"
        )));
    }
    match format {
        Format::Jpeg => jpeg::strip(bytes),
        Format::Png => png::strip(bytes),
        Format::Gif => gif::strip(bytes),
        Format::Webp => webp::strip(bytes),
        Format::Heic | Format::Avif => bmff::strip(bytes, format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(Format::parse(format.as_str()), Some(format));
            let json = serde_json::to_string(&format).expect("serialize");
            assert_eq!(json, format!("\"{}\"", format.as_str()));
            assert!(format.mime().starts_with("image/"));
        }
        assert_eq!(Format::Jpeg.extension(), "jpg");
        assert_eq!(Format::Heic.mime(), "image/heic");
        assert_eq!(Format::parse("JPEG"), None);
        assert_eq!(Format::parse("jpg"), None);
    }

    #[test]
    fn sniffs_magic_numbers() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF"), Some(Format::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR"), Some(Format::Png));
        assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), Some(Format::Gif));
        assert_eq!(sniff(b"GIF87a"), Some(Format::Gif));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), Some(Format::Webp));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WAVEfmt "), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\xFF\xD8"), None);
        assert_eq!(sniff(b"%PDF-1.7\n"), None);
        assert_eq!(sniff(b"hello, world\n"), None);
    }

    #[test]
    fn display_size_follows_orientation() {
        let mut inspected = Inspected {
            format: Format::Jpeg,
            width: 4000,
            height: 3000,
            frames: None,
            exif: None,
            quarter_turn: None,
        };
        assert_eq!(inspected.display_size(), (4000, 3000));
        for (orientation, size) in [
            (1, (4000, 3000)),
            (3, (4000, 3000)),
            (5, (3000, 4000)),
            (6, (3000, 4000)),
            (8, (3000, 4000)),
        ] {
            inspected.exif = Some(ExifData {
                orientation: Some(orientation),
                ..ExifData::default()
            });
            assert_eq!(inspected.display_size(), size, "orientation {orientation}");
        }
        // A HEIF's irot decides, whatever its EXIF says.
        inspected.format = Format::Heic;
        inspected.quarter_turn = Some(false);
        assert_eq!(inspected.display_size(), (4000, 3000));
        inspected.quarter_turn = Some(true);
        inspected.exif = None;
        assert_eq!(inspected.display_size(), (3000, 4000));
    }

    #[test]
    fn limits_count_pixels_per_frame() {
        let limits = Limits { max_pixels: 100 };
        assert_eq!(limits.check(10, 10), Ok(()));
        assert_eq!(
            limits.check(u32::MAX, u32::MAX),
            Err(InspectError::TooManyPixels {
                width: u32::MAX,
                height: u32::MAX,
                limit: 100
            })
        );
    }
}
