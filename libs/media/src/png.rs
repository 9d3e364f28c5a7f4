//! PNG (and APNG): chunks with their CRCs, `IHDR` first, `IEND` last.

use std::borrow::Cow;

use crate::read::{be_u32, fourcc, show_fourcc};
use crate::{Header, InspectError, Limits, StripError, exif};

pub(crate) const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Chunks that a stripped copy leaves out.
const METADATA: [&[u8; 4]; 5] = [b"eXIf", b"tEXt", b"iTXt", b"zTXt", b"tIME"];

struct Chunk<'a> {
    kind: [u8; 4],
    data: &'a [u8],
    /// Length, type, data and CRC.
    raw: &'a [u8],
}

/// The chunk at `pos`, its CRC checked.
fn chunk_at(b: &[u8], pos: usize) -> Result<Chunk<'_>, InspectError> {
    let (Some(length), Some(kind)) = (be_u32(b, pos), fourcc(b, pos + 4)) else {
        return Err(InspectError::Truncated);
    };
    if length > i32::MAX as u32 {
        return Err(InspectError::Corrupt(format!(
            "the {} chunk claims {length} bytes",
            show_fourcc(kind)
        )));
    }
    let end = (pos + 12)
        .checked_add(length as usize)
        .ok_or(InspectError::Truncated)?;
    let raw = b.get(pos..end).ok_or(InspectError::Truncated)?;
    let (body, crc) = raw[4..].split_at(raw.len() - 8);
    if crc32fast::hash(body).to_be_bytes() != crc {
        return Err(InspectError::Corrupt(format!(
            "the CRC of the {} chunk at offset {pos} does not match",
            show_fourcc(kind)
        )));
    }
    Ok(Chunk {
        kind,
        data: &body[4..],
        raw,
    })
}

/// Calls `each` on every chunk from `IHDR` to `IEND`, both included.
fn walk<'a>(
    b: &'a [u8],
    limits: Option<&Limits>,
    mut each: impl FnMut(&Chunk<'a>),
) -> Result<(u32, u32), InspectError> {
    let pos = SIGNATURE.len();
    // The size first, before anything long (the CRCs) is done.
    if fourcc(b, pos + 4).is_some_and(|kind| &kind != b"IHDR") {
        return Err(InspectError::Corrupt("the first chunk is not IHDR".into()));
    }
    let (Some(width), Some(height)) = (be_u32(b, pos + 8), be_u32(b, pos + 12)) else {
        return Err(InspectError::Truncated);
    };
    if width == 0 || height == 0 || width > i32::MAX as u32 || height > i32::MAX as u32 {
        return Err(InspectError::Corrupt(format!(
            "IHDR gives a size of {width}x{height}"
        )));
    }
    if let Some(limits) = limits {
        limits.check(width, height)?;
    }
    let mut pos = pos;
    let mut image_data = false;
    loop {
        let chunk = chunk_at(b, pos)?;
        pos += chunk.raw.len();
        if &chunk.kind == b"IHDR" && chunk.data.len() != 13 {
            return Err(InspectError::Corrupt("IHDR is not 13 bytes long".into()));
        }
        image_data |= &chunk.kind == b"IDAT";
        each(&chunk);
        if &chunk.kind == b"IEND" {
            break;
        }
    }
    if !image_data {
        return Err(InspectError::Corrupt("there is no IDAT chunk".into()));
    }
    Ok((width, height))
}

pub(crate) fn inspect<'a>(b: &'a [u8], limits: &Limits) -> Result<Header<'a>, InspectError> {
    let mut exif = None;
    let mut frames = None;
    let (width, height) = walk(b, Some(limits), |chunk| match &chunk.kind {
        b"eXIf" if exif.is_none() => exif = Some(chunk.data),
        b"acTL" if frames.is_none() => frames = be_u32(chunk.data, 0),
        _ => {}
    })?;
    Ok(Header {
        width,
        height,
        frames: Some(frames.unwrap_or(1)),
        exif: exif.map(Cow::Borrowed),
        quarter_turn: None,
    })
}

pub(crate) fn strip(b: &[u8]) -> Result<Vec<u8>, StripError> {
    let mut chunks = Vec::new();
    walk(b, None, |chunk| {
        chunks.push((chunk.kind, chunk.data, chunk.raw))
    })
    .map_err(StripError::from_walk)?;
    let orientation = chunks
        .iter()
        .find(|(kind, _, _)| kind == b"eXIf")
        .and_then(|(_, data, _)| exif::orientation_to_keep(data));
    let mut out = Vec::with_capacity(b.len());
    out.extend(SIGNATURE);
    for (kind, _, raw) in chunks {
        if !METADATA.contains(&&kind) {
            out.extend(raw);
        }
        if &kind == b"IHDR"
            && let Some(orientation) = orientation
        {
            write_chunk(&mut out, *b"eXIf", &exif::orientation_only(orientation));
        }
    }
    Ok(out)
}

fn write_chunk(out: &mut Vec<u8>, kind: [u8; 4], data: &[u8]) {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&kind);
    crc.update(data);
    // Callers write small chunks only.
    out.extend((data.len() as u32).to_be_bytes());
    out.extend(kind);
    out.extend(data);
    out.extend(crc.finalize().to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_pixels: 1 << 30,
    };

    fn tiny(chunks: &[([u8; 4], &[u8])]) -> Vec<u8> {
        let mut b = SIGNATURE.to_vec();
        let mut ihdr = Vec::new();
        ihdr.extend(3u32.to_be_bytes());
        ihdr.extend(2u32.to_be_bytes());
        ihdr.extend([8, 0, 0, 0, 0]);
        write_chunk(&mut b, *b"IHDR", &ihdr);
        for (kind, data) in chunks {
            write_chunk(&mut b, *kind, data);
        }
        write_chunk(&mut b, *b"IDAT", b"not really zlib");
        write_chunk(&mut b, *b"IEND", b"");
        b
    }

    #[test]
    fn walks_chunks_and_counts_apng_frames() {
        let bytes = tiny(&[(*b"acTL", &[0, 0, 0, 7, 0, 0, 0, 0])]);
        let header = inspect(&bytes, &LIMITS).expect("inspect");
        assert_eq!(
            (header.width, header.height, header.frames),
            (3, 2, Some(7))
        );
        let bytes = tiny(&[]);
        let header = inspect(&bytes, &LIMITS).expect("inspect");
        assert_eq!(header.frames, Some(1));
    }

    #[test]
    fn ihdr_must_come_first() {
        let mut b = SIGNATURE.to_vec();
        write_chunk(&mut b, *b"tEXt", b"a\0b");
        assert!(matches!(
            inspect(&b, &LIMITS),
            Err(InspectError::Corrupt(_))
        ));
    }

    #[test]
    fn strip_drops_text_and_time() {
        let b = tiny(&[
            (*b"tEXt", b"Author\0Jane"),
            (*b"tIME", &[7, 226, 1, 1, 0, 0, 0]),
            (*b"gAMA", &[0, 0, 177, 143]),
        ]);
        let stripped = strip(&b).expect("strip");
        assert_eq!(stripped, tiny(&[(*b"gAMA", &[0, 0, 177, 143])]));
    }
}
