//! JPEG: marker segments up to the first scan; the end of the image.

use std::borrow::Cow;

use crate::read::be_u16;
use crate::{Header, InspectError, Limits, StripError, exif};

const SOI: u8 = 0xD8;
const EOI: u8 = 0xD9;
const SOS: u8 = 0xDA;
const APP0: u8 = 0xE0;
const APP1: u8 = 0xE1;
const APP2: u8 = 0xE2;
const APP14: u8 = 0xEE;
const COM: u8 = 0xFE;
const EXIF_PREFIX: &[u8] = b"Exif\0";

/// One marker segment (or a lone marker, with an empty payload).
struct Segment<'a> {
    marker: u8,
    /// The offset of `raw` in the file.
    start: usize,
    /// From the 0xFF of the marker to the end of the payload.
    raw: &'a [u8],
    payload: &'a [u8],
}

/// Markers that stand alone, without a length.
fn is_standalone(marker: u8) -> bool {
    matches!(marker, 0x01 | 0xD0..=0xD7 | SOI | EOI)
}

/// Frame headers (SOF0 to SOF15 less DHT, JPG and DAC), which give the size.
fn is_frame_header(marker: u8) -> bool {
    matches!(marker, 0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF)
}

/// The segment at or after `pos`, skipping fill bytes and (as decoders do)
/// stray bytes between segments.
fn segment_at(b: &[u8], pos: usize) -> Result<Segment<'_>, InspectError> {
    let rest = b.get(pos..).ok_or(InspectError::Truncated)?;
    let ff = pos + memchr::memchr(0xFF, rest).ok_or(InspectError::Truncated)?;
    let mut at = ff + 1;
    while b.get(at) == Some(&0xFF) {
        at += 1;
    }
    let marker = *b.get(at).ok_or(InspectError::Truncated)?;
    let start = at - 1;
    if marker == 0 {
        return Err(InspectError::Corrupt(format!(
            "a stray 0xFF 0x00 at offset {ff} where a marker should be"
        )));
    }
    if is_standalone(marker) {
        return Ok(Segment {
            marker,
            start,
            raw: &b[start..at + 1],
            payload: &[],
        });
    }
    let length = usize::from(be_u16(b, at + 1).ok_or(InspectError::Truncated)?);
    if length < 2 {
        return Err(InspectError::Corrupt(format!(
            "the segment at offset {start} has a length of {length}"
        )));
    }
    let end = at + 1 + length;
    let raw = b.get(start..end).ok_or(InspectError::Truncated)?;
    Ok(Segment {
        marker,
        start,
        raw,
        payload: &raw[4..],
    })
}

/// The TIFF block of an `Exif` APP1 payload.
fn exif_block<'a>(segment: &Segment<'a>) -> Option<&'a [u8]> {
    if segment.marker == APP1 && segment.payload.starts_with(EXIF_PREFIX) {
        segment.payload.get(EXIF_PREFIX.len() + 1..)
    } else {
        None
    }
}

pub(crate) fn inspect<'a>(b: &'a [u8], limits: &Limits) -> Result<Header<'a>, InspectError> {
    let mut pos = 2;
    let mut size = None;
    let mut exif = None;
    let scan = loop {
        let segment = segment_at(b, pos)?;
        pos = segment.start + segment.raw.len();
        match segment.marker {
            SOS => break pos,
            SOI | EOI => {
                return Err(InspectError::Corrupt(
                    "the image ends before its first scan".into(),
                ));
            }
            marker if is_frame_header(marker) && size.is_none() => {
                let p = segment.payload;
                let (Some(height), Some(width)) = (be_u16(p, 1), be_u16(p, 3)) else {
                    return Err(InspectError::Corrupt(
                        "the frame header is cut short".into(),
                    ));
                };
                if width == 0 || height == 0 {
                    return Err(InspectError::Corrupt(format!(
                        "the frame header gives a size of {width}x{height}"
                    )));
                }
                limits.check(width.into(), height.into())?;
                size = Some((u32::from(width), u32::from(height)));
            }
            _ => {
                if exif.is_none() {
                    exif = exif_block(&segment);
                }
            }
        }
    };
    let (width, height) = size.ok_or_else(|| {
        InspectError::Corrupt("the first scan comes before any frame header".into())
    })?;
    if !ends_image(b, scan) {
        return Err(InspectError::Truncated);
    }
    Ok(Header {
        width,
        height,
        frames: None,
        exif: exif.map(Cow::Borrowed),
        quarter_turn: None,
    })
}

/// Whether the image data from `scan` on reaches an EOI marker. Entropy-coded
/// data never holds 0xFF 0xD9 (an 0xFF there is followed by 0x00 or a
/// restart marker), so the first such pair is the end of the primary image.
/// Usually it ends the file, zero padding aside; when it does not, data was
/// appended (MPF previews, motion-photo videos) and a search finds it.
fn ends_image(b: &[u8], scan: usize) -> bool {
    let data = &b[scan.min(b.len())..];
    let unpadded = data.len() - data.iter().rev().take_while(|&&x| x == 0).count();
    data[..unpadded].ends_with(&[0xFF, EOI]) || memchr::memmem::find(data, &[0xFF, EOI]).is_some()
}

