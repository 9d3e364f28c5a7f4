//! Values parsed at the edge: visibility, tags and hashtags, locations, and
//! the metadata an upload carries (multipart fields or tus metadata).

use std::collections::BTreeMap;

use pinhole_http::ApiError;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

pub const MAX_TITLE: usize = 200;
pub const MAX_DESCRIPTION: usize = 5000;
pub const MAX_ALT_TEXT: usize = 1500;
pub const MAX_PLACE_NAME: usize = 200;
pub const MAX_TAGS: usize = 30;
pub const MAX_TAG: usize = 64;

/// Who may see an image (`images.visibility`, mapped by the ORM: read once
/// into this type, never parsed by hand).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    ToSchema,
    sea_orm::EnumIter,
    sea_orm::DeriveActiveEnum,
)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)"
)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Everyone who may see the owner's account.
    #[sea_orm(string_value = "public")]
    Public,
    /// The owner's approved followers.
    #[sea_orm(string_value = "followers")]
    Followers,
    /// The owner alone.
    #[sea_orm(string_value = "private")]
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Followers => "followers",
            Self::Private => "private",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "public" => Ok(Self::Public),
            "followers" => Ok(Self::Followers),
            "private" => Ok(Self::Private),
            other => Err(format!(
                "`{other}` is not a visibility: use public, followers or private"
            )),
        }
    }
}

impl From<Visibility> for pinhole_events::images::Visibility {
    fn from(v: Visibility) -> Self {
        match v {
            Visibility::Public => Self::Public,
            Visibility::Followers => Self::Followers,
            Visibility::Private => Self::Private,
        }
    }
}

fn tag_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// One tag: a leading `#` dropped, lower-cased, letters, digits and `_`.
pub fn parse_tag(raw: &str) -> Result<String, String> {
    let tag = raw.trim().trim_start_matches('#').to_lowercase();
    if tag.is_empty() {
        return Err("a tag is empty".into());
    }
    if tag.chars().count() > MAX_TAG {
        return Err(format!("tag `{tag}` is longer than {MAX_TAG} characters"));
    }
    if !tag.chars().all(tag_char) {
        return Err(format!(
            "tag `{tag}` may only hold letters, digits and underscores"
        ));
    }
    Ok(tag)
}

/// Tags from a list (JSON array items, or a comma/space separated string).
pub fn parse_tags<'a>(items: impl IntoIterator<Item = &'a str>) -> Result<Vec<String>, String> {
    let mut tags = Vec::new();
    for item in items {
        for raw in item
            .split([',', ' ', '\n', '\t'])
            .filter(|s| !s.trim().is_empty())
        {
            let tag = parse_tag(raw)?;
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags"));
    }
    Ok(tags)
}

/// The `#hashtags` in `text`, lower-cased, in order, without repeats. A `#`
/// inside a word or a URL (`a#b`, `/#x`) does not start one.
pub fn hashtags(text: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts =
            c == '#' && prev.is_none_or(|p| p.is_whitespace() || "([{,.;:!?\"'".contains(p));
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[i + 1..];
        let len: usize = rest
            .chars()
            .take_while(|c| tag_char(*c))
            .map(char::len_utf8)
            .sum();
        let word = &rest[..len];
        if !word.is_empty()
            && word.chars().count() <= MAX_TAG
            && !word.chars().all(|c| c.is_ascii_digit())
        {
            let tag = word.to_lowercase();
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
    }
    tags
}

/// Explicit tags plus the description's hashtags, at most [`MAX_TAGS`].
pub fn all_tags(explicit: &[String], description: Option<&str>) -> Vec<String> {
    let mut tags = explicit.to_vec();
    for tag in description.map(hashtags).unwrap_or_default() {
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags.truncate(MAX_TAGS);
    tags
}

/// A place on Earth, with an optional name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PlaceInput)]
pub struct Location {
    /// Degrees north, -90 to 90.
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
    /// Degrees east, -180 to 180.
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
    /// Your name for the place, at most 200 characters; blank is none.
    #[serde(default)]
    #[schema(max_length = 200)]
    pub place_name: Option<String>,
}

/// The schema of a location as an edit gives it: a place, `exif` for the
/// photo's own GPS position, or `null` to clear.
pub fn location_edit_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(<Location as utoipa::PartialSchema>::schema())
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["exif"])),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "A place `{lat, lon, place_name}`, `exif` for the photo's own GPS \
             position, or `null` to clear",
        ))
        .into()
}

