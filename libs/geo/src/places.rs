//! Reverse geocoding, offline: the nearest populated place of a position.
//!
//! The places are the `reverse_geocoder` crate's: GeoNames' `cities1000`
//! extract (about 144,000 places of 1,000 people or more, names in ASCII
//! such as `Zurich` or `Sao Paulo`, each with its first- and second-level
//! administrative division and country code), built into the binary and
//! read into a k-d tree on first use (see [`preload_places`]). GeoNames data
//! is licensed CC BY 4.0: the README credits it.

use std::sync::OnceLock;

use reverse_geocoder::ReverseGeocoder;

use crate::{country_name, haversine_km, wrap_lon};

/// Farther than this from the nearest place of the data, a position has no
/// place: at sea, on ice caps, in deserts and wilderness. Nearer, a photo
/// is named after its town, or the town that serves the countryside it was
/// taken in (Old Faithful: West Yellowstone, 31 km). Farther, the nearest
/// town misleads, even about the country, since the data has no borders
/// (Torres del Paine, Chile: Rio Turbio, Argentina, 75 km; the Serengeti:
/// Mugumu, 55 km).
pub const MAX_PLACE_DISTANCE_KM: f64 = 50.0;

/// The populated place nearest to a position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The town or city, e.g. `Paris`.
    pub city: String,
    /// Its first-level administrative division (state, region, province),
    /// e.g. `Ile-de-France`, when the data has one.
    pub region: Option<String>,
    /// The country's English name, e.g. `France` (the code when the code
    /// names no country known here).
    pub country: String,
    /// ISO 3166-1 alpha-2, e.g. `FR`.
    pub country_code: String,
}

impl Place {
    /// `City, Region, Country`, leaving out a region that is missing or
    /// repeats the city (`Berlin, Germany`, not `Berlin, Berlin, Germany`).
    pub fn label(&self) -> String {
        match &self.region {
            Some(region) if !region.eq_ignore_ascii_case(&self.city) => {
                format!("{}, {region}, {}", self.city, self.country)
            }
            _ => format!("{}, {}", self.city, self.country),
        }
    }
}

static GEOCODER: OnceLock<ReverseGeocoder> = OnceLock::new();

fn geocoder() -> &'static ReverseGeocoder {
    GEOCODER.get_or_init(ReverseGeocoder::new)
}

/// Reads the places now (about a tenth of a second, tens of megabytes)
/// instead of on the first [`place_of`], which would wait for it. Blocking:
/// from async code, run it with `spawn_blocking` at start-up.
pub fn preload_places() {
    geocoder();
}

