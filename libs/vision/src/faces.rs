//! Frontal face detection (SeetaFace via `rustface`) and red-eye reduction.

use std::sync::LazyLock;

use image::RgbImage;
use rustface::{Detector, ImageData, Model};

use crate::resample::{area_resize, fit_within, luma};
use crate::{Face, Rect};

/// SeetaFace frontal model, shipped in the `rustface` crate package and copied here
/// (see `model/README.md`).
static MODEL_BYTES: &[u8] = include_bytes!("../model/seeta_fd_frontal_v1.0.bin");

/// The model, parsed once per process; `None` only if the embedded bytes are corrupt.
static MODEL: LazyLock<Option<Model>> = LazyLock::new(|| rustface::read_model(MODEL_BYTES).ok());

/// Smallest face side the detector finds, in pixels of the detection copy (the input
/// fitted within 800 px): its 40 px window is never applied to an upscaled image.
pub const MIN_FACE_SIZE: u32 = 40;

/// Longest edge the detector works on; larger inputs are area-downscaled first.
const DETECT_MAX_EDGE: u32 = 800;

/// Cascade score a window needs to be reported: SeetaFace's demo value. Raising it
/// trades tilted or dim faces for fewer false positives on textures (none were seen
/// on the test landscapes at 2.0; the astronaut's face scores about 24).
const SCORE_THRESHOLD: f64 = 2.0;

fn new_detector(model: &Model) -> Box<dyn Detector> {
    let mut detector = rustface::create_detector_with_model(model.clone());
    detector.set_min_face_size(MIN_FACE_SIZE);
    detector.set_score_thresh(SCORE_THRESHOLD);
    detector.set_pyramid_scale_factor(0.8);
    detector.set_slide_window_step(4, 4);
    detector
}

/// Frontal faces in `img`, highest score first, boxes clamped to the image.
///
/// Faces smaller than about [`MIN_FACE_SIZE`] px (in a copy fitted within
/// 800 px) or strongly turned away are not found. The embedded model is parsed once
/// per process.
pub fn detect_faces(img: &RgbImage) -> Vec<Face> {
    let (w, h) = img.dimensions();
    let (dw, dh) = fit_within(w, h, DETECT_MAX_EDGE);
    if dw.min(dh) < MIN_FACE_SIZE {
        return Vec::new();
    }
    let Some(model) = MODEL.as_ref() else {
        return Vec::new();
    };
    let gray: Vec<u8> = if (dw, dh) == (w, h) {
        img.pixels()
            .map(|p| luma(p.0.map(f32::from)).round().clamp(0.0, 255.0) as u8)
            .collect()
    } else {
        area_resize(img, dw, dh)
            .into_iter()
            .map(|p| luma(p).round().clamp(0.0, 255.0) as u8)
            .collect()
    };
    // A detector is not `Send` and holds scratch buffers, so each call builds its own
    // from the shared model (a copy of about 1 MB, small next to the detection itself).
    let found = new_detector(model).detect(&ImageData::new(&gray, dw, dh));

    let (sx, sy) = (w as f64 / dw as f64, h as f64 / dh as f64);
    let mut faces: Vec<Face> = found
        .iter()
        .filter_map(|f| {
            let b = f.bbox();
            let x0 = (f64::from(b.x()) * sx).round().clamp(0.0, f64::from(w));
            let y0 = (f64::from(b.y()) * sy).round().clamp(0.0, f64::from(h));
            let x1 = ((f64::from(b.x()) + f64::from(b.width())) * sx)
                .round()
                .clamp(0.0, f64::from(w));
            let y1 = ((f64::from(b.y()) + f64::from(b.height())) * sy)
                .round()
                .clamp(0.0, f64::from(h));
            (x1 > x0 && y1 > y0).then(|| Face {
                rect: Rect {
                    x: x0 as u32,
                    y: y0 as u32,
                    width: (x1 - x0) as u32,
                    height: (y1 - y0) as u32,
                },
                score: f.score() as f32,
            })
        })
        .collect();
    faces.sort_by(|a, b| b.score.total_cmp(&a.score));
    faces
}

/// The two eye search boxes (viewer's left, then right) of a detected face box: the
/// upper-middle band of the face, each half trimmed at the sides. Red-eye reduction
/// only touches pixels inside them.
pub fn eye_regions(face: &Rect) -> [Rect; 2] {
    let frac = |len: u32, f: f32| (len as f32 * f).round() as u32;
    let y = face.y + frac(face.height, 0.18);
    let height = frac(face.height, 0.37).max(1);
    let width = frac(face.width, 0.36).max(1);
    let left = Rect {
        x: face.x + frac(face.width, 0.10),
        y,
        width,
        height,
    };
    let right = Rect {
        x: face.x + frac(face.width, 0.54),
        y,
        width,
        height,
    };
    [left, right]
}

/// Whether a pixel looks like a red-eye pupil: bright red channel far above both
/// others (skin, lips and brown irises stay well below these ratios).
fn is_red_eye(r: u8, g: u8, b: u8) -> bool {
    let (r, g, b) = (i32::from(r), i32::from(g), i32::from(b));
    r >= 70 && r - g.max(b) >= 50 && r >= g + b
}

/// Within the [`eye_regions`] of each face box, replaces the red channel of
/// strongly red pupil pixels by the mean of green and blue (a dark neutral pupil).
/// Returns how many pixels changed; nothing outside the eye regions is touched.
pub fn reduce_red_eye(img: &mut RgbImage, faces: &[Rect]) -> usize {
    let (w, h) = img.dimensions();
    let mut changed = 0;
    for face in faces {
        for eye in eye_regions(face) {
            let x_end = eye.x.saturating_add(eye.width).min(w);
            let y_end = eye.y.saturating_add(eye.height).min(h);
            for y in eye.y.min(y_end)..y_end {
                for x in eye.x.min(x_end)..x_end {
                    let px = img.get_pixel_mut(x, y);
                    let [r, g, b] = px.0;
                    if is_red_eye(r, g, b) {
                        px.0[0] = ((u16::from(g) + u16::from(b)) / 2) as u8;
                        changed += 1;
                    }
                }
            }
        }
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_model_parses() {
        assert!(MODEL.is_some());
    }

    #[test]
    fn tiny_and_flat_images_have_no_faces() {
        assert!(detect_faces(&RgbImage::new(0, 0)).is_empty());
        assert!(detect_faces(&RgbImage::new(30, 500)).is_empty());
        assert!(
            detect_faces(&RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]))).is_empty()
        );
    }

    #[test]
    fn red_pupils_only() {
        assert!(is_red_eye(220, 30, 40));
        assert!(is_red_eye(150, 40, 60));
        assert!(!is_red_eye(200, 150, 120)); // skin
        assert!(!is_red_eye(90, 60, 40)); // brown iris
        assert!(!is_red_eye(30, 20, 20)); // dark pupil
    }

    #[test]
    fn eye_regions_stay_inside_the_face() {
        let face = Rect {
            x: 100,
            y: 50,
            width: 90,
            height: 100,
        };
        for eye in eye_regions(&face) {
            assert!(face.contains(eye.x, eye.y));
            assert!(face.contains(eye.x + eye.width - 1, eye.y + eye.height - 1));
            assert!(eye.y + eye.height <= face.y + face.height * 6 / 10);
        }
    }
}
