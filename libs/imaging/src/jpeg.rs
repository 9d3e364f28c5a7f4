//! JPEG through libjpeg-turbo (the `mozjpeg` crate).
//!
//! libjpeg reports fatal errors through a callback that must not return;
//! the `mozjpeg` crate makes it unwind (`resume_unwind`, so no panic hook
//! runs) through the C frames. Every call is therefore wrapped in
//! `catch_unwind`, which turns those unwinds into errors. (This needs
//! `panic = "unwind"`, the default: with `panic = "abort"` a corrupt JPEG
//! would abort the process.) Truncated data is not fatal for libjpeg: the
//! missing part decodes as grey and a warning is dropped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use mozjpeg::{ColorSpace, Compress, Decompress};

use crate::{ImagingError, Limits};

/// Raw decoded pixels, in the stored (un-oriented) orientation.
pub(crate) struct Pixels {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// The size libjpeg outputs at `numerator / 8`.
pub(crate) fn scaled_size(width: u32, height: u32, numerator: u8) -> (u32, u32) {
    let scale = |v: u32| -> u32 {
        let scaled = (u64::from(v) * u64::from(numerator)).div_ceil(8);
        u32::try_from(scaled).unwrap_or(u32::MAX)
    };
    (scale(width), scale(height))
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.trim_start_matches("libjpeg fatal error: ").to_owned()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "libjpeg failed".to_owned()
    }
}

/// Decodes at `numerator / 8` of the stored size, to RGB.
pub(crate) fn decode(bytes: &[u8], numerator: u8, limits: &Limits) -> Result<Pixels, ImagingError> {
    let numerator = numerator.clamp(1, 8);
    catch_unwind(AssertUnwindSafe(|| decode_inner(bytes, numerator, limits)))
        .unwrap_or_else(|payload| Err(ImagingError::Decode(panic_message(payload))))
}

fn decode_inner(bytes: &[u8], numerator: u8, limits: &Limits) -> Result<Pixels, ImagingError> {
    let io = |e: std::io::Error| ImagingError::Decode(e.to_string());
    let mut d = Decompress::builder().from_mem(bytes).map_err(io)?;
    // The container walk checked the first SOF; check what libjpeg will use.
    let (w, h) = (d.width(), d.height());
    if (w as u64).saturating_mul(h as u64) > limits.max_pixels {
        return Err(ImagingError::TooManyPixels {
            width: u32::try_from(w).unwrap_or(u32::MAX),
            height: u32::try_from(h).unwrap_or(u32::MAX),
            limit: limits.max_pixels,
        });
    }
    d.scale(numerator);
    let cmyk = matches!(
        d.color_space(),
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK
    );
    let mut started = if cmyk {
        d.to_colorspace(ColorSpace::JCS_CMYK).map_err(io)?
    } else {
        d.rgb().map_err(io)?
    };
    let width = u32::try_from(started.width()).map_err(|e| ImagingError::Decode(e.to_string()))?;
    let height =
        u32::try_from(started.height()).map_err(|e| ImagingError::Decode(e.to_string()))?;
    let data: Vec<u8> = started.read_scanlines().map_err(io)?;
    started.finish().map_err(io)?;
    let rgb = if cmyk { cmyk_to_rgb(&data) } else { data };
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(ImagingError::Decode("the decoder returned too few rows".into()));
    }
    Ok(Pixels { width, height, rgb })
}

/// Adobe-style (inverted) CMYK, as Photoshop writes it, to RGB.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let k = u16::from(px[3]);
        for &c in &px[..3] {
            // Both values are stored inverted: 255 means no ink.
            out.push(((u16::from(c) * k + 127) / 255) as u8);
        }
    }
    out
}

/// Encodes RGB as a baseline JPEG with optimised Huffman tables, 4:2:0,
/// libjpeg-turbo's fast settings (no trellis quantisation), no metadata.
pub(crate) fn encode_rgb(
    rgb: &[u8],
    width: u32,
    height: u32,
    quality: u8,
) -> Result<Vec<u8>, ImagingError> {
    if width == 0 || height == 0 || width > 65_535 || height > 65_535 {
        return Err(ImagingError::Encode(format!(
            "a JPEG cannot be {width}x{height} pixels"
        )));
    }
    if rgb.len() != width as usize * height as usize * 3 {
        return Err(ImagingError::Encode("pixel buffer of the wrong size".into()));
    }
    catch_unwind(AssertUnwindSafe(|| {
        let io = |e: std::io::Error| ImagingError::Encode(e.to_string());
        let mut comp = Compress::new(ColorSpace::JCS_RGB);
        comp.set_fastest_defaults();
        comp.set_size(width as usize, height as usize);
        comp.set_quality(f32::from(quality.clamp(1, 100)));
        comp.set_optimize_coding(true);
        let estimate = rgb.len() / 8;
        let mut started = comp.start_compress(Vec::with_capacity(estimate)).map_err(io)?;
        started.write_scanlines(rgb).map_err(io)?;
        started.finish().map_err(io)
    }))
    .unwrap_or_else(|payload| Err(ImagingError::Encode(panic_message(payload))))
}
