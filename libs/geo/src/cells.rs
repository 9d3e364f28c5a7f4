//! The cell grid, and covers of circles and boxes by its cells.
//!
//! **Grid.** Level `L` cuts latitudes [-90, 90] into 2^L rows and longitudes
//! [-180, 180) into 2^L columns (an equirectangular grid): each level splits
//! every cell of the level above into four. A cell spans 180/2^L degrees of
//! latitude and 360/2^L of longitude:
//!
//! | level | latitude × longitude | at the equator |
//! |-------|----------------------|----------------|
//! | 2     | 45° × 90°            | 5,000 × 10,000 km |
//! | 6     | 2.8° × 5.6°          | 310 × 630 km   |
//! | 10    | 0.18° × 0.35°        | 20 × 39 km     |
//! | 14    | 0.011° × 0.022°      | 1.2 × 2.4 km   |
//! | 18    | 0.00069° × 0.0014°   | 76 × 153 m     |
//!
//! A column is narrower away from the equator (by the cosine of the
//! latitude), so near the poles covers are made of coarser cells.
//!
//! **Ids.** `c{L}:{hash}`, e.g. `c15:u09tun` (the Eiffel Tower): the cell's
//! 2L bits, longitude and latitude interleaved from the most significant
//! (longitude first), written five bits to a character in the geohash
//! alphabet, zero-padded. A level-L cell is thus the geohash cell of 2L bits:
//! at levels 5, 10 and 15 the hash is the position's geohash of 2, 4 and 6
//! characters. The level prefix keeps the ids of different levels apart
//! (without it `u0` would name cells of levels 4 and 5).
//!
//! **Covers.** [`cover_circle`] and [`cover_box`] choose the finest level at
//! which at most [`MAX_COVER`] cells hold the whole area: for a circle, the
//! cells of its bounding box ([`circle_bounds`](crate::circle_bounds)) that
//! can reach the circle. Every position in the area has, among its
//! [`cells()`], one of the cover's ids, so a disjunction of the cover's ids as
//! term queries finds every candidate; an exact test
//! ([`haversine_km`], [`GeoBox::contains`]) then drops
//! the ones outside.

use crate::{GeoBox, haversine_km, wrap_lon};

/// The coarsest level indexed: 16 cells in all.
pub const MIN_LEVEL: u8 = 2;
/// The finest level indexed: about 76 m × 153 m at the equator.
pub const MAX_LEVEL: u8 = 18;
/// The most cells in a cover.
pub const MAX_COVER: usize = 16;

// The coarsest level fits in any cover: the last resort of a cover.
const _: () = assert!(1usize << (2 * MIN_LEVEL) <= MAX_COVER);

/// A level's bounding-box cells are listed (to drop those out of reach of a
/// circle) only when there are at most this many.
const LIST_AT_MOST: u64 = MAX_COVER as u64 * 8;

/// Degrees a circle's bounding box is widened by, for rounding in its
/// trigonometry (about 0.1 mm).
const BOX_MARGIN_DEG: f64 = 1e-9;

/// Kilometres a cell may seem out of a circle's reach and still be kept,
/// for rounding (1 mm).
const REACH_MARGIN_KM: f64 = 1e-6;

const ALPHABET: &[u8; 32] = b"0123456789bcdefghjkmnpqrstuvwxyz";

/// The ids of the cells holding `(lat, lon)`, one per level from
/// [`MIN_LEVEL`] to [`MAX_LEVEL`] (coarsest first): the terms to index a
/// position under. Empty when the position is not one (NaN, or a latitude
/// beyond ±90). Longitudes are wrapped: 180 and -180 are the same meridian.
pub fn cells(lat: f64, lon: f64) -> Vec<String> {
    if !valid(lat, lon) {
        return Vec::new();
    }
    let lon = wrap_lon(lon);
    (MIN_LEVEL..=MAX_LEVEL)
        .map(|level| id(level, row(lat, level), col(lon, level)))
        .collect()
}

