//! GIF: the logical screen, then image descriptors and extensions, each
//! followed by data sub-blocks, up to the trailer.

use crate::read::le_u16;
use crate::{Header, InspectError, Limits, StripError};

const IMAGE: u8 = 0x2C;
const EXTENSION: u8 = 0x21;
const TRAILER: u8 = 0x3B;
const COMMENT: u8 = 0xFE;
const APPLICATION: u8 = 0xFF;

/// One top-level block, from its introducer to the end of its sub-blocks.
enum Block<'a> {
    Image {
        right: u32,
        bottom: u32,
    },
    Extension {
        label: u8,
        /// The first sub-block (an application extension's identifier).
        first: &'a [u8],
    },
}

/// The size of a colour table announced by `flags`, if any.
fn color_table(flags: u8) -> usize {
    if flags & 0x80 != 0 {
        3 << ((flags & 7) + 1)
    } else {
        0
    }
}

/// The position after the data sub-blocks that start at `pos`.
fn skip_sub_blocks(b: &[u8], mut pos: usize) -> Result<usize, InspectError> {
    loop {
        let size = *b.get(pos).ok_or(InspectError::Truncated)?;
        pos += 1 + usize::from(size);
        if size == 0 {
            return Ok(pos);
        }
        if pos > b.len() {
            return Err(InspectError::Truncated);
        }
    }
}

/// Calls `each` with every block and its byte range; returns the logical
/// screen size and the offset of the first block.
fn walk<'a>(
    b: &'a [u8],
    limits: Option<&Limits>,
    mut each: impl FnMut(Block<'a>, std::ops::Range<usize>),
) -> Result<((u16, u16), usize), InspectError> {
    let (Some(width), Some(height), Some(&flags)) = (le_u16(b, 6), le_u16(b, 8), b.get(10)) else {
        return Err(InspectError::Truncated);
    };
    if let Some(limits) = limits {
        limits.check(width.into(), height.into())?;
    }
    let first = 13 + color_table(flags);
    let mut pos = first;
    loop {
        let start = pos;
        match *b.get(pos).ok_or(InspectError::Truncated)? {
            IMAGE => {
                let (Some(x), Some(y), Some(w), Some(h), Some(&flags)) = (
                    le_u16(b, pos + 1),
                    le_u16(b, pos + 3),
                    le_u16(b, pos + 5),
                    le_u16(b, pos + 7),
                    b.get(pos + 9),
                ) else {
                    return Err(InspectError::Truncated);
                };
                if let Some(limits) = limits {
                    limits.check(w.into(), h.into())?;
                }
                // Descriptor, local colour table, LZW minimum code size.
                pos = skip_sub_blocks(b, pos + 10 + color_table(flags) + 1)?;
                let block = Block::Image {
                    right: u32::from(x) + u32::from(w),
                    bottom: u32::from(y) + u32::from(h),
                };
                each(block, start..pos);
            }
            EXTENSION => {
                let label = *b.get(pos + 1).ok_or(InspectError::Truncated)?;
                let first_len = usize::from(*b.get(pos + 2).ok_or(InspectError::Truncated)?);
                let first = b
                    .get(pos + 3..pos + 3 + first_len)
                    .ok_or(InspectError::Truncated)?;
                pos = skip_sub_blocks(b, pos + 2)?;
                each(Block::Extension { label, first }, start..pos);
            }
            TRAILER => return Ok(((width, height), first)),
            other => {
                return Err(InspectError::Corrupt(format!(
                    "unknown block 0x{other:02X} at offset {pos}"
                )));
            }
        }
    }
}

