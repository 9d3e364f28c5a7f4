//! Synthetic photos, the same on every run: a small PRNG (SplitMix64),
//! Zipf-distributed words, tags, cameras, authors and places.

use chrono::{DateTime, Duration as Days, TimeZone, Utc};
use pinhole_events::images::{ImageRecord, ImageStatus, Location, Visibility};
use pinhole_events::users::AccountCard;
use pinhole_search::analyzer;
use uuid::Uuid;

use crate::words;

/// SplitMix64: small, fast and the same everywhere.
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

    /// Uniform in `lo..=hi`.
    pub fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller).
    pub fn gaussian(&mut self) -> f64 {
        let u = self.unit().max(f64::MIN_POSITIVE);
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    pub fn uuid(&mut self) -> Uuid {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(b).into_uuid()
    }
}

/// Ranks `0..n` drawn with probability proportional to `1 / (rank + 1)^s`.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for k in 1..=n {
            sum += 1.0 / (k as f64).powf(s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        Self { cdf }
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        let u = rng.unit();
        self.cdf.partition_point(|&c| c < u).min(self.cdf.len() - 1)
    }
}

fn unique_words(list: &'static str) -> Vec<&'static str> {
    let mut seen = std::collections::HashSet::new();
    list.split_whitespace()
        .filter(|w| seen.insert(*w))
        .collect()
}

/// A city photos cluster around.
pub struct City {
    pub lat: f64,
    pub lon: f64,
}

/// Everything photos are drawn from.
pub struct Vocab {
    pub english: Vec<&'static str>,
    english_zipf: Zipf,
    /// Where content words start in `english` (before: function words).
    pub content_from: usize,
    pub chinese: Vec<&'static str>,
    chinese_zipf: Zipf,
    pub tags: Vec<String>,
    tag_zipf: Zipf,
    camera_zipf: Zipf,
    pub users: Vec<AccountCard>,
    user_zipf: Zipf,
    pub cities: Vec<City>,
    city_zipf: Zipf,
}

/// English tags besides the popular head and single words: two caption
/// words run together (`goldenhour`), as people write them.
fn compound_tags(english: &[&str], from: usize, want: usize) -> Vec<String> {
    let content = &english[from..];
    let mut out = Vec::with_capacity(want);
    'outer: for i in 0..content.len() {
        for j in 0..=i {
            if out.len() == want {
                break 'outer;
            }
            if i != j {
                out.push(format!("{}{}", content[j], content[i]));
            }
        }
    }
    out
}

impl Vocab {
    pub fn new(users: usize) -> Self {
        let english = unique_words(words::ENGLISH);
        let content_from = english.iter().position(|w| *w == "light").unwrap_or(0);
        // Only words jieba keeps whole, so that the Chinese query words are
        // the document's words for both engines.
        let chinese: Vec<&str> = unique_words(words::CHINESE)
            .into_iter()
            .filter(|w| analyzer::terms(w).len() == 1)
            .collect();
        let mut tags: Vec<String> = unique_words(words::TAG_HEAD)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut seen: std::collections::HashSet<String> = tags.iter().cloned().collect();
        for w in &english[content_from..] {
            if seen.insert((*w).to_owned()) {
                tags.push((*w).to_owned());
            }
        }
        for w in &chinese {
            if seen.insert((*w).to_owned()) {
                tags.push((*w).to_owned());
            }
        }
        for t in compound_tags(&english, content_from, 5000) {
            if tags.len() >= 5000 {
                break;
            }
            if seen.insert(t.clone()) {
                tags.push(t);
            }
        }
        let given = unique_words(words::GIVEN);
        let family = unique_words(words::FAMILY);
        let mut rng = Rng::new(0x05E7_0001);
        let users: Vec<AccountCard> = (0..users)
            .map(|i| {
                let g = given[rng.between(0, given.len() - 1)];
                let f = family[rng.between(0, family.len() - 1)];
                AccountCard {
                    user_id: rng.uuid(),
                    username: format!("{}{}{i}", g.to_lowercase(), f.to_lowercase()),
                    display_name: rng.chance(0.8).then(|| format!("{g} {f}")),
                    avatar_image_id: None,
                    is_private: false,
                }
            })
            .collect();
        let cities: Vec<City> = words::CITIES
            .iter()
            .map(|(_, lat, lon)| City {
                lat: *lat,
                lon: *lon,
            })
            .collect();
        Self {
            english_zipf: Zipf::new(english.len(), 1.0),
            english,
            content_from,
            chinese_zipf: Zipf::new(chinese.len(), 0.9),
            chinese,
            tag_zipf: Zipf::new(tags.len(), 1.05),
            tags,
            camera_zipf: Zipf::new(words::CAMERAS.len(), 1.0),
            user_zipf: Zipf::new(users.len(), 0.8),
            users,
            city_zipf: Zipf::new(cities.len(), 0.9),
            cities,
        }
    }