/// The orientation in the first EXIF block, when it is worth keeping.
fn orientation_to_keep(b: &[u8]) -> Option<u16> {
    let mut pos = 2;
    loop {
        let segment = segment_at(b, pos).ok()?;
        if matches!(segment.marker, SOS | SOI | EOI) {
            return None;
        }
        if let Some(tiff) = exif_block(&segment) {
            return exif::orientation_to_keep(tiff);
        }
        pos = segment.start + segment.raw.len();
    }
}

/// Whether a stripped copy keeps this segment: JFIF, the ICC profile, Adobe
/// (colour transform) and everything that is not metadata (tables, frame
/// and scan headers, restart intervals).
fn keep(segment: &Segment<'_>) -> bool {
    match segment.marker {
        APP0 => !segment.payload.starts_with(b"JFXX\0"),
        APP2 => segment.payload.starts_with(b"ICC_PROFILE\0"),
        APP14 => true,
        0xE0..=0xEF | COM => false,
        _ => true,
    }
}

pub(crate) fn strip(b: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut out = Vec::with_capacity(b.len());
    out.extend([0xFF, SOI]);
    let mut pos = 2;
    let mut orientation = orientation_to_keep(b);
    loop {
        let segment = segment_at(b, pos).map_err(StripError::from_walk)?;
        pos = segment.start + segment.raw.len();
        // A fresh EXIF block with the orientation alone goes after JFIF.
        if segment.marker != APP0
            && let Some(orientation) = orientation.take()
        {
            let tiff = exif::orientation_only(orientation);
            // A 26-byte block: the length always fits.
            let length = (2 + EXIF_PREFIX.len() + 1 + tiff.len()) as u16;
            out.extend([0xFF, APP1]);
            out.extend(length.to_be_bytes());
            out.extend(EXIF_PREFIX);
            out.push(0);
            out.extend(tiff);
        }
        match segment.marker {
            SOI => return Err(StripError::Corrupt("a second start of image".into())),
            EOI => {
                // The primary image ends here; whatever follows is dropped.
                out.extend([0xFF, EOI]);
                return Ok(out);
            }
            SOS => {
                out.extend(segment.raw);
                let data_end = entropy_end(b, pos).map_err(StripError::from_walk)?;
                out.extend(&b[pos..data_end]);
                pos = data_end;
            }
            _ if keep(&segment) => out.extend(segment.raw),
            _ => {}
        }
    }
}

/// The end of the entropy-coded data that starts at `pos`: the first 0xFF
/// followed by neither 0x00 (stuffing), a restart marker nor fill.
fn entropy_end(b: &[u8], mut pos: usize) -> Result<usize, InspectError> {
    loop {
        let ff = pos + memchr::memchr(0xFF, &b[pos..]).ok_or(InspectError::Truncated)?;
        match b.get(ff + 1) {
            None => return Err(InspectError::Truncated),
            Some(0x00 | 0xD0..=0xD7) => pos = ff + 2,
            Some(0xFF) => pos = ff + 1,
            Some(_) => return Ok(ff),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_pixels: 1 << 30,
    };

    /// A structurally complete JPEG without real tables: enough for the walk.
    fn tiny(extra_segments: &[u8], sof_size: (u16, u16)) -> Vec<u8> {
        let mut b = vec![0xFF, SOI];
        b.extend([0xFF, APP0, 0, 16]);
        b.extend(b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0");
        b.extend(extra_segments);
        b.extend([0xFF, 0xC0, 0, 11, 8]);
        b.extend(sof_size.1.to_be_bytes());
        b.extend(sof_size.0.to_be_bytes());
        b.extend([1, 1, 0x11, 0]);
        b.extend([0xFF, SOS, 0, 8, 1, 1, 0, 0, 63, 0]);
        b.extend([0x12, 0x34, 0xFF, 0x00, 0x56, 0xFF, 0xD0, 0x78]);
        b.extend([0xFF, EOI]);
        b
    }

    #[test]
    fn reads_the_frame_size() {
        let bytes = tiny(&[], (640, 480));
        let header = inspect(&bytes, &LIMITS).expect("inspect");
        assert_eq!((header.width, header.height), (640, 480));
        assert!(header.exif.is_none());
    }

    #[test]
    fn zero_size_is_corrupt() {
        assert!(matches!(
            inspect(&tiny(&[], (0, 480)), &LIMITS),
            Err(InspectError::Corrupt(_))
        ));
    }

    #[test]
    fn fill_bytes_and_padding_are_fine() {
        let mut b = tiny(&[0xFF, 0xFF, COM, 0, 4, b'h', b'i'], (8, 8));
        b.extend([0; 16]);
        inspect(&b, &LIMITS).expect("inspect");
    }

    #[test]
    fn a_missing_end_is_truncated() {
        let b = tiny(&[], (8, 8));
        for cut in [b.len() - 1, b.len() - 2, b.len() - 5, 30, 3] {
            assert_eq!(
                inspect(&b[..cut], &LIMITS).err(),
                Some(InspectError::Truncated),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn strip_drops_comments_and_keeps_tables() {
        let b = tiny(&[0xFF, COM, 0, 4, b'h', b'i'], (8, 8));
        let stripped = strip(&b).expect("strip");
        assert_eq!(stripped, tiny(&[], (8, 8)));
    }
}
