//! The standard derivative set: the sizes made at upload from one decode,
//! and the larger ones made on their first request.

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
/// The "fit within" sizes made at upload, by name.
const WIDTHS: [(&str, u32); 2] = [("w640", 640), ("w1080", 1080)];
/// The "fit within" sizes made on their first request, by name. Feeds,
/// grids and phone screens show `w1080` and smaller; `w2048` is asked for
/// by wide or dense screens opening one photo, and it alone would cost more
/// than the whole upload set (most of the pixels, and a larger decoder
/// scale).
pub const ON_REQUEST: [(&str, u32); 1] = [("w2048", 2048)];
/// How many times the largest output's size the JPEG decoder's scale
/// covers. libjpeg's scaled inverse DCT softens what it shrinks; from twice
/// the size, the Lanczos3 resize that follows decides the result (at the
/// decoder's own size, `w1080` lost 0.1-0.35 dB PSNR against libvips'
/// result from full-size pixels, in the thumbnails bench).
const OVERSAMPLE: u32 = 2;
/// The formats of every derivative, in the order they are listed.
const FORMATS: [(OutputFormat, u8); 2] = [
    (OutputFormat::Jpeg, JPEG_QUALITY),
    (OutputFormat::Webp, WEBP_QUALITY),
];

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

/// A derivative of the set that is made on its first request
/// ([`make_on_request`]), with the size it will have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// `w2048`.
    pub name: &'static str,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
}

/// What [`make_derivatives`] made.
#[derive(Clone, Debug)]
pub struct Derivatives {
    /// Each derivative made at upload as JPEG then WebP, in the order
    /// `thumb_256`, `w640`, `w1080`.
    pub made: Vec<Made>,
    /// The rest of the set (`w2048`, as JPEG then WebP), made on request.
    pub later: Vec<Planned>,
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

/// A clock's laps: each call gives the time since the last.
fn laps(clock: &dyn Fn() -> Duration) -> impl FnMut() -> Duration + '_ {
    let mut last = clock();
    move || {
        let now = clock();
        let spent = now.saturating_sub(last);
        last = now;
        spent
    }
}

/// `img` fitted within `edge` of the full-resolution size `full` (sizes are
/// worked out on the full-resolution image, so they do not depend on the
/// decoder scale); `img` itself when it already has that size.
fn fitted(
    img: &DynamicImage,
    (full_width, full_height): (u32, u32),
    edge: u32,
) -> Result<DynamicImage, ImagingError> {
    let (w, h) = fit_within(full_width, full_height, edge);
    if (img.width(), img.height()) == (w, h) {
        Ok(img.clone())
    } else {
        resize_region(img, None, w, h)
    }
}

/// The upload set from one decode: `thumb_256` (a centred square of up to
/// 256x256, never enlarged), `w640` and `w1080` (fitted within that longest
/// edge, never enlarged), each as JPEG (quality 82) and lossy WebP
/// (quality 80), plus the analysis image; and the sizes of the
/// [`ON_REQUEST`] ones.
///
/// The JPEG decoder scale is the smallest that covers twice `w1080` (and
/// the thumbnail's square, for very long panoramas). `w1080` is resized
/// from the decoded pixels, `w640` from `w1080`, and the thumbnail and analysis
/// image from `w1080` and `w640`: every step shrinks by 1.7x or more, which
/// a Lanczos3 cascade does without visible softening.
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
    let mut lap = laps(clock);

    let largest = WIDTHS[WIDTHS.len() - 1].1;
    let decoded = decode_covering(
        bytes,
        limits,
        MinSize {
            longest: Some(largest * OVERSAMPLE),
            shortest: Some(THUMB_EDGE),
        },
    )?;
    let full = (decoded.full_width, decoded.full_height);
    times.decode += lap();

    let w1080 = fitted(&decoded.image, full, WIDTHS[1].1)?;
    drop(decoded);
    let w640 = fitted(&w1080, full, WIDTHS[0].1)?;
    let thumb_side = THUMB_EDGE.min(full.0.min(full.1)).max(1);
    let thumb = resize_region(
        &w1080,
        Some(Region::centre_square(w1080.width(), w1080.height())),
        thumb_side,
        thumb_side,
    )?;
    let analysis = flatten_on_white(&w640).into_owned();
    times.resize += lap();

    let mut made = Vec::with_capacity(WIDTHS.len() * 2 + 2);
    for (name, img) in [
        ("thumb_256", &thumb),
        (WIDTHS[0].0, &w640),
        (WIDTHS[1].0, &w1080),
    ] {
        for (format, quality) in FORMATS {
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
    let later = ON_REQUEST
        .iter()
        .flat_map(|&(name, edge)| {
            let (width, height) = fit_within(full.0, full.1, edge);
            FORMATS.map(|(format, _)| Planned {
                name,
                format,
                width,
                height,
            })
        })
        .collect();

    Ok((
        Derivatives {
            made,
            later,
            width: full.0,
            height: full.1,
            analysis,
        },
        times,
    ))
}

/// Makes one of the [`ON_REQUEST`] derivatives (`name`, in `format`: JPEG
/// or WebP) from its own decode, at the smallest decoder scale that covers
/// twice its size: the size [`make_derivatives`] planned for it, at the
/// set's quality.
/// `None` when `name` and `format` are not one of them.
pub fn make_on_request(
    bytes: &[u8],
    limits: &Limits,
    name: &str,
    format: OutputFormat,
) -> Result<Option<Made>, ImagingError> {
    let Some(&(name, edge)) = ON_REQUEST.iter().find(|(n, _)| *n == name) else {
        return Ok(None);
    };
    let Some((format, quality)) = FORMATS.into_iter().find(|(f, _)| *f == format) else {
        return Ok(None);
    };
    let decoded = decode_covering(
        bytes,
        limits,
        MinSize {
            longest: Some(edge * OVERSAMPLE),
            shortest: None,
        },
    )?;
    let full = (decoded.full_width, decoded.full_height);
    let img = fitted(&decoded.image, full, edge)?;
    drop(decoded);
    Ok(Some(Made {
        name,
        format,
        width: img.width(),
        height: img.height(),
        bytes: encode(&img, format, quality)?,
    }))
}
