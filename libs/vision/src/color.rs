//! Dominant colour: the mode of a smoothed coarse colour histogram.

use image::RgbImage;

use crate::resample::{area_resize, fit_within};

/// Levels per channel of the coarse histogram (16 levels, 4 bits).
const LEVELS: usize = 16;
const SHIFT: u32 = 4;

/// The colour of the most populated colour cluster of `img` (not the mean colour).
///
/// The picture is area-averaged to at most 64 px on its longest edge; colours are
/// binned into a 16x16x16 RGB histogram, each bin is scored with the pixels of its
/// 3x3x3 neighbourhood, and the mean of the pixels around the best bin is returned.
pub fn dominant_color(img: &RgbImage) -> [u8; 3] {
    let (w, h) = fit_within(img.width(), img.height(), 64);
    let pixels = area_resize(img, w, h);

    let mut count = vec![0u32; LEVELS * LEVELS * LEVELS];
    let mut sum = vec![[0.0f32; 3]; LEVELS * LEVELS * LEVELS];
    for p in &pixels {
        let i = bin_index(quantize(p[0]), quantize(p[1]), quantize(p[2]));
        count[i] += 1;
        for c in 0..3 {
            sum[i][c] += p[c];
        }
    }

    let neighbours = |r: usize, g: usize, b: usize| {
        let range = |v: usize| v.saturating_sub(1)..=(v + 1).min(LEVELS - 1);
        range(r).flat_map(move |nr| {
            range(g).flat_map(move |ng| range(b).map(move |nb| bin_index(nr, ng, nb)))
        })
    };

    let mut best: Option<(u32, u32, [usize; 3])> = None;
    for r in 0..LEVELS {
        for g in 0..LEVELS {
            for b in 0..LEVELS {
                let own = count[bin_index(r, g, b)];
                if own == 0 {
                    continue;
                }
                let score: u32 = neighbours(r, g, b).map(|i| count[i]).sum();
                // Ties go to the bin that is itself fuller, then to the first one.
                if best.is_none_or(|(s, o, _)| (score, own) > (s, o)) {
                    best = Some((score, own, [r, g, b]));
                }
            }
        }
    }
    let Some((total, _, [r, g, b])) = best else {
        return [0, 0, 0];
    };
    let mut acc = [0.0f32; 3];
    for i in neighbours(r, g, b) {
        for c in 0..3 {
            acc[c] += sum[i][c];
        }
    }
    acc.map(|v| (v / total as f32).round().clamp(0.0, 255.0) as u8)
}

fn quantize(v: f32) -> usize {
    (v.round().clamp(0.0, 255.0) as usize) >> SHIFT
}

fn bin_index(r: usize, g: usize, b: usize) -> usize {
    (r * LEVELS + g) * LEVELS + b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_colour_wins_over_mean() {
        // 70 % red, 30 % blue: the mean would be purple.
        let img = RgbImage::from_fn(100, 10, |x, _| {
            if x < 70 {
                image::Rgb([220, 30, 30])
            } else {
                image::Rgb([20, 20, 200])
            }
        });
        assert_eq!(dominant_color(&img), [220, 30, 30]);
    }

    #[test]
    fn empty_image_is_black() {
        assert_eq!(dominant_color(&RgbImage::new(0, 0)), [0, 0, 0]);
    }
}
