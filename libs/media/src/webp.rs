//! WebP: a RIFF container of chunks; the size comes from `VP8X`, `VP8 ` or
//! `VP8L`.

use std::borrow::Cow;

use crate::read::{fourcc, le_u16, le_u24, le_u32, show_fourcc};
use crate::{Header, InspectError, Limits, StripError, exif};

const FLAG_EXIF: u8 = 0x08;
const FLAG_XMP: u8 = 0x04;
const FLAG_ANIMATION: u8 = 0x02;

struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
    /// Header, data and padding.
    raw: &'a [u8],
}

/// The chunks inside the RIFF data.
fn chunks(b: &[u8]) -> Result<Vec<Chunk<'_>>, InspectError> {
    let size = le_u32(b, 4).ok_or(InspectError::Truncated)?;
    if size < 4 {
        return Err(InspectError::Corrupt(format!("the RIFF size is {size}")));
    }
    let end = 8usize.saturating_add(size as usize);
    if end > b.len() {
        return Err(InspectError::Truncated);
    }
    let mut chunks = Vec::new();
    let mut pos = 12;
    while pos < end {
        let (Some(kind), Some(length)) = (fourcc(&b[..end], pos), le_u32(&b[..end], pos + 4))
        else {
            return Err(InspectError::Corrupt(format!(
                "a chunk header at offset {pos} runs past the RIFF data"
            )));
        };
        let data_end = (pos + 8).saturating_add(length as usize);
        if data_end > end {
            return Err(InspectError::Corrupt(format!(
                "the {} chunk runs past the RIFF data",
                show_fourcc(kind)
            )));
        }
        // Odd sizes are padded, though some writers forget it at the end.
        let padded_end = (data_end + (length as usize & 1)).min(end);
        chunks.push(Chunk {
            kind,
            data: &b[pos + 8..data_end],
            raw: &b[pos..padded_end],
        });
        pos = padded_end;
    }
    Ok(chunks)
}

fn vp8_size(d: &[u8]) -> Result<(u32, u32), InspectError> {
    let (Some(w), Some(h)) = (le_u16(d, 6), le_u16(d, 8)) else {
        return Err(InspectError::Corrupt("the VP8 chunk is cut short".into()));
    };
    if d[0] & 1 != 0 || d[3..6] != [0x9D, 0x01, 0x2A] {
        return Err(InspectError::Corrupt(
            "the VP8 chunk does not start with a key frame".into(),
        ));
    }
    let (w, h) = (u32::from(w & 0x3FFF), u32::from(h & 0x3FFF));
    if w == 0 || h == 0 {
        return Err(InspectError::Corrupt(format!("the VP8 frame is {w}x{h}")));
    }
    Ok((w, h))
}

fn vp8l_size(d: &[u8]) -> Result<(u32, u32), InspectError> {
    match (d.first(), le_u32(d, 1)) {
        (Some(0x2F), Some(bits)) => Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)),
        (Some(_), Some(_)) => Err(InspectError::Corrupt("the VP8L signature is wrong".into())),
        _ => Err(InspectError::Corrupt("the VP8L chunk is cut short".into())),
    }
}

/// The image size from the first chunk, which must describe it.
fn size(first: &Chunk<'_>) -> Result<(u32, u32), InspectError> {
    match &first.kind {
        b"VP8X" => match (le_u24(first.data, 4), le_u24(first.data, 7)) {
            (Some(w), Some(h)) => Ok((w + 1, h + 1)),
            _ => Err(InspectError::Corrupt("the VP8X chunk is cut short".into())),
        },
        b"VP8 " => vp8_size(first.data),
        b"VP8L" => vp8l_size(first.data),
        other => Err(InspectError::Corrupt(format!(
            "the first chunk is {}, not VP8X, VP8 or VP8L",
            show_fourcc(*other)
        ))),
    }
}

/// The TIFF block of an `EXIF` chunk (some writers keep the JPEG prefix).
fn exif_block(data: &[u8]) -> &[u8] {
    data.strip_prefix(b"Exif\0\0").unwrap_or(data)
}

pub(crate) fn inspect<'a>(b: &'a [u8], limits: &Limits) -> Result<Header<'a>, InspectError> {
    let chunks = chunks(b)?;
    let first = chunks
        .first()
        .ok_or_else(|| InspectError::Corrupt("the RIFF data holds no chunk".into()))?;
    let (width, height) = size(first)?;
    limits.check(width, height)?;
    if &first.kind != b"VP8X" {
        return Ok(Header {
            width,
            height,
            frames: Some(1),
            exif: None,
            quarter_turn: None,
        });
    }
    let animated = first.data[0] & FLAG_ANIMATION != 0;
    let mut frames = 0u32;
    let mut still = false;
    let mut exif = None;
    for chunk in &chunks[1..] {
        match &chunk.kind {
            b"ANMF" => {
                if let (Some(w), Some(h)) = (le_u24(chunk.data, 6), le_u24(chunk.data, 9)) {
                    limits.check(w + 1, h + 1)?;
                }
                frames += 1;
            }
            b"VP8 " | b"VP8L" => still = true,
            b"EXIF" if exif.is_none() => exif = Some(exif_block(chunk.data)),
            _ => {}
        }
    }
    if (animated && frames == 0) || (!animated && !still) {
        return Err(InspectError::Corrupt("there is no image data".into()));
    }
    Ok(Header {
        width,
        height,
        frames: Some(if animated { frames } else { 1 }),
        exif: exif.map(Cow::Borrowed),
        quarter_turn: None,
    })
}