pub(crate) fn inspect<'a>(b: &'a [u8], limits: &Limits) -> Result<Header<'a>, InspectError> {
    let mut frames = 0u32;
    let mut extent = (0, 0);
    let ((width, height), _) = walk(b, Some(limits), |block, _| {
        if let Block::Image { right, bottom } = block {
            frames += 1;
            extent = (extent.0.max(right), extent.1.max(bottom));
        }
    })?;
    if frames == 0 {
        return Err(InspectError::Corrupt("there is no image in the GIF".into()));
    }
    // Some encoders leave the logical screen at 0x0; viewers then use the
    // frames' extent.
    let (width, height) = if width == 0 || height == 0 {
        limits.check(extent.0, extent.1)?;
        extent
    } else {
        (width.into(), height.into())
    };
    Ok(Header {
        width,
        height,
        frames: Some(frames),
        exif: None,
        quarter_turn: None,
    })
}

/// Whether a stripped copy keeps this extension: graphic control and plain
/// text (they are part of the picture) and the looping application blocks.
fn keep(label: u8, first: &[u8]) -> bool {
    match label {
        COMMENT => false,
        APPLICATION => first == b"NETSCAPE2.0" || first == b"ANIMEXTS1.0",
        _ => true,
    }
}

pub(crate) fn strip(b: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut kept = Vec::new();
    let (_, first) = walk(b, None, |block, range| {
        let keep = match block {
            Block::Image { .. } => true,
            Block::Extension { label, first } => keep(label, first),
        };
        if keep {
            kept.push(range);
        }
    })
    .map_err(StripError::from_walk)?;
    let mut out = Vec::with_capacity(b.len());
    out.extend(&b[..first]);
    for range in kept {
        out.extend(&b[range]);
    }
    out.push(TRAILER);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_pixels: 1 << 30,
    };

    fn frame() -> Vec<u8> {
        let mut b = vec![IMAGE, 0, 0, 0, 0, 2, 0, 2, 0, 0];
        b.extend([2, 2, 0x44, 0x01, 0]);
        b
    }

    fn gif(screen: (u16, u16), blocks: &[&[u8]]) -> Vec<u8> {
        let mut b = b"GIF89a".to_vec();
        b.extend(screen.0.to_le_bytes());
        b.extend(screen.1.to_le_bytes());
        b.extend([0x80, 0, 0]);
        b.extend([0, 0, 0, 255, 255, 255]);
        for block in blocks {
            b.extend(*block);
        }
        b.push(TRAILER);
        b
    }

    const COMMENT_BLOCK: &[u8] = &[EXTENSION, COMMENT, 5, b'h', b'e', b'l', b'l', b'o', 0];
    const LOOP_BLOCK: &[u8] = b"\x21\xFF\x0BNETSCAPE2.0\x03\x01\x00\x00\x00";
    const XMP_BLOCK: &[u8] = b"\x21\xFF\x0BXMP DataXMP\x04<x/>\x00";

    #[test]
    fn counts_frames() {
        let f = frame();
        let bytes = gif((2, 2), &[LOOP_BLOCK, &f, COMMENT_BLOCK, &f, &f]);
        let header = inspect(&bytes, &LIMITS).expect("inspect");
        assert_eq!(
            (header.width, header.height, header.frames),
            (2, 2, Some(3))
        );
    }

    #[test]
    fn a_zero_screen_takes_the_frames_extent() {
        let bytes = gif((0, 0), &[&frame()]);
        let header = inspect(&bytes, &LIMITS).expect("inspect");
        assert_eq!((header.width, header.height), (2, 2));
    }

    #[test]
    fn running_out_is_truncated() {
        let b = gif((2, 2), &[&frame()]);
        for cut in [b.len() - 1, b.len() - 3, 12] {
            assert_eq!(
                inspect(&b[..cut], &LIMITS).err(),
                Some(InspectError::Truncated)
            );
        }
    }

    #[test]
    fn strip_keeps_looping_and_drops_comments_and_xmp() {
        let f = frame();
        let b = gif((2, 2), &[LOOP_BLOCK, XMP_BLOCK, &f, COMMENT_BLOCK]);
        assert_eq!(strip(&b).expect("strip"), gif((2, 2), &[LOOP_BLOCK, &f]));
    }
}