    fn english_text(&self, rng: &mut Rng, n: usize, sentence: bool) -> String {
        let mut s = String::new();
        let mut capital = true;
        for i in 0..n {
            let w = self.english[self.english_zipf.sample(rng)];
            if i > 0 {
                if sentence && rng.chance(0.07) {
                    s.push_str(". ");
                    capital = true;
                } else if sentence && rng.chance(0.05) {
                    s.push_str(", ");
                } else {
                    s.push(' ');
                }
            }
            if capital {
                let mut c = w.chars();
                if let Some(f) = c.next() {
                    s.extend(f.to_uppercase());
                    s.push_str(c.as_str());
                }
                capital = !sentence;
            } else {
                s.push_str(w);
            }
        }
        if sentence {
            s.push('.');
        }
        s
    }

    fn chinese_text(&self, rng: &mut Rng, n: usize, sentence: bool) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                if sentence && rng.chance(0.12) {
                    s.push('，');
                } else if rng.chance(0.3) {
                    s.push_str(words::CHINESE_GLUE[rng.between(0, words::CHINESE_GLUE.len() - 1)]);
                }
            }
            s.push_str(self.chinese[self.chinese_zipf.sample(rng)]);
        }
        if sentence {
            s.push('。');
        }
        s
    }

    pub fn english_words(
        &self,
        rng: &mut Rng,
        ranks: std::ops::Range<usize>,
        n: usize,
    ) -> Vec<&'static str> {
        let content = &self.english[self.content_from..];
        let hi = ranks.end.min(content.len()) - 1;
        (0..n)
            .map(|_| content[rng.between(ranks.start, hi)])
            .collect()
    }

    pub fn chinese_words(
        &self,
        rng: &mut Rng,
        ranks: std::ops::Range<usize>,
        n: usize,
    ) -> Vec<&'static str> {
        let hi = ranks.end.min(self.chinese.len()) - 1;
        (0..n)
            .map(|_| self.chinese[rng.between(ranks.start, hi)])
            .collect()
    }

    pub fn city(&self, rng: &mut Rng) -> &City {
        &self.cities[rng.between(0, self.cities.len() - 1)]
    }
}

/// One synthetic photo.
pub struct Photo {
    pub record: ImageRecord,
    /// Index into [`Vocab::users`].
    pub author: usize,
    pub likes: u64,
    /// Title and description as words separated by spaces (jieba's
    /// segmentation), for Chinese photos: what PostgreSQL indexes.
    pub segmented: Option<(Option<String>, Option<String>)>,
}

/// The first day photos are uploaded on; they span five years from it.
fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
}

/// Tags per photo: 0 to 6, fewer more often.
const TAG_COUNTS: [f64; 7] = [0.25, 0.2, 0.17, 0.13, 0.1, 0.08, 0.07];

