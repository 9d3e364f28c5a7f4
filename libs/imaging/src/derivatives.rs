//! The standard derivative set, from one decode.

use std::time::{Duration, Instant};

use image::metadata::Orientation;
use image::{DynamicImage, RgbImage};

use crate::decode::decode_unoriented;
use crate::encode::flatten;
use crate::resize::{Region, resize_region};
use crate::{ImagingError, Limits, OutputFormat, encode, fit_within, resize};

/// The quality of the JPEG derivatives.
pub const JPEG_QUALITY: u8 = 82;
/// The quality of the lossy WebP derivatives.
pub const WEBP_QUALITY: u8 = 80;
/// The names of the standard derivatives, smallest first.
pub const DERIVATIVE_NAMES: [&str; 4] = ["thumb_256", "w640", "w1080", "w2048"];

const THUMB_SIDE: u32 = 256;
const ANALYSIS_EDGE: u32 = 640;
const LARGEST_EDGE: u32 = 2048;

/// One encoded derivative.
#[derive(Clone, Debug)]
pub struct Made {
    /// One of [`DERIVATIVE_NAMES`].
    pub name: &'static str,
    pub format: OutputFormat,
    pub width: u32,
    pub height: u32,
    /// The encoded file, without metadata.
    pub bytes: Vec<u8>,
}

/// The standard set made by [`make_derivatives`].
#[derive(Clone, Debug)]
pub struct Derivatives {
    /// Every derivative in every format: for each name of
    /// [`DERIVATIVE_NAMES`] (in that order) a JPEG then a WebP.
    pub made: Vec<Made>,
    /// The displayed (oriented) width of the original.
    pub width: u32,
    /// The displayed (oriented) height of the original.
    pub height: u32,
    /// The image fitted within 640 px (alpha flattened onto white), for
    /// placeholders, perceptual hashes and face detection.
    pub analysis: RgbImage,
}

/// Where the time of [`make_derivatives_timed`] went, as measured by its
/// clock.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageTimes {
    /// Inspecting and decoding (at scale), orientation included.
    pub decode: Duration,
    /// Every resize.
    pub resize: Duration,
    /// Every JPEG encode.
    pub jpeg: Duration,
    /// Every WebP encode.
    pub webp: Duration,
}

/// Makes the standard set from one decode: `thumb_256` (the centre square,
/// 256x256, smaller only when the image's short side is), `w640`, `w1080`
/// and `w2048` (fitted within that longest edge, never enlarged), each as a
/// JPEG at [`JPEG_QUALITY`] and a lossy WebP at [`WEBP_QUALITY`], all with
/// the EXIF orientation applied and no metadata.
///
/// A JPEG is decoded at the smallest `n/8` scale that still covers
/// `w2048` and the thumbnail's square; `w2048` is resized from the decoded
/// pixels and each smaller size from the next larger one (every step at
/// least halves nothing finer than the previous step kept, so Lanczos
/// quality holds).
pub fn make_derivatives(bytes: &[u8], limits: &Limits) -> Result<Derivatives, ImagingError> {
    let start = Instant::now();
    make_derivatives_timed(bytes, limits, &|| start.elapsed()).map(|(d, _)| d)
}

/// [`make_derivatives`], also telling how long each stage took by `clock`
/// (a monotonic reading, e.g. the thread's CPU time).
pub fn make_derivatives_timed(
    bytes: &[u8],
    limits: &Limits,
    clock: &dyn Fn() -> Duration,
) -> Result<(Derivatives, StageTimes), ImagingError> {
    let mut times = StageTimes::default();
    let mut mark = clock();
    let mut lap = |slot: &mut Duration| {
        let now = clock();
        *slot += now.saturating_sub(mark);
        mark = now;
    };

    // Longest and shortest edges do not depend on the orientation.
    let enough =
        |w: u32, h: u32| w.max(h) >= LARGEST_EDGE && w.min(h) >= THUMB_SIDE;
    let (decoded, orientation) = decode_unoriented(bytes, limits, &enough)?;
    let (width, height) = (decoded.full_width, decoded.full_height);
    lap(&mut times.decode);

    let largest = resize_oriented(decoded.image, orientation, fit_within(width, height, LARGEST_EDGE))?;
    let (w, h) = fit_within(width, height, 1080);
    let w1080 = resize(&largest, w, h)?;
    let (w, h) = fit_within(width, height, ANALYSIS_EDGE);
    let w640 = resize(&w1080, w, h)?;
    let side = THUMB_SIDE.min(width.min(height)).max(1);
    let thumb_source = [&w640, &w1080, &largest]
        .into_iter()
        .find(|img| img.width().min(img.height()) >= side)
        .unwrap_or(&largest);
    let thumb = resize_region(thumb_source, Some(centre_square(thumb_source)), side, side)?;
    lap(&mut times.resize);

    let sized = [
        (DERIVATIVE_NAMES[0], &thumb),
        (DERIVATIVE_NAMES[1], &w640),
        (DERIVATIVE_NAMES[2], &w1080),
        (DERIVATIVE_NAMES[3], &largest),
    ];
    let mut made = Vec::with_capacity(sized.len() * 2);
    for (name, img) in sized {
        for (format, quality) in [
            (OutputFormat::Jpeg, JPEG_QUALITY),
            (OutputFormat::Webp, WEBP_QUALITY),
        ] {
            let bytes = encode(img, format, quality)?;
            lap(match format {
                OutputFormat::Webp => &mut times.webp,
                _ => &mut times.jpeg,
            });
            made.push(Made {
                name,
                format,
                width: img.width(),
                height: img.height(),
                bytes,
            });
        }
    }
    let analysis = flatten(&w640);
    let derivatives = Derivatives {
        made,
        width,
        height,
        analysis,
    };
    Ok((derivatives, times))
}

/// Resizes stored pixels to `target` (displayed dimensions), then applies
/// the orientation: turning the smaller result is cheaper than turning the
/// decoded pixels.
fn resize_oriented(
    stored: DynamicImage,
    orientation: Option<Orientation>,
    target: (u32, u32),
) -> Result<DynamicImage, ImagingError> {
    let turns = matches!(
        orientation,
        Some(
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::Rotate90FlipH
                | Orientation::Rotate270FlipH
        )
    );
    let (w, h) = if turns { (target.1, target.0) } else { target };
    let mut out = if (stored.width(), stored.height()) == (w, h) {
        stored
    } else {
        resize(&stored, w, h)?
    };
    if let Some(o) = orientation {
        out.apply_orientation(o);
    }
    Ok(out)
}

fn centre_square(img: &DynamicImage) -> Region {
    let (w, h) = (f64::from(img.width()), f64::from(img.height()));
    let side = w.min(h);
    ((w - side) / 2.0, (h - side) / 2.0, side, side)
}

/// Decodes at scale and fits within `edge` (never enlarged): the fast path
/// for a single thumbnail, in the displayed orientation.
pub fn thumbnail(bytes: &[u8], limits: &Limits, edge: u32) -> Result<DynamicImage, ImagingError> {
    let edge = edge.max(1);
    let (decoded, orientation) =
        decode_unoriented(bytes, limits, &|w: u32, h: u32| w.max(h) >= edge)?;
    let target = fit_within(decoded.full_width, decoded.full_height, edge);
    resize_oriented(decoded.image, orientation, target)
}
