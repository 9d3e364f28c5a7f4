//! Pixel geometry shared by the options grammar and the operations.

/// A rectangle in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rect {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
}

impl Rect {
    /// The part of `self` inside a `w` x `h` image, or `None` when they do not overlap.
    pub fn clamp_to(self, w: u32, h: u32) -> Option<Rect> {
        if self.x >= w || self.y >= h || self.width == 0 || self.height == 0 {
            return None;
        }
        Some(Rect {
            x: self.x,
            y: self.y,
            width: self.width.min(w - self.x),
            height: self.height.min(h - self.y),
        })
    }

    /// Every coordinate times `k`, rounded.
    pub(crate) fn scale(self, k: f64) -> Rect {
        let f = |v: u32| (f64::from(v) * k).round() as u32;
        Rect {
            x: f(self.x),
            y: f(self.y),
            width: f(self.width),
            height: f(self.height),
        }
    }
}