/// The next photo of the stream `rng` draws.
pub fn photo(v: &Vocab, rng: &mut Rng) -> Photo {
    let chinese = rng.chance(0.2);
    // Titles of 2 to 8 words (Chinese: 2 to 6, longer words), descriptions
    // of none (15%) or 1 to 40 words (Chinese: 30).
    let (title_words, description_words) = if chinese { (6, 30) } else { (8, 40) };
    let n = rng.between(2, title_words);
    let d = rng.chance(0.85).then(|| rng.between(1, description_words));
    let (title, description) = if chinese {
        (
            v.chinese_text(rng, n, false),
            d.map(|d| v.chinese_text(rng, d, true)),
        )
    } else {
        (
            v.english_text(rng, n, false),
            d.map(|d| v.english_text(rng, d, true)),
        )
    };
    let mut k = 0;
    let mut u = rng.unit();
    while k < TAG_COUNTS.len() - 1 && u >= TAG_COUNTS[k] {
        u -= TAG_COUNTS[k];
        k += 1;
    }
    let mut tags: Vec<String> = Vec::with_capacity(k);
    for _ in 0..k {
        let t = &v.tags[v.tag_zipf.sample(rng)];
        if !tags.contains(t) {
            tags.push(t.clone());
        }
    }
    let camera = rng
        .chance(0.9)
        .then(|| words::CAMERAS[v.camera_zipf.sample(rng)].to_owned());
    let location = rng.chance(0.7).then(|| {
        let c = &v.cities[v.city_zipf.sample(rng)];
        // Most photos in town, some in the country around it.
        let sigma_km = if rng.chance(0.85) { 6.0 } else { 60.0 };
        let lat = (c.lat + rng.gaussian() * sigma_km / 111.2).clamp(-89.9, 89.9);
        let dlon = rng.gaussian() * sigma_km / (111.2 * lat.to_radians().cos());
        let lon = (c.lon + dlon + 180.0).rem_euclid(360.0) - 180.0;
        let place = pinhole_geo::place_of(lat, lon);
        Location {
            lat,
            lon,
            place_name: None,
            city: place.as_ref().map(|p| p.city.clone()),
            region: place.as_ref().and_then(|p| p.region.clone()),
            country: place.as_ref().map(|p| p.country.clone()),
            country_code: place.map(|p| p.country_code),
        }
    });
    let created = epoch() + Days::seconds((rng.unit() * 5.0 * 365.25 * 86_400.0) as i64);
    let taken_at = rng
        .chance(0.85)
        .then(|| created - Days::seconds((-rng.unit().max(1e-9).ln() * 3.0 * 86_400.0) as i64));
    let author = v.user_zipf.sample(rng);
    let likes = (rng.gaussian() * 1.5 + 1.0).exp().floor() as u64;
    let mut sha = String::with_capacity(64);
    for _ in 0..4 {
        sha.push_str(&format!("{:016x}", rng.next_u64()));
    }
    let (width, height) = if rng.chance(0.6) {
        (4032, 3024)
    } else {
        (3024, 4032)
    };
    let segmented = chinese.then(|| {
        let seg = |s: &str| analyzer::terms(s).join(" ");
        (Some(seg(&title)), description.as_deref().map(seg))
    });
    let record = ImageRecord {
        image_id: rng.uuid(),
        owner_id: v.users[author].user_id,
        sha256: sha,
        format: "jpeg".to_owned(),
        width,
        height,
        size: rng.between(800_000, 9_000_000) as i64,
        title: Some(title),
        description,
        alt_text: None,
        tags,
        visibility: Visibility::Public,
        location,
        status: ImageStatus::Ready,
        created_at: created,
        updated_at: created,
        version: 1,
        derivatives: Vec::new(),
        camera,
        taken_at,
        analysis: Some(serde_json::json!({ "phash": format!("{:016x}", rng.next_u64()) })),
    };
    Photo {
        record,
        author,
        likes,
        segmented,
    }
}