/// The populated place nearest to `(lat, lon)` (degrees; longitudes
/// wrapped), or `None` when it is farther than [`MAX_PLACE_DISTANCE_KM`] or
/// the position is not one (NaN, latitude beyond ±90).
///
/// The data are read once, on the first call or [`preload_places`], from
/// any thread; later calls take microseconds and are deterministic (the
/// same data for a given build).
pub fn place_of(lat: f64, lon: f64) -> Option<Place> {
    if !((-90.0..=90.0).contains(&lat) && lon.is_finite()) {
        return None;
    }
    let lon = wrap_lon(lon);
    let record = geocoder().search((lat, lon)).record;
    if haversine_km((lat, lon), (record.lat, record.lon)) > MAX_PLACE_DISTANCE_KM {
        return None;
    }
    let nonempty = |s: &str| {
        let s = s.trim();
        (!s.is_empty()).then(|| s.to_owned())
    };
    let country_code = record.cc.trim().to_ascii_uppercase();
    Some(Place {
        city: record.name.trim().to_owned(),
        region: nonempty(&record.admin1),
        country: country_name(&country_code)
            .map(str::to_owned)
            .unwrap_or_else(|| country_code.clone()),
        country_code,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Instant;

    use super::*;

    /// Resident memory, kB (Linux).
    fn rss_kb() -> Option<u64> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    /// Known places; timings are printed (run with --nocapture), not
    /// asserted.
    #[test]
    fn names_places_and_measures_the_cost() {
        let before = rss_kb();
        let start = Instant::now();
        preload_places();
        let load = start.elapsed();
        let after = rss_kb();

        // The Louvre. (The nearest place's point is not the town the
        // position is in: the Eiffel Tower, 4 km from the point of Paris and
        // 3.4 km from that of Neuilly-sur-Seine, is named after the latter.)
        let paris = place_of(48.8606, 2.3376).expect("Paris");
        assert_eq!(paris.city, "Paris");
        assert_eq!(paris.region.as_deref(), Some("Ile-de-France"));
        assert_eq!(
            (paris.country.as_str(), paris.country_code.as_str()),
            ("France", "FR")
        );
        assert_eq!(paris.label(), "Paris, Ile-de-France, France");

        let manhattan = place_of(40.7831, -73.9712).expect("Manhattan");
        assert_eq!(manhattan.city, "Manhattan");
        assert_eq!(manhattan.country, "United States");
        assert_eq!(manhattan.region.as_deref(), Some("New York"));

        let sydney = place_of(-33.8568, 151.2153).expect("Sydney");
        assert_eq!(
            (sydney.country_code.as_str(), sydney.country.as_str()),
            ("AU", "Australia")
        );
        assert_eq!(sydney.region.as_deref(), Some("New South Wales"));

        // Across the antimeridian: Egvekinot, Chukotka, at 179.12° W, is the
        // nearest place from either side.
        for lon in [179.9, 180.0, -180.0, -179.5, 180.88] {
            let chukotka = place_of(66.32, lon).expect("Egvekinot");
            assert_eq!(chukotka.city, "Egvekinot", "{lon}");
            assert_eq!(chukotka.country, "Russia");
        }
        // Nowhere near a town.
        for (what, lat, lon) in [
            ("mid-Atlantic", 30.0, -40.0),
            ("mid-Pacific", 0.0, -150.0),
            ("South Pole", -90.0, 0.0),
            ("North Pole", 90.0, 0.0),
        ] {
            assert_eq!(place_of(lat, lon), None, "{what}");
        }
        assert_eq!(place_of(f64::NAN, 0.0), None);
        assert_eq!(place_of(0.0, f64::INFINITY), None);
        assert_eq!(place_of(91.0, 0.0), None);

        let n = 100_000u32;
        let start = Instant::now();
        let mut found = 0;
        for i in 0..n {
            let lat = -60.0 + 130.0 * f64::from(i) / f64::from(n);
            let lon = -180.0 + 360.0 * f64::from(i.wrapping_mul(7919) % n) / f64::from(n);
            found += usize::from(place_of(lat, lon).is_some());
        }
        let lookup = start.elapsed() / n;
        println!(
            "places: loaded in {load:?} (resident memory {} kB more); one lookup {lookup:?} \
             ({found} of {n} scattered positions within {MAX_PLACE_DISTANCE_KM} km of a place)",
            after.zip(before).map_or(0, |(a, b)| a.saturating_sub(b)),
        );
    }

    /// Every country code met on a grid over the land has a name.
    #[test]
    fn every_country_met_has_a_name() {
        let mut unnamed = BTreeSet::new();
        let mut codes = BTreeSet::new();
        for lat in (-56..=72).map(|l| f64::from(l) + 0.25) {
            for lon in (-720..720).map(|l| f64::from(l) / 4.0) {
                if let Some(p) = place_of(lat, lon) {
                    if p.country == p.country_code {
                        unnamed.insert(p.country_code.clone());
                    }
                    codes.insert(p.country_code);
                }
            }
        }
        assert!(unnamed.is_empty(), "no name for {unnamed:?}");
        assert!(codes.len() > 200, "only {} countries met", codes.len());
    }

    #[test]
    fn labels_skip_missing_and_repeated_regions() {
        let place = |region: Option<&str>| Place {
            city: "Berlin".into(),
            region: region.map(str::to_owned),
            country: "Germany".into(),
            country_code: "DE".into(),
        };
        assert_eq!(place(Some("Berlin")).label(), "Berlin, Germany");
        assert_eq!(place(None).label(), "Berlin, Germany");
        assert_eq!(
            place(Some("Land Berlin")).label(),
            "Berlin, Land Berlin, Germany"
        );
    }
}