pub(crate) fn strip(b: &[u8]) -> Result<Vec<u8>, StripError> {
    let chunks = chunks(b).map_err(StripError::from_walk)?;
    let extended = chunks
        .first()
        .is_some_and(|c| &c.kind == b"VP8X" && !c.data.is_empty());
    // EXIF is only allowed in the extended format.
    let mut orientation = chunks
        .iter()
        .find(|c| &c.kind == b"EXIF")
        .filter(|_| extended)
        .and_then(|c| exif::orientation_to_keep(exif_block(c.data)));
    let mut out = Vec::with_capacity(b.len());
    out.extend(b"RIFF\0\0\0\0WEBP");
    for chunk in &chunks {
        match &chunk.kind {
            b"VP8X" => {
                let flags_at = out.len() + 8;
                out.extend(chunk.raw);
                if let Some(flags) = out.get_mut(flags_at) {
                    *flags &= !(FLAG_EXIF | FLAG_XMP);
                    if orientation.is_some() {
                        *flags |= FLAG_EXIF;
                    }
                }
            }
            b"EXIF" => {
                if let Some(orientation) = orientation.take() {
                    let tiff = exif::orientation_only(orientation);
                    out.extend(b"EXIF");
                    // A small block of even length: no padding.
                    out.extend((tiff.len() as u32).to_le_bytes());
                    out.extend(tiff);
                }
            }
            b"XMP " => {}
            _ => out.extend(chunk.raw),
        }
    }
    let size = u32::try_from(out.len() - 8)
        .map_err(|_| StripError::Corrupt("the RIFF data is over 4 GiB".into()))?;
    out[4..8].copy_from_slice(&size.to_le_bytes());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_pixels: 1 << 30,
    };

    fn riff(chunks: &[(&[u8; 4], &[u8])]) -> Vec<u8> {
        let mut body = b"WEBP".to_vec();
        for (kind, data) in chunks {
            body.extend(*kind);
            body.extend((data.len() as u32).to_le_bytes());
            body.extend(*data);
            if data.len() % 2 == 1 {
                body.push(0);
            }
        }
        let mut b = b"RIFF".to_vec();
        b.extend((body.len() as u32).to_le_bytes());
        b.extend(body);
        b
    }

    /// A VP8L header for a `w`x`h` image (no real bitstream).
    fn vp8l(w: u32, h: u32) -> Vec<u8> {
        let bits = (w - 1) | ((h - 1) << 14);
        let mut d = vec![0x2F];
        d.extend(bits.to_le_bytes());
        d.extend([0; 5]);
        d
    }

    fn vp8x(flags: u8, w: u32, h: u32) -> Vec<u8> {
        let mut d = vec![flags, 0, 0, 0];
        d.extend(&(w - 1).to_le_bytes()[..3]);
        d.extend(&(h - 1).to_le_bytes()[..3]);
        d
    }

    #[test]
    fn simple_lossless() {
        let bytes = riff(&[(b"VP8L", &vp8l(300, 200))]);
        let header = inspect(&bytes, &LIMITS).expect("inspect");
        assert_eq!(
            (header.width, header.height, header.frames),
            (300, 200, Some(1))
        );
    }

    #[test]
    fn simple_lossy() {
        let vp8 = [
            0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x40, 0x01, 0xF0, 0x00, 0, 0,
        ];
        let bytes = riff(&[(b"VP8 ", &vp8)]);
        let header = inspect(&bytes, &LIMITS).expect("inspect");
        assert_eq!((header.width, header.height), (320, 240));
    }

    #[test]
    fn counts_animation_frames() {
        let mut frame = vec![0; 6];
        frame.extend(&vp8x(0, 16, 16)[4..]);
        frame.extend([0; 4]);
        let b = riff(&[
            (b"VP8X", &vp8x(FLAG_ANIMATION, 16, 16)),
            (b"ANIM", &[0; 6]),
            (b"ANMF", &frame),
            (b"ANMF", &frame),
        ]);
        let header = inspect(&b, &LIMITS).expect("inspect");
        assert_eq!(header.frames, Some(2));
    }

    #[test]
    fn a_short_riff_is_truncated_and_a_long_chunk_corrupt() {
        let b = riff(&[(b"VP8L", &vp8l(3, 2))]);
        assert_eq!(
            inspect(&b[..b.len() - 1], &LIMITS).err(),
            Some(InspectError::Truncated)
        );
        let mut long = b.clone();
        long[16] += 1;
        long.push(0);
        assert!(matches!(
            inspect(&long, &LIMITS),
            Err(InspectError::Corrupt(_))
        ));
    }

    #[test]
    fn strip_clears_flags_and_chunks() {
        let image = vp8l(3, 2);
        let b = riff(&[
            (b"VP8X", &vp8x(FLAG_EXIF | FLAG_XMP, 3, 2)),
            (b"VP8L", &image),
            (b"EXIF", b"MM\0\x2a\0\0\0\x08\0\0\0\0\0\0"),
            (b"XMP ", b"<x:xmpmeta/>"),
        ]);
        let stripped = strip(&b).expect("strip");
        assert_eq!(
            stripped,
            riff(&[(b"VP8X", &vp8x(0, 3, 2)), (b"VP8L", &image)])
        );
    }
}