/// The id of the cell at `level` (clamped to [`MIN_LEVEL`]..=[`MAX_LEVEL`])
/// holding `(lat, lon)`: one of [`cells`], e.g. to group positions by area.
/// `None` when the position is not one.
pub fn cell_at(lat: f64, lon: f64, level: u8) -> Option<String> {
    if !valid(lat, lon) {
        return None;
    }
    let level = level.clamp(MIN_LEVEL, MAX_LEVEL);
    Some(id(level, row(lat, level), col(wrap_lon(lon), level)))
}

/// Cell ids, all of one level and at most [`MAX_COVER`] of them, whose
/// union holds every position within `radius_km` of `(lat, lon)`; the finest
/// level that allows it. A circle around a pole is covered across all
/// longitudes; one across the antimeridian on both sides of it; a radius
/// of thousands of kilometres falls back to coarse cells (down to the 16 of
/// [`MIN_LEVEL`], the whole Earth). A radius of 0 covers the point. Empty
/// when the centre is not a position or the radius is negative or NaN.
pub fn cover_circle(lat: f64, lon: f64, radius_km: f64) -> Vec<String> {
    if !valid(lat, lon) || radius_km.is_nan() || radius_km < 0.0 {
        return Vec::new();
    }
    let b = crate::circle_bounds(lat, lon, radius_km);
    let full = b.min_lon == -180.0 && b.max_lon == 180.0;
    let b = GeoBox {
        min_lat: (b.min_lat - BOX_MARGIN_DEG).max(-90.0),
        max_lat: (b.max_lat + BOX_MARGIN_DEG).min(90.0),
        min_lon: if full {
            -180.0
        } else {
            wrap_lon(b.min_lon - BOX_MARGIN_DEG)
        },
        max_lon: if full {
            180.0
        } else {
            let m = b.max_lon + BOX_MARGIN_DEG;
            if m > 180.0 { m - 360.0 } else { m }
        },
    };
    let centre = (lat, wrap_lon(lon));
    cover(&b, |cell| {
        let (mid, reach) = cell.cap();
        haversine_km(centre, mid) - reach <= radius_km + REACH_MARGIN_KM
    })
}

/// Cell ids, all of one level and at most [`MAX_COVER`] of them, whose
/// union holds every position of `b` (edges included); the finest level
/// that allows it. Latitudes and longitudes beyond their ranges are
/// clamped. Empty when `b` has a NaN or no latitude in range
/// (`min_lat > max_lat`).
pub fn cover_box(b: &GeoBox) -> Vec<String> {
    let [min_lat, max_lat, min_lon, max_lon] = [b.min_lat, b.max_lat, b.min_lon, b.max_lon];
    if [min_lat, max_lat, min_lon, max_lon]
        .iter()
        .any(|v| v.is_nan())
        || min_lat > max_lat
        || min_lat > 90.0
        || max_lat < -90.0
    {
        return Vec::new();
    }
    let b = GeoBox {
        min_lat: min_lat.max(-90.0),
        max_lat: max_lat.min(90.0),
        min_lon: min_lon.clamp(-180.0, 180.0),
        max_lon: max_lon.clamp(-180.0, 180.0),
    };
    cover(&b, |_| true)
}

fn valid(lat: f64, lon: f64) -> bool {
    (-90.0..=90.0).contains(&lat) && lon.is_finite()
}

/// A cell of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cell {
    level: u8,
    /// From the south, 0 to 2^level - 1.
    row: u32,
    /// From -180 eastwards, 0 to 2^level - 1.
    col: u32,
}

impl Cell {
    /// Its south-west and north-east corners.
    fn corners(self) -> ((f64, f64), (f64, f64)) {
        let n = f64::from(1u32 << self.level);
        let (h, w) = (180.0 / n, 360.0 / n);
        let (lat0, lon0) = (
            -90.0 + h * f64::from(self.row),
            -180.0 + w * f64::from(self.col),
        );
        ((lat0, lon0), (lat0 + h, lon0 + w))
    }

    /// Its middle, and the distance from there to its farthest point (a
    /// corner: along a parallel the distance grows with the longitude
    /// difference, along a meridian it is least inside and most at an end,
    /// and a cell is too small to hold its middle's antipode). Every point
    /// of the cell is within that distance of the middle.
    fn cap(self) -> ((f64, f64), f64) {
        let ((lat0, lon0), (lat1, lon1)) = self.corners();
        let mid = ((lat0 + lat1) / 2.0, (lon0 + lon1) / 2.0);
        let reach = [(lat0, lon0), (lat0, lon1), (lat1, lon0), (lat1, lon1)]
            .into_iter()
            .map(|c| haversine_km(mid, c))
            .fold(0.0, f64::max);
        (mid, reach)
    }