/// The multipart form of `POST /api/v1/images`, as the API document shows
/// it (the handler reads the parts one by one, into [`UploadFields`]).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadForm {
    /// The image: JPEG, PNG, GIF, WebP, HEIC or AVIF, told from its bytes.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// At most 200 characters; blank is none.
    #[schema(nullable = false, max_length = 200)]
    pub title: Option<String>,
    /// At most 5000 characters; its `#hashtags` become tags.
    #[schema(nullable = false, max_length = 5000)]
    pub description: Option<String>,
    /// Tags separated by commas or spaces, or a JSON array of them: at
    /// most 30, each of at most 64 letters, digits and `_` (a leading `#`
    /// is dropped).
    #[schema(nullable = false)]
    pub tags: Option<String>,
    /// At most 1500 characters; blank is none.
    #[schema(nullable = false, max_length = 1500)]
    pub alt_text: Option<String>,
    /// `public` when absent.
    #[schema(nullable = false)]
    pub visibility: Option<Visibility>,
    /// `LAT,LON`, a JSON object `{"lat", "lon", "place_name"}`, or `exif`
    /// for the photo's own GPS position; blank is none.
    #[schema(nullable = false)]
    pub location: Option<String>,
    /// An http or https URL told (signed POST) when processing ends;
    /// blank is none.
    #[schema(nullable = false, pattern = r"^\s*([hH][tT][tT][pP][sS]?://\S+)?\s*$")]
    pub callback_url: Option<String>,
    /// An id grouping uploads for `GET /api/v1/tasks?batch_id=…`; blank is
    /// none.
    #[schema(
        nullable = false,
        pattern = r"^\s*([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?\s*$"
    )]
    pub batch_id: Option<String>,
}

impl Location {
    pub fn check(self) -> Result<Self, String> {
        if !(self.lat.is_finite() && (-90.0..=90.0).contains(&self.lat)) {
            return Err("lat must be between -90 and 90".into());
        }
        if !(self.lon.is_finite() && (-180.0..=180.0).contains(&self.lon)) {
            return Err("lon must be between -180 and 180".into());
        }
        let place_name = match self.place_name.map(|p| p.trim().to_owned()) {
            Some(p) if p.is_empty() => None,
            Some(p) if p.chars().count() > MAX_PLACE_NAME => {
                return Err(format!(
                    "place_name is longer than {MAX_PLACE_NAME} characters"
                ));
            }
            other => other,
        };
        Ok(Self { place_name, ..self })
    }
}

/// What a stored position is called: the owner's place name, and the
/// nearest populated place (offline GeoNames data; none farther than
/// [`pinhole_geo::MAX_PLACE_DISTANCE_KM`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placed {
    /// The owner's `place_name` when given, else the place's `City, Region,
    /// Country`.
    pub place_name: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    pub country: Option<String>,
    pub country_code: Option<String>,
}

/// The place of a stored position. Derived on reading, not stored: the
/// data is static, so the same position always gets the same place (and
/// images located before this existed get one too).
pub fn placed(lat: f64, lon: f64, place_name: Option<&str>) -> Placed {
    let owners = place_name.map(str::to_owned);
    match pinhole_geo::place_of(lat, lon) {
        Some(place) => Placed {
            place_name: owners.or_else(|| Some(place.label())),
            city: Some(place.city),
            region: place.region,
            country: Some(place.country),
            country_code: Some(place.country_code),
        },
        None => Placed {
            place_name: owners,
            ..Placed::default()
        },
    }
}

/// Where an image's location comes from.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum LocationInput {
    #[default]
    None,
    Explicit(Location),
    /// The GPS position in the photo's EXIF, which the owner allows to use.
    FromExif,
}

/// `exif`, a JSON object `{"lat":…,"lon":…,"place_name":…}`, or `LAT,LON`.
pub fn parse_location(s: &str) -> Result<LocationInput, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(LocationInput::None);
    }
    if s == "exif" {
        return Ok(LocationInput::FromExif);
    }
    let loc = if s.starts_with('{') {
        serde_json::from_str::<Location>(s).map_err(|e| format!("not a location object: {e}"))?
    } else {
        let (lat, lon) = s
            .split_once(',')
            .ok_or("use `exif`, `LAT,LON` or {\"lat\":…,\"lon\":…,\"place_name\":…}")?;
        Location {
            lat: lat.trim().parse().map_err(|_| "lat is not a number")?,
            lon: lon.trim().parse().map_err(|_| "lon is not a number")?,
            place_name: None,
        }
    };
    Ok(LocationInput::Explicit(loc.check()?))
}

/// Trims; empty becomes `None`; longer than `max` is an error.
pub fn text(value: &str, max: usize, what: &str) -> Result<Option<String>, String> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.chars().count() > max {
        return Err(format!("{what} is longer than {max} characters"));
    }
    Ok(Some(v.to_owned()))
}

/// What an upload says about the image.
#[derive(Debug, Clone, Default)]
pub struct UploadFields {
    pub title: Option<String>,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub alt_text: Option<String>,
    pub visibility: Option<Visibility>,
    pub location: LocationInput,
    pub callback_url: Option<url::Url>,
    pub batch_id: Option<Uuid>,
}

/// The field names an upload may carry.
pub const UPLOAD_FIELDS: &[&str] = &[
    "title",
    "description",
    "tags",
    "alt_text",
    "visibility",
    "location",
    "callback_url",
    "batch_id",
];

