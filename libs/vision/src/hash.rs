//! ThumbHash placeholder and DCT perceptual hash.

use base64::Engine as _;
use image::RgbImage;

use crate::resample::{area_resize, fit_within, luma};

/// ThumbHash placeholder of `img` (downscaled to fit 100x100 first), encoded with the
/// standard base64 alphabet **with** `=` padding (what browsers' `atob` expects).
pub fn thumbhash(img: &RgbImage) -> String {
    let (w, h) = fit_within(img.width(), img.height(), 100);
    let rgba: Vec<u8> = area_resize(img, w, h)
        .into_iter()
        .flat_map(|[r, g, b]| [to_u8(r), to_u8(g), to_u8(b), 255])
        .collect();
    let hash = thumbhash::rgba_to_thumb_hash(w as usize, h as usize, &rgba);
    base64::engine::general_purpose::STANDARD.encode(hash)
}

fn to_u8(v: f32) -> u8 {
    v.round().clamp(0.0, 255.0) as u8
}

const PHASH_SIZE: usize = 32;
const PHASH_LOW: usize = 8;

/// 64-bit DCT perceptual hash: the luma is area-averaged to 32x32 (aspect ratio
/// ignored), a 2-D DCT-II is taken, and each of the 8x8 lowest-frequency coefficients
/// (row-major, first one in the most significant bit) sets its bit when it is above
/// their median. Compare hashes with [`hamming`]: resized or recompressed copies
/// stay within a few bits, unrelated pictures differ in about half of them.
pub fn phash(img: &RgbImage) -> u64 {
    let n = PHASH_SIZE;
    let pixels: Vec<f32> = area_resize(img, n as u32, n as u32)
        .into_iter()
        .map(luma)
        .collect();
    // cos_table[u][x] = cos((2x + 1) u pi / 2N) for the low frequencies only.
    let mut cos_table = [[0.0f32; PHASH_SIZE]; PHASH_LOW];
    for (u, row) in cos_table.iter_mut().enumerate() {
        for (x, c) in row.iter_mut().enumerate() {
            *c = ((2 * x + 1) as f32 * u as f32 * std::f32::consts::PI / (2 * n) as f32).cos();
        }
    }
    // Transform the rows, then the columns, keeping the low 8 frequencies of each.
    let mut rows = [[0.0f32; PHASH_LOW]; PHASH_SIZE];
    for (y, out) in rows.iter_mut().enumerate() {
        let line = &pixels[y * n..(y + 1) * n];
        for (u, o) in out.iter_mut().enumerate() {
            *o = line.iter().zip(&cos_table[u]).map(|(p, c)| p * c).sum();
        }
    }
    let mut coeffs = [0.0f32; PHASH_LOW * PHASH_LOW];
    for v in 0..PHASH_LOW {
        for u in 0..PHASH_LOW {
            coeffs[v * PHASH_LOW + u] = (0..n).map(|y| cos_table[v][y] * rows[y][u]).sum();
        }
    }
    let mut sorted = coeffs;
    sorted.sort_by(f32::total_cmp);
    let median = (sorted[31] + sorted[32]) / 2.0;
    coeffs
        .iter()
        .fold(0u64, |hash, &c| (hash << 1) | u64::from(c > median))
}

/// Number of differing bits between two hashes.
pub fn hamming(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hamming_counts_bits() {
        assert_eq!(hamming(0, 0), 0);
        assert_eq!(hamming(0b1011, 0b0001), 2);
        assert_eq!(hamming(u64::MAX, 0), 64);
    }

    #[test]
    fn phash_tells_a_gradient_from_its_mirror() {
        let a = RgbImage::from_fn(64, 48, |x, _| image::Rgb([(x * 4) as u8; 3]));
        let b = RgbImage::from_fn(64, 48, |x, _| image::Rgb([(255 - x * 4) as u8; 3]));
        assert_eq!(phash(&a), phash(&a.clone()));
        assert!(hamming(phash(&a), phash(&b)) >= 8);
    }
}