    fn id(self) -> String {
        id(self.level, self.row, self.col)
    }
}

/// The row holding latitude `lat` (in [-90, 90]; 90 is in the top row).
fn row(lat: f64, level: u8) -> u32 {
    index((lat + 90.0) / 180.0, level)
}

/// The column holding longitude `lon` (in [-180, 180]; 180 in the last
/// column, though [`cells`] wraps a position's 180 to -180, column 0).
fn col(lon: f64, level: u8) -> u32 {
    index((lon + 180.0) / 360.0, level)
}

/// `fraction` (0 to 1) of the way along 2^level slots: the slot.
fn index(fraction: f64, level: u8) -> u32 {
    let n = 1u32 << level;
    let i = (fraction * f64::from(n)).floor();
    if i <= 0.0 {
        0
    } else if i >= f64::from(n - 1) {
        n - 1
    } else {
        // In range: an exact integer below 2^MAX_LEVEL.
        i as u32
    }
}

fn id(level: u8, row: u32, col: u32) -> String {
    let mut bits: u64 = 0;
    for i in (0..level).rev() {
        bits = (bits << 1) | u64::from((col >> i) & 1);
        bits = (bits << 1) | u64::from((row >> i) & 1);
    }
    let width = 2 * u32::from(level);
    let chars = width.div_ceil(5);
    bits <<= chars * 5 - width;
    let mut s = String::with_capacity(4 + chars as usize);
    s.push('c');
    s.push_str(&level.to_string());
    s.push(':');
    for k in (0..chars).rev() {
        s.push(char::from(ALPHABET[((bits >> (5 * k)) & 31) as usize]));
    }
    s
}

/// The columns of `level` holding longitudes from `min_lon` to `max_lon`
/// (eastwards, across the antimeridian when `min_lon > max_lon`), as sorted,
/// disjoint, inclusive ranges.
fn col_ranges(min_lon: f64, max_lon: f64, level: u8) -> Vec<(u32, u32)> {
    let last = (1u32 << level) - 1;
    let mut ranges = if min_lon <= max_lon {
        vec![(col(min_lon, level), col(max_lon, level))]
    } else {
        vec![(col(min_lon, level), last), (0, col(max_lon, level))]
    };
    // A range reaching 180 reaches -180 too: positions there are in
    // column 0.
    if min_lon > max_lon || max_lon >= 180.0 {
        ranges.push((0, 0));
    }
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (a, z) in ranges {
        match merged.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(z),
            _ => merged.push((a, z)),
        }
    }
    merged
}

