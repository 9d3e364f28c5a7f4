//! Geography for an index that knows only terms, and names for positions.
//!
//! **Cells.** A search index without geo queries (tantivy) finds photos near
//! a place this way: each photo is indexed with the ids of the grid cells
//! that hold its position, one per level ([`cells()`]); a query area (a circle,
//! [`cover_circle`], or a box, [`cover_box`]) is covered by at most
//! [`MAX_COVER`] cells of one level, whose ids make a disjunction of term
//! queries; the candidates it finds are then filtered exactly with
//! [`haversine_km`] or [`GeoBox::contains`]. See [`cells`](mod@cells) for the
//! grid.
//!
//! **Places.** [`place_of`] names the nearest populated place of a position
//! (city, region, country) from GeoNames data shipped with the
//! `reverse_geocoder` crate, offline.
//!
//! Positions are `(lat, lon)` in degrees: latitude -90 (south) to 90,
//! longitude -180 (west) to 180.

pub mod cells;
mod countries;
mod places;

pub use cells::{MAX_COVER, MAX_LEVEL, MIN_LEVEL, cell_at, cells, cover_box, cover_circle};
pub use countries::country_name;
pub use places::{MAX_PLACE_DISTANCE_KM, Place, place_of, preload_places};

/// The mean Earth radius (IUGG), in kilometres.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// The great-circle distance between two positions `(lat, lon)` in degrees,
/// in kilometres, on a sphere of radius [`EARTH_RADIUS_KM`] (within 0.5% of
/// the ellipsoid's distance). NaN if either position has a NaN.
pub fn haversine_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (lat1, lat2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = lat2 - lat1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin()
}

/// `lon` brought into [-180, 180) (180 is -180: the same meridian).
pub(crate) fn wrap_lon(lon: f64) -> f64 {
    if (-180.0..180.0).contains(&lon) {
        lon
    } else {
        (lon + 180.0).rem_euclid(360.0) - 180.0
    }
}

/// A latitude/longitude box, edges included.
///
/// `min_lon > max_lon` means the box crosses the antimeridian: it spans from
/// `min_lon` east to 180 and on from -180 to `max_lon`. The whole band of
/// latitudes is `min_lon = -180, max_lon = 180`. Longitudes 180 and -180 are
/// the same meridian: a box touching either holds the points on it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeoBox {
    /// Southern edge, degrees.
    pub min_lat: f64,
    /// Western edge, degrees.
    pub min_lon: f64,
    /// Northern edge, degrees.
    pub max_lat: f64,
    /// Eastern edge, degrees; less than `min_lon` across the antimeridian.
    pub max_lon: f64,
}

impl GeoBox {
    /// The whole Earth.
    pub const WORLD: GeoBox = GeoBox {
        min_lat: -90.0,
        min_lon: -180.0,
        max_lat: 90.0,
        max_lon: 180.0,
    };

    /// Whether the box spans the antimeridian (`min_lon > max_lon`).
    pub fn crosses_antimeridian(&self) -> bool {
        self.min_lon > self.max_lon
    }

    /// Whether `(lat, lon)` lies in the box, edges included. A longitude
    /// outside [-180, 180] is wrapped first.
    pub fn contains(&self, lat: f64, lon: f64) -> bool {
        if !(lat >= self.min_lat && lat <= self.max_lat) {
            return false;
        }
        let lon = wrap_lon(lon);
        // -180 is also 180.
        self.contains_lon(lon) || (lon == -180.0 && self.contains_lon(180.0))
    }

    fn contains_lon(&self, lon: f64) -> bool {
        if self.crosses_antimeridian() {
            lon >= self.min_lon || lon <= self.max_lon
        } else {
            lon >= self.min_lon && lon <= self.max_lon
        }
    }
}

/// The smallest latitude/longitude box holding every point within
/// `radius_km` of `(lat, lon)`: one box, crossing the antimeridian when the
/// circle does ([`GeoBox`] says so with `min_lon > max_lon`), and spanning
/// all longitudes when the circle holds a pole. [`GeoBox::WORLD`] for a
/// radius of half the circumference or more. For a quick pre-filter (a
/// range query on stored lat/lon); [`cover_circle`] uses it.
///
/// A negative or NaN radius is treated as 0.
pub fn circle_bounds(lat: f64, lon: f64, radius_km: f64) -> GeoBox {
    let lat = lat.clamp(-90.0, 90.0);
    let lon = wrap_lon(lon);
    let d = radius_km.max(0.0) / EARTH_RADIUS_KM; // angular radius, radians
    if d >= std::f64::consts::PI {
        return GeoBox::WORLD;
    }
    let d_deg = d.to_degrees();
    let (min_lat, max_lat) = (lat - d_deg, lat + d_deg);
    if min_lat <= -90.0 || max_lat >= 90.0 {
        // A pole is in the circle: every meridian crosses it.
        return GeoBox {
            min_lat: min_lat.max(-90.0),
            min_lon: -180.0,
            max_lat: max_lat.min(90.0),
            max_lon: 180.0,
        };
    }
    // The widest longitude difference on the circle (its tangent meridians).
    let ratio = d.sin() / lat.to_radians().cos();
    let dlon = if ratio >= 1.0 {
        180.0
    } else {
        ratio.asin().to_degrees()
    };
    if dlon >= 180.0 {
        return GeoBox {
            min_lat,
            min_lon: -180.0,
            max_lat,
            max_lon: 180.0,
        };
    }
    let (mut min_lon, mut max_lon) = (lon - dlon, lon + dlon);
    if min_lon < -180.0 {
        min_lon += 360.0;
    }
    if max_lon > 180.0 {
        max_lon -= 360.0;
    }
    GeoBox {
        min_lat,
        min_lon,
        max_lat,
        max_lon,
    }
}

