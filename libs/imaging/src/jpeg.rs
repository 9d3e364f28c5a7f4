//! JPEG through libjpeg-turbo (the mozjpeg fork, SIMD): scaled decoding and
//! fast baseline encoding.
//!
//! libjpeg reports fatal errors through a callback that must not return; the
//! `mozjpeg` crate makes it unwind (the C code is built with unwind tables),
//! so every call into it runs under [`catch`], which turns that unwinding
//! into an error. A file that ends early is not fatal: libjpeg fills the
//! missing rows with grey and we return what was decoded.

use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{DynamicImage, RgbImage};
use mozjpeg::ColorSpace;

use crate::{ImagingError, Limits, MinSize};

/// The `n/8` numerators the decoder may use, smallest first. libjpeg-turbo
/// has SIMD inverse DCTs for 1/8, 1/4, 1/2 and 8/8 only; the other scales
/// use plain C code but still beat decoding at the next larger SIMD scale.
const SCALES: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// Runs `f`, turning a panic or an unwinding libjpeg error into `wrap(message)`.
pub(crate) fn catch<T>(
    f: impl FnOnce() -> Result<T, ImagingError>,
    wrap: fn(String) -> ImagingError,
) -> Result<T, ImagingError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("libjpeg failed");
            Err(wrap(
                message
                    .trim_start_matches("libjpeg fatal error: ")
                    .to_string(),
            ))
        }
    }
}

/// The size libjpeg gives for `size` at `n/8`: rounded up.
pub(crate) fn scaled(size: u32, n: u32) -> u32 {
    (u64::from(size) * u64::from(n)).div_ceil(8) as u32
}

/// The smallest numerator whose output covers `min` (or is full size).
pub(crate) fn choose_scale(width: u32, height: u32, min: MinSize) -> u32 {
    let (long, short) = (width.max(height), width.min(height));
    let want_long = min.longest.map_or(long, |edge| edge.min(long));
    let want_short = min.shortest.map_or(0, |edge| edge.min(short));
    SCALES
        .into_iter()
        .find(|&n| scaled(long, n) >= want_long && scaled(short, n) >= want_short)
        .unwrap_or(8)
}

/// Decodes to RGB at the smallest scale that covers `min` (no orientation).
pub(crate) fn decode(
    bytes: &[u8],
    limits: &Limits,
    min: MinSize,
) -> Result<DynamicImage, ImagingError> {
    catch(
        || decode_unguarded(bytes, limits, min),
        ImagingError::Decode,
    )
}

fn decode_unguarded(
    bytes: &[u8],
    limits: &Limits,
    min: MinSize,
) -> Result<DynamicImage, ImagingError> {
    let decode_error = |e: std::io::Error| ImagingError::Decode(e.to_string());
    let mut decompress = mozjpeg::Decompress::new_mem(bytes).map_err(decode_error)?;
    let (width, height) = (
        u32::try_from(decompress.width()).unwrap_or(u32::MAX),
        u32::try_from(decompress.height()).unwrap_or(u32::MAX),
    );
    // The decoder reads the frame header itself: check its idea of the size.
    if width == 0 || height == 0 {
        return Err(ImagingError::Decode("the image has no pixels".into()));
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(ImagingError::TooManyPixels {
            width,
            height,
            limit: limits.max_pixels,
        });
    }
    let n = choose_scale(width, height, min);
    decompress.scale(n as u8);
    let cmyk = matches!(
        decompress.color_space(),
        ColorSpace::JCS_CMYK | ColorSpace::JCS_YCCK
    );
    let mut started = if cmyk {
        decompress.to_colorspace(ColorSpace::JCS_CMYK)
    } else {
        decompress.rgb()
    }
    .map_err(decode_error)?;
    let (out_width, out_height) = (started.width(), started.height());
    let pixels: Vec<u8> = started.read_scanlines().map_err(decode_error)?;
    // Trailing garbage or a missing EOI after complete scans is no reason to
    // throw the pixels away.
    let _ = started.finish();
    let rgb = if cmyk { cmyk_to_rgb(&pixels) } else { pixels };
    RgbImage::from_raw(out_width as u32, out_height as u32, rgb)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| ImagingError::Decode("the decoder returned too few rows".into()))
}

/// Adobe CMYK as Photoshop writes it (inverted: 255 is no ink) to RGB.
fn cmyk_to_rgb(cmyk: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(cmyk.len() / 4 * 3);
    for px in cmyk.chunks_exact(4) {
        let k = u16::from(px[3]);
        for &c in &px[..3] {
            rgb.push(((u16::from(c) * k + 127) / 255) as u8);
        }
    }
    rgb
}

/// Baseline JPEG, 4:2:0, libjpeg-turbo's fast path (no trellis
/// quantisation) with optimised Huffman tables, no metadata.
pub(crate) fn encode(rgb: &RgbImage, quality: u8) -> Result<Vec<u8>, ImagingError> {
    catch(
        || {
            let mut compress = mozjpeg::Compress::new(ColorSpace::JCS_RGB);
            compress.set_fastest_defaults();
            compress.set_size(rgb.width() as usize, rgb.height() as usize);
            compress.set_quality(f32::from(quality.clamp(1, 100)));
            compress.set_optimize_coding(true);
            let out = Vec::with_capacity(rgb.as_raw().len() / 8);
            let mut started = compress
                .start_compress(out)
                .map_err(|e| ImagingError::Encode(e.to_string()))?;
            started
                .write_scanlines(rgb.as_raw())
                .map_err(|e| ImagingError::Encode(e.to_string()))?;
            started
                .finish()
                .map_err(|e| ImagingError::Encode(e.to_string()))
        },
        ImagingError::Encode,
    )
}