/// At the finest level where they are at most [`MAX_COVER`], the cells of
/// `b` (valid, clamped) that `keep` keeps.
fn cover(b: &GeoBox, keep: impl Fn(Cell) -> bool) -> Vec<String> {
    for level in (MIN_LEVEL..=MAX_LEVEL).rev() {
        let (r0, r1) = (row(b.min_lat, level), row(b.max_lat, level));
        let cols = col_ranges(b.min_lon, b.max_lon, level);
        let width: u64 = cols.iter().map(|(a, z)| u64::from(z - a) + 1).sum();
        let total = u64::from(r1 - r0 + 1) * width;
        let last_resort = level == MIN_LEVEL;
        if total > LIST_AT_MOST && !last_resort {
            continue;
        }
        let kept: Vec<Cell> = (r0..=r1)
            .flat_map(|row| {
                cols.iter()
                    .flat_map(|&(a, z)| a..=z)
                    .map(move |col| Cell { level, row, col })
            })
            .filter(|&c| last_resort || keep(c))
            .collect();
        if kept.len() <= MAX_COVER || last_resort {
            return kept.into_iter().map(Cell::id).collect();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::testing::{Rng, destination};

    fn level_of(id: &str) -> u8 {
        id[1..id.find(':').expect("a level")]
            .parse()
            .expect("a number")
    }

    /// Whether one of the position's cells is in the cover.
    fn covered(cover: &HashSet<String>, lat: f64, lon: f64) -> bool {
        cells(lat, lon).iter().any(|c| cover.contains(c))
    }

    /// The area of the cover's cells, km².
    fn area(cover: &[String]) -> f64 {
        let r = crate::EARTH_RADIUS_KM;
        cover
            .iter()
            .map(|id| {
                let level = level_of(id);
                let n = f64::from(1u32 << level);
                let cell = find(id);
                let ((lat0, _), (lat1, _)) = cell.corners();
                r * r
                    * (2.0 * std::f64::consts::PI / n)
                    * (lat1.to_radians().sin() - lat0.to_radians().sin())
            })
            .sum()
    }

    /// The cell an id names (decoded by search: tests only).
    fn find(id: &str) -> Cell {
        let level = level_of(id);
        let hash = &id[id.find(':').expect("colon") + 1..];
        let mut bits: u64 = 0;
        for ch in hash.bytes() {
            let v = ALPHABET.iter().position(|&a| a == ch).expect("alphabet");
            bits = (bits << 5) | v as u64;
        }
        let width = 2 * u32::from(level);
        bits >>= hash.len() as u32 * 5 - width;
        let (mut row, mut col) = (0u32, 0u32);
        for i in (0..level).rev() {
            col = (col << 1) | ((bits >> (2 * u32::from(i) + 1)) & 1) as u32;
            row = (row << 1) | ((bits >> (2 * u32::from(i))) & 1) as u32;
        }
        let c = Cell { level, row, col };
        assert_eq!(c.id(), id);
        c
    }

    #[test]
    fn ids_are_geohash_prefixes_with_a_level() {
        // Wikipedia's example: u4pruydqqvj.
        let (lat, lon) = (57.64911, 10.40744);
        assert_eq!(cell_at(lat, lon, 5).as_deref(), Some("c5:u4"));
        assert_eq!(cell_at(lat, lon, 10).as_deref(), Some("c10:u4pr"));
        assert_eq!(cell_at(lat, lon, 15).as_deref(), Some("c15:u4pruy"));
        let all = cells(lat, lon);
        assert_eq!(all.len(), usize::from(MAX_LEVEL - MIN_LEVEL + 1));
        assert_eq!(all.first().map(String::as_str), Some("c2:u"));
        assert_eq!(all.last().map(String::as_str), Some("c18:u4pruydh"));
        assert_eq!(cell_at(48.8584, 2.2945, 15).as_deref(), Some("c15:u09tun"));
        let unique: HashSet<&String> = all.iter().collect();
        assert_eq!(unique.len(), all.len());
        assert!(all.iter().all(|c| c.len() <= 12), "{all:?}");
        assert!(cells(f64::NAN, 0.0).is_empty() && cells(90.5, 0.0).is_empty());
        // The antimeridian is one meridian; the poles are in the end rows.
        assert_eq!(cells(10.0, 180.0), cells(10.0, -180.0));
        assert_eq!(cells(10.0, 190.0), cells(10.0, -170.0));
        assert_eq!(
            cell_at(90.0, 0.0, 18),
            Some(
                Cell {
                    level: 18,
                    row: (1 << 18) - 1,
                    col: 1 << 17
                }
                .id()
            )
        );
        for id in cells(-33.86, 151.21) {
            assert_eq!(find(&id).id(), id);
        }
    }

    #[test]
    fn the_farthest_point_of_a_cell_is_within_its_reach() {
        let mut rng = Rng::new(11);
        for _ in 0..20_000 {
            let (lat, lon) = rng.position();
            let level = MIN_LEVEL + (rng.next_u64() % u64::from(MAX_LEVEL - MIN_LEVEL + 1)) as u8;
            let cell = Cell {
                level,
                row: row(lat, level),
                col: col(lon, level),
            };
            let (mid, reach) = cell.cap();
            assert!(
                haversine_km(mid, (lat, lon)) <= reach + 1e-9,
                "{cell:?} ({lat}, {lon})"
            );
        }
    }

    /// Random circles, small to huge, anywhere: every point within the
    /// radius (uniform over the disc, and on its rim) has a cell in the
    /// cover, and covers stay within budget.
    #[test]
    fn circles_are_covered() {
        let mut rng = Rng::new(42);
        for i in 0..3_000 {
            let (lat, lon) = match i % 10 {
                // Near a pole.
                0 => (
                    rng.range(85.0, 90.0) * if i % 20 == 0 { 1.0 } else { -1.0 },
                    rng.range(-180.0, 180.0),
                ),
                // Near the antimeridian.
                1 => (rng.range(-80.0, 80.0), 180.0 - rng.range(-1.0, 1.0)),
                _ => rng.position(),
            };
            let radius = 10f64.powf(rng.range(-2.0, 4.4));
            let cover = cover_circle(lat, lon, radius);
            assert!(
                !cover.is_empty() && cover.len() <= MAX_COVER,
                "{} cells",
                cover.len()
            );
            let level = level_of(&cover[0]);
            assert!(cover.iter().all(|c| level_of(c) == level));
            let set: HashSet<String> = cover.iter().cloned().collect();
            for k in 0..200 {
                let bearing = rng.range(0.0, 360.0);
                let d = if k % 4 == 0 {
                    radius * (1.0 - 1e-12)
                } else {
                    radius * rng.unit().sqrt()
                };
                let (plat, plon) = destination(lat, lon, bearing, d);
                if haversine_km((lat, lon), (plat, plon)) > radius {
                    continue;
                }
                assert!(
                    covered(&set, plat, plon),
                    "({plat}, {plon}) is within {radius} km of ({lat}, {lon}) but not in {cover:?}"
                );
            }
        }
    }

    /// Points anywhere on Earth: those within the radius are covered (this
    /// catches a hole that points sampled from the centre could miss).
    #[test]
    fn huge_circles_are_covered() {
        let mut rng = Rng::new(5);
        for _ in 0..200 {
            let (lat, lon) = rng.position();
            let radius = rng.range(2_000.0, 21_000.0);
            let cover = cover_circle(lat, lon, radius);
            assert!(cover.len() <= MAX_COVER);
            let set: HashSet<String> = cover.iter().cloned().collect();
            for _ in 0..500 {
                let (plat, plon) = rng.position();
                if haversine_km((lat, lon), (plat, plon)) <= radius {
                    assert!(
                        covered(&set, plat, plon),
                        "({plat}, {plon}) r {radius} ({lat}, {lon})"
                    );
                }
            }
        }
        assert_eq!(cover_circle(0.0, 0.0, 30_000.0).len(), 16);
    }

    #[test]
    fn poles_and_the_antimeridian() {
        // A circle around the North Pole: every longitude near it.
        let cover: HashSet<String> = cover_circle(89.9, 45.0, 50.0).into_iter().collect();
        for lon in [-180.0, -135.0, -90.0, -1.0, 0.0, 90.0, 179.99, 180.0] {
            assert!(covered(&cover, 89.8, lon), "{lon}");
            assert!(covered(&cover, 90.0, lon), "{lon}");
        }
        // On the South Pole itself.
        let cover: HashSet<String> = cover_circle(-90.0, 0.0, 10.0).into_iter().collect();
        for lon in [-180.0, -60.0, 60.0, 180.0] {
            assert!(covered(&cover, -89.95, lon), "{lon}");
        }
        // Fiji, across the antimeridian: both sides.
        let cover: HashSet<String> = cover_circle(-17.0, 179.95, 20.0).into_iter().collect();
        for lon in [179.9, 180.0, -180.0, -179.9] {
            assert!(covered(&cover, -17.0, lon), "{lon}");
        }
        // Centred exactly on it.
        let cover: HashSet<String> = cover_circle(0.0, -180.0, 5.0).into_iter().collect();
        for lon in [179.97, 180.0, -180.0, -179.97] {
            assert!(covered(&cover, 0.01, lon), "{lon}");
        }
        // A box across it, and one ending on it.
        let b = GeoBox {
            min_lat: -20.0,
            min_lon: 178.0,
            max_lat: -15.0,
            max_lon: -178.0,
        };
        let cover: HashSet<String> = cover_box(&b).into_iter().collect();
        for lon in [178.0, 179.0, 180.0, -180.0, -179.0, -178.0] {
            assert!(covered(&cover, -17.0, lon), "{lon}");
        }
        let b = GeoBox {
            min_lat: 0.0,
            min_lon: 170.0,
            max_lat: 1.0,
            max_lon: 180.0,
        };
        let cover: HashSet<String> = cover_box(&b).into_iter().collect();
        assert!(covered(&cover, 0.5, 180.0) && covered(&cover, 0.5, -180.0));
        // A polar cap box.
        let b = GeoBox {
            min_lat: 80.0,
            min_lon: -180.0,
            max_lat: 90.0,
            max_lon: 180.0,
        };
        let cover: HashSet<String> = cover_box(&b).into_iter().collect();
        for lon in [-180.0, 0.0, 179.9] {
            assert!(covered(&cover, 90.0, lon) && covered(&cover, 80.0, lon));
        }
        assert_eq!(cover_box(&GeoBox::WORLD).len(), 16);
    }

    #[test]
    fn boxes_are_covered() {
        let mut rng = Rng::new(99);
        for _ in 0..3_000 {
            let (a, z) = (rng.range(-90.0, 90.0), rng.range(-90.0, 90.0));
            let height = 10f64.powf(rng.range(-4.0, 2.3));
            let (min_lat, max_lat) = if rng.unit() < 0.5 {
                (a.min(z), a.max(z))
            } else {
                (a, (a + height).min(90.0))
            };
            let min_lon = rng.range(-180.0, 180.0);
            let width = 10f64.powf(rng.range(-4.0, 2.5));
            let max_lon = crate::wrap_lon(min_lon + width);
            let b = GeoBox {
                min_lat,
                min_lon,
                max_lat,
                max_lon,
            };
            let cover = cover_box(&b);
            assert!(!cover.is_empty() && cover.len() <= MAX_COVER, "{b:?}");
            let set: HashSet<String> = cover.iter().cloned().collect();
            for k in 0..100 {
                let lat = match k {
                    0 => min_lat,
                    1 => max_lat,
                    _ => rng.range(min_lat, max_lat),
                };
                let lon = match k {
                    2 => min_lon,
                    3 => max_lon,
                    _ => crate::wrap_lon(min_lon + rng.unit() * width),
                };
                assert!(b.contains(lat, lon), "{b:?} ({lat}, {lon})");
                assert!(
                    covered(&set, lat, lon),
                    "{b:?} ({lat}, {lon}) not in {cover:?}"
                );
            }
        }
        assert!(
            cover_box(&GeoBox {
                min_lat: 1.0,
                max_lat: 0.0,
                ..GeoBox::WORLD
            })
            .is_empty()
        );
    }

    /// How tight covers are: the cover's area over the circle's, by radius.
    /// Printed with --nocapture; bounded so a regression to coarse covers
    /// fails.
    #[test]
    fn covers_stay_small_and_tight() {
        let mut rng = Rng::new(3);
        println!(
            "radius km | level (median) | cells (mean) | cover area / circle area (mean, worst)"
        );
        for radius in [0.1, 0.5, 1.0, 5.0, 25.0, 100.0, 500.0, 2_000.0] {
            let (mut levels, mut sizes, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..300 {
                // Inhabited latitudes.
                let (lat, lon) = (rng.range(-60.0, 70.0), rng.range(-180.0, 180.0));
                let cover = cover_circle(lat, lon, radius);
                let circle = 2.0
                    * std::f64::consts::PI
                    * crate::EARTH_RADIUS_KM.powi(2)
                    * (1.0 - (radius / crate::EARTH_RADIUS_KM).cos());
                levels.push(level_of(&cover[0]));
                sizes.push(cover.len() as f64);
                ratios.push(area(&cover) / circle);
            }
            levels.sort_unstable();
            let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
            let worst = ratios.iter().copied().fold(0.0, f64::max);
            println!(
                "{radius:>9} | {:>14} | {:>12.1} | {:>6.1}, {:>6.1}",
                levels[levels.len() / 2],
                mean(&sizes),
                mean(&ratios),
                worst
            );
            if radius >= 0.5 {
                assert!(
                    mean(&ratios) < 12.0 && worst < 40.0,
                    "radius {radius}: {}, {worst}",
                    mean(&ratios)
                );
            }
        }
    }
}