#[cfg(test)]
pub(crate) mod testing {
    /// SplitMix64: a small deterministic generator for property tests.
    pub struct Rng(u64);

    impl Rng {
        pub fn new(seed: u64) -> Self {
            Self(seed)
        }

        pub fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        pub fn unit(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }

        /// Uniform in [lo, hi).
        pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
            lo + (hi - lo) * self.unit()
        }

        /// A position uniform on the sphere.
        pub fn position(&mut self) -> (f64, f64) {
            let lat = (self.range(-1.0, 1.0)).asin().to_degrees();
            (lat, self.range(-180.0, 180.0))
        }
    }

    /// The point `distance_km` from `(lat, lon)` going `bearing` degrees
    /// (clockwise from north).
    pub fn destination(lat: f64, lon: f64, bearing: f64, distance_km: f64) -> (f64, f64) {
        let (phi, lambda) = (lat.to_radians(), lon.to_radians());
        let (theta, d) = (bearing.to_radians(), distance_km / super::EARTH_RADIUS_KM);
        let phi2 = (phi.sin() * d.cos() + phi.cos() * d.sin() * theta.cos())
            .clamp(-1.0, 1.0)
            .asin();
        let lambda2 =
            lambda + (theta.sin() * d.sin() * phi.cos()).atan2(d.cos() - phi.sin() * phi2.sin());
        (phi2.to_degrees(), super::wrap_lon(lambda2.to_degrees()))
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Rng, destination};
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        let paris = (48.8566, 2.3522);
        let london = (51.5074, -0.1278);
        let d = haversine_km(paris, london);
        assert!((d - 343.5).abs() < 1.0, "{d}");
        // A quarter of a meridian.
        let q = haversine_km((0.0, 0.0), (90.0, 0.0));
        assert!((q - EARTH_RADIUS_KM * std::f64::consts::FRAC_PI_2).abs() < 1e-9);
        // Across the antimeridian, the short way.
        let d = haversine_km((0.0, 179.5), (0.0, -179.5));
        assert!((d - 111.2).abs() < 0.1, "{d}");
        // Antipodes.
        let d = haversine_km((10.0, 20.0), (-10.0, -160.0));
        assert!(
            (d - EARTH_RADIUS_KM * std::f64::consts::PI).abs() < 1e-3,
            "{d}"
        );
        assert_eq!(haversine_km(paris, paris), 0.0);
    }

    #[test]
    fn boxes_contain_their_points() {
        let b = GeoBox {
            min_lat: 40.0,
            min_lon: 170.0,
            max_lat: 50.0,
            max_lon: -170.0,
        };
        assert!(b.crosses_antimeridian());
        for lon in [170.0, 175.0, 180.0, -180.0, -175.0, -170.0, 540.0] {
            assert!(b.contains(45.0, lon), "{lon}");
        }
        for lon in [169.9, -169.9, 0.0] {
            assert!(!b.contains(45.0, lon), "{lon}");
        }
        assert!(!b.contains(39.9, 175.0) && !b.contains(50.1, 175.0));
        assert!(!b.contains(f64::NAN, 175.0) && !b.contains(45.0, f64::NAN));

        let east = GeoBox {
            min_lat: 0.0,
            min_lon: 170.0,
            max_lat: 10.0,
            max_lon: 180.0,
        };
        assert!(east.contains(5.0, -180.0) && east.contains(5.0, 180.0));
        let west = GeoBox {
            min_lat: 0.0,
            min_lon: -180.0,
            max_lat: 10.0,
            max_lon: -170.0,
        };
        assert!(west.contains(5.0, 180.0) && west.contains(5.0, -180.0));
        assert!(GeoBox::WORLD.contains(90.0, 0.0) && GeoBox::WORLD.contains(-90.0, 180.0));
    }

    #[test]
    fn circle_bounds_hold_the_circle() {
        let mut rng = Rng::new(7);
        for _ in 0..20_000 {
            let (lat, lon) = rng.position();
            let radius = 10f64.powf(rng.range(-1.0, 4.3));
            let b = circle_bounds(lat, lon, radius);
            let (plat, plon) = destination(lat, lon, rng.range(0.0, 360.0), radius * rng.unit());
            // Within a margin for rounding (cover_circle widens by it).
            let m = 1e-9;
            let wider = GeoBox {
                min_lat: b.min_lat - m,
                max_lat: b.max_lat + m,
                min_lon: b.min_lon - m,
                max_lon: b.max_lon + m,
            };
            assert!(
                wider.contains(plat, plon) || (b.min_lon == -180.0 && b.max_lon == 180.0),
                "{b:?} misses ({plat}, {plon}) of ({lat}, {lon}) r {radius}"
            );
        }
        // Around a pole, every longitude.
        let polar = circle_bounds(89.5, 10.0, 100.0);
        assert_eq!(
            (polar.min_lon, polar.max_lon, polar.max_lat),
            (-180.0, 180.0, 90.0)
        );
        // Across the antimeridian.
        let fiji = circle_bounds(-17.7, 179.9, 50.0);
        assert!(fiji.crosses_antimeridian(), "{fiji:?}");
        assert_eq!(circle_bounds(0.0, 0.0, 30_000.0), GeoBox::WORLD);
    }
}