impl UploadFields {
    /// Parses name/value pairs; every problem is reported, per field (422).
    pub fn parse(
        pairs: &BTreeMap<String, Vec<String>>,
        allow_private_callbacks: bool,
    ) -> Result<Self, ApiError> {
        let mut out = Self::default();
        let mut problems = BTreeMap::new();
        let one = |name: &str| pairs.get(name).and_then(|v| v.last()).map(String::as_str);
        for name in pairs.keys() {
            if !UPLOAD_FIELDS.contains(&name.as_str()) {
                problems.insert(
                    name.clone(),
                    format!(
                        "unknown field; fields are: file, {}",
                        UPLOAD_FIELDS.join(", ")
                    ),
                );
            }
        }
        let mut note = |field: &str, r: Result<(), String>| {
            if let Err(e) = r {
                problems.insert(field.to_owned(), e);
            }
        };
        if let Some(v) = one("title") {
            note("title", text(v, MAX_TITLE, "title").map(|t| out.title = t));
        }
        if let Some(v) = one("description") {
            note(
                "description",
                text(v, MAX_DESCRIPTION, "description").map(|t| out.description = t),
            );
        }
        if let Some(v) = one("alt_text") {
            note(
                "alt_text",
                text(v, MAX_ALT_TEXT, "alt_text").map(|t| out.alt_text = t),
            );
        }
        if let Some(values) = pairs.get("tags") {
            let items = values.iter().flat_map(|v| {
                // A JSON array is accepted as well as a plain list.
                serde_json::from_str::<Vec<String>>(v).unwrap_or_else(|_| vec![v.clone()])
            });
            let items: Vec<String> = items.collect();
            note(
                "tags",
                parse_tags(items.iter().map(String::as_str)).map(|t| out.tags = t),
            );
        }
        if let Some(v) = one("visibility") {
            note(
                "visibility",
                Visibility::parse(v).map(|v| out.visibility = Some(v)),
            );
        }
        if let Some(v) = one("location") {
            note("location", parse_location(v).map(|l| out.location = l));
        }
        if let Some(v) = one("callback_url").filter(|v| !v.trim().is_empty()) {
            note(
                "callback_url",
                crate::callback_url::check_url(v.trim(), allow_private_callbacks)
                    .map(|u| out.callback_url = Some(u)),
            );
        }
        if let Some(v) = one("batch_id").filter(|v| !v.trim().is_empty()) {
            note(
                "batch_id",
                Uuid::parse_str(v.trim())
                    .map(|id| out.batch_id = Some(id))
                    .map_err(|_| "batch_id must be a UUID".to_owned()),
            );
        }
        if problems.is_empty() {
            Ok(out)
        } else {
            Err(ApiError::invalid(problems))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_named_after_their_place_unless_the_owner_named_them() {
        let louvre = placed(48.8606, 2.3376, None);
        assert_eq!(louvre.city.as_deref(), Some("Paris"));
        assert_eq!(louvre.country.as_deref(), Some("France"));
        assert_eq!(louvre.country_code.as_deref(), Some("FR"));
        assert_eq!(
            louvre.place_name.as_deref(),
            Some("Paris, Ile-de-France, France")
        );
        let named = placed(48.8606, 2.3376, Some("The Louvre"));
        assert_eq!(named.place_name.as_deref(), Some("The Louvre"));
        assert_eq!(named.city.as_deref(), Some("Paris"));
        // Mid-Atlantic: no place, the owner's name only.
        assert_eq!(placed(30.0, -40.0, None), Placed::default());
        let at_sea = placed(30.0, -40.0, Some("Aboard"));
        assert_eq!(at_sea.place_name.as_deref(), Some("Aboard"));
        assert_eq!(at_sea.city, None);
    }

    #[test]
    fn hashtags_come_from_words_not_urls() {
        assert_eq!(
            hashtags("Sunset at #Brighton, with #sea_air! see https://x.org/#frag a#b #2024 #海"),
            vec!["brighton", "sea_air", "海"]
        );
        assert_eq!(hashtags("#one #One (#two)"), vec!["one", "two"]);
    }

    #[test]
    fn tags_are_normalized_and_checked() {
        assert_eq!(
            parse_tags(["#Beach, sun  beach"]).expect("ok"),
            vec!["beach", "sun"]
        );
        assert!(parse_tags(["no-dashes"]).is_err());
        assert!(parse_tags([&"x".repeat(65)[..]]).is_err());
    }

    #[test]
    fn locations_parse_in_three_forms() {
        assert_eq!(parse_location("exif"), Ok(LocationInput::FromExif));
        assert_eq!(
            parse_location("48.85, 2.29"),
            Ok(LocationInput::Explicit(Location {
                lat: 48.85,
                lon: 2.29,
                place_name: None
            }))
        );
        assert_eq!(
            parse_location(r#"{"lat":-33.9,"lon":151.2,"place_name":" Sydney "}"#),
            Ok(LocationInput::Explicit(Location {
                lat: -33.9,
                lon: 151.2,
                place_name: Some("Sydney".into())
            }))
        );
        assert!(parse_location("91,0").is_err());
        assert!(parse_location("0,181").is_err());
        assert!(parse_location("here").is_err());
    }
}
