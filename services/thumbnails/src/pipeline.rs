//! What the workers do to pixels, without I/O: the standard derivative set
//! with its analysis, and edits (a new original from an old one).

use image::DynamicImage;
use pinhole_imaging::{Limits, OutputFormat};
use pinhole_media::Format;
use pinhole_transform::{EditOp, Rect};
use pinhole_vision::Face;
use sha2::{Digest, Sha256};

/// Version of the derivative set; a backfill remakes older ones.
pub const PIPELINE: u32 = 2;

/// Derivatives made in memory, with what was learned of the picture.
pub struct Output {
    pub made: Vec<pinhole_imaging::Made>,
    /// The rest of the set, made on first request.
    pub later: Vec<pinhole_imaging::Planned>,
    pub width: u32,
    pub height: u32,
    pub analysis: pinhole_vision::Analysis,
}

/// Decodes once and makes the standard set (see [`pinhole_imaging::make_derivatives`])
/// plus placeholder, dominant colour, perceptual hash and faces (boxes in
/// displayed full-size pixels).
pub fn process(bytes: &[u8], max_pixels: u64) -> Result<Output, String> {
    let set = pinhole_imaging::make_derivatives(bytes, &Limits { max_pixels })
        .map_err(|e| e.to_string())?;
    let mut analysis = pinhole_vision::analyze(&set.analysis);
    let scale = f64::from(set.width) / f64::from(set.analysis.width().max(1));
    for face in &mut analysis.faces {
        face.rect = scale_rect(face.rect, scale, set.width, set.height);
    }
    Ok(Output {
        made: set.made,
        later: set.later,
        width: set.width,
        height: set.height,
        analysis,
    })
}

fn scale_rect(r: pinhole_vision::Rect, scale: f64, max_w: u32, max_h: u32) -> pinhole_vision::Rect {
    let s = |v: u32| (f64::from(v) * scale).round() as u32;
    let x = s(r.x).min(max_w.saturating_sub(1));
    let y = s(r.y).min(max_h.saturating_sub(1));
    pinhole_vision::Rect {
        x,
        y,
        width: s(r.width).min(max_w.saturating_sub(x)).max(1),
        height: s(r.height).min(max_h.saturating_sub(y)).max(1),
    }
}

/// The face detector, smart crop and red-eye reduction of `pinhole-vision`,
/// for the transform operations.
pub struct Vision;

fn to_rect(r: pinhole_vision::Rect) -> Rect {
    Rect {
        x: r.x,
        y: r.y,
        width: r.width,
        height: r.height,
    }
}

impl pinhole_transform::Vision for Vision {
    fn faces(&self, img: &image::RgbImage) -> Vec<Rect> {
        pinhole_vision::detect_faces(img)
            .into_iter()
            .map(|f: Face| to_rect(f.rect))
            .collect()
    }

    fn smart_crop(&self, img: &image::RgbImage, width: u32, height: u32) -> (u32, u32) {
        pinhole_vision::smart_crop(img, width, height)
    }

    fn reduce_red_eye(&self, img: &mut image::RgbImage, faces: &[Rect]) -> usize {
        let faces: Vec<pinhole_vision::Rect> = faces
            .iter()
            .map(|r| pinhole_vision::Rect {
                x: r.x,
                y: r.y,
                width: r.width,
                height: r.height,
            })
            .collect();
        pinhole_vision::reduce_red_eye(img, &faces)
    }
}

/// A new original made by an edit.
pub struct EditedOriginal {
    pub bytes: Vec<u8>,
    pub format: Format,
    pub sha256: String,
}

/// Applies `ops` to the original `base` (EXIF orientation applied first, so
/// the new original is upright without a tag). JPEG stays JPEG (quality 92);
/// anything else becomes PNG (lossless, keeps transparency).
pub fn edit(
    base: &[u8],
    ops: &[EditOp],
    watermark: Option<&[u8]>,
    max_pixels: u64,
) -> Result<EditedOriginal, String> {
    let limits = Limits { max_pixels };
    let decoded = pinhole_imaging::decode(base, &limits, None).map_err(|e| e.to_string())?;
    let mark: Option<DynamicImage> = match watermark {
        Some(bytes) => Some(
            pinhole_imaging::decode(bytes, &limits, Some(1024))
                .map_err(|e| format!("the watermark image: {e}"))?
                .image,
        ),
        None => None,
    };
    let out = pinhole_transform::apply_edits(decoded.image, ops, &Vision, mark.as_ref())
        .map_err(|e| e.to_string())?;
    let (format, output) = if decoded.format == Format::Jpeg {
        (Format::Jpeg, OutputFormat::Jpeg)
    } else {
        (Format::Png, OutputFormat::Png)
    };
    let bytes = pinhole_imaging::encode(&out, output, 92).map_err(|e| e.to_string())?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(EditedOriginal {
        bytes,
        format,
        sha256,
    })
}
