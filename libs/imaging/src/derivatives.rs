//! The standard derivative set, made from one decode.

use std::time::{Duration, Instant};

use image::{DynamicImage, RgbImage};

use crate::encode::flatten_on_white;
use crate::resize::{Region, resize_region};
use crate::{ImagingError, Limits, MinSize, OutputFormat, decode_covering, encode, fit_within};

/// JPEG quality of the derivatives.
pub const JPEG_QUALITY: u8 = 82;
/// WebP quality of the derivatives.
pub const WEBP_QUALITY: u8 = 80;
/// The side of the square thumbnail.
pub const THUMB_EDGE: u32 = 256;
/// The "fit within" sizes, by name.
const WIDTHS: [(&str, u32); 3] = [("w640", 640), ("w1080", 1080), ("w2048", 2048)];

/// One encoded derivative.
#[derive(Clone, Debug)]
pub struct Made {
    /// `thumb_256`, `w640`, `w1080` or `w2048`.
    pub name: &'static str,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    pub bytes: Vec<u8>,
}

/// What [`make_derivatives`] made.
#[derive(Clone, Debug)]
pub struct Derivatives {
    /// Each derivative as JPEG then WebP, in the order `thumb_256`, `w640`,
    /// `w1080`, `w2048`.
    pub made: Vec<Made>,
    /// The displayed (oriented) width of the original.
    pub width: u32,
    /// The displayed (oriented) height of the original.
    pub height: u32,
    /// The image fitted within 640 px, alpha composited over white, for
    /// placeholders, perceptual hashes and face detection.
    pub analysis: RgbImage,
}

/// Time spent in each stage of [`make_derivatives_timed`], as told by its
/// clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimes {
    /// Inspection, decoding at scale and orientation.
    pub decode: Duration,
    /// Every resize, the analysis image included.
    pub resize: Duration,
    pub jpeg_encode: Duration,
    pub webp_encode: Duration,
}

/// The standard set from one decode: `thumb_256` (a centred square of up to
/// 256x256, never enlarged), `w640`, `w1080` and `w2048` (fitted within that
/// longest edge, never enlarged), each as JPEG (quality 82) and lossy WebP
/// (quality 80), plus the analysis image.
///
/// The JPEG decoder scale is the smallest that covers `w2048` (and the
/// thumbnail's square, for very long panoramas). `w2048` is resized from the
/// decoded pixels, `w1080` from `w2048`, and the thumbnail and analysis
/// image from `w1080`: every step shrinks by 1.7x or more, which a Lanczos3
/// cascade does without visible softening.
pub fn make_derivatives(bytes: &[u8], limits: &Limits) -> Result<Derivatives, ImagingError> {
    let start = Instant::now();
    make_derivatives_timed(bytes, limits, &|| start.elapsed()).map(|(d, _)| d)
}

/// [`make_derivatives`], also timing its stages with `clock` (any monotonic
/// reading, such as elapsed wall time or the thread's CPU time).
pub fn make_derivatives_timed(
    bytes: &[u8],
    limits: &Limits,
    clock: &dyn Fn() -> Duration,
) -> Result<(Derivatives, StageTimes), ImagingError> {
    let mut times = StageTimes::default();
    let mut lap = {
        let mut last = clock();
        move || {
            let now = clock();
            let spent = now.saturating_sub(last);
            last = now;
            spent
        }
    };

    let largest = WIDTHS[WIDTHS.len() - 1].1;
    let decoded = decode_covering(
        bytes,
        limits,
        MinSize {
            longest: Some(largest),
            shortest: Some(THUMB_EDGE),
        },
    )?;
    let (full_width, full_height) = (decoded.full_width, decoded.full_height);
    times.decode += lap();

    // Sizes are worked out on the full-resolution image, so they do not
    // depend on the decoder scale.
    let fit = |edge| fit_within(full_width, full_height, edge);
    let to_size = |img: &DynamicImage, (w, h): (u32, u32)| -> Result<DynamicImage, ImagingError> {
        if (img.width(), img.height()) == (w, h) {
            Ok(img.clone())
        } else {
            resize_region(img, None, w, h)
        }
    };
    let w2048 = to_size(&decoded.image, fit(2048))?;
    drop(decoded);
    let w1080 = to_size(&w2048, fit(1080))?;
    let w640 = to_size(&w1080, fit(640))?;
    let thumb_side = THUMB_EDGE.min(full_width.min(full_height)).max(1);
    let thumb = resize_region(
        &w1080,
        Some(Region::centre_square(w1080.width(), w1080.height())),
        thumb_side,
        thumb_side,
    )?;
    let analysis = flatten_on_white(&w640).into_owned();
    times.resize += lap();

    let mut made = Vec::with_capacity(8);
    for (name, img) in [
        ("thumb_256", &thumb),
        (WIDTHS[0].0, &w640),
        (WIDTHS[1].0, &w1080),
        (WIDTHS[2].0, &w2048),
    ] {
        for (format, quality) in [
            (OutputFormat::Jpeg, JPEG_QUALITY),
            (OutputFormat::Webp, WEBP_QUALITY),
        ] {
            let bytes = encode(img, format, quality)?;
            match format {
                OutputFormat::Webp => times.webp_encode += lap(),
                _ => times.jpeg_encode += lap(),
            }
            made.push(Made {
                name,
                format,
                width: img.width(),
                height: img.height(),
                bytes,
            });
        }
    }

    Ok((
        Derivatives {
            made,
            width: full_width,
            height: full_height,
            analysis,
        },
        times,
    ))
}
