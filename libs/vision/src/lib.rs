//! What is in a picture: a ThumbHash placeholder, the dominant colour, a 64-bit
//! perceptual hash, frontal faces (SeetaFace via `rustface`), an attention-based
//! smart crop and red-eye reduction.
//!
//! Inputs are already-oriented [`image::RgbImage`]s, ideally fitted within about
//! 640 px on the longest edge (the caller downsizes); every function also works on
//! larger images, only slower (face detection downsizes on its own).

mod color;
mod crop;
mod faces;
mod hash;
mod resample;

pub use color::dominant_color;
pub use crop::smart_crop;
pub use faces::{MIN_FACE_SIZE, detect_faces, eye_regions, reduce_red_eye};
pub use hash::{hamming, phash, thumbhash};

use serde::{Deserialize, Serialize};

/// An axis-aligned box in image pixel coordinates (top-left origin).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

impl Rect {
    /// Whether the point `(px, py)` lies inside the box.
    pub fn contains(&self, px: u32, py: u32) -> bool {
        px >= self.x
            && py >= self.y
            && u64::from(px) < u64::from(self.x) + u64::from(self.width)
            && u64::from(py) < u64::from(self.y) + u64::from(self.height)
    }

    /// Centre of the box, in pixels.
    pub fn center(&self) -> (f32, f32) {
        (
            self.x as f32 + self.width as f32 / 2.0,
            self.y as f32 + self.height as f32 / 2.0,
        )
    }
}

/// A detected face: its box and the detector's confidence score (higher is surer;
/// reported faces score at least the detection threshold, 2.0 to about 30).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Face {
    /// The face box, serialized flat (`x`, `y`, `width`, `height` beside `score`).
    #[serde(flatten)]
    pub rect: Rect,
    /// Detector confidence.
    pub score: f32,
}

/// Everything [`analyze`] computes for one picture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// ThumbHash placeholder, standard base64 alphabet **with** `=` padding.
    pub thumbhash: String,
    /// Dominant colour as `#rrggbb` (lowercase hex).
    pub dominant_color: String,
    /// DCT perceptual hash as 16 lowercase hex digits (see [`phash`]).
    pub phash: String,
    /// Frontal faces, highest score first.
    pub faces: Vec<Face>,
}

/// Runs every analysis on `img`: placeholder, dominant colour, perceptual hash, faces.
pub fn analyze(img: &image::RgbImage) -> Analysis {
    let [r, g, b] = dominant_color(img);
    Analysis {
        thumbhash: thumbhash(img),
        dominant_color: format!("#{r:02x}{g:02x}{b:02x}"),
        phash: format!("{:016x}", phash(img)),
        faces: detect_faces(img),
    }
}
