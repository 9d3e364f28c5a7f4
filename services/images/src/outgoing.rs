//! The events this role sends (through the outbox, keyed by image id).

use chrono::{DateTime, NaiveDateTime, Utc};
use pinhole_events::OutgoingEvent;
use pinhole_events::images::{self as kinds, ProcessJob};
use pinhole_media::ExifData;

use crate::entity::{image, task};

/// What other roles need to know of an image: of its EXIF only the camera
/// and when it was taken (no position: only the location the owner chose).
pub fn record(img: &image::Model, tags: &[String]) -> kinds::ImageRecord {
    let exif: Option<ExifData> = img
        .exif
        .as_deref()
        .and_then(|e| serde_json::from_str(e).ok());
    let exif = exif.unwrap_or_default();
    kinds::ImageRecord {
        image_id: img.id,
        owner_id: img.owner_id,
        sha256: img.sha256.clone(),
        format: img.format.clone(),
        width: img.width,
        height: img.height,
        size: img.size,
        title: img.title.clone(),
        description: img.description.clone(),
        alt_text: img.alt_text.clone(),
        tags: tags.to_vec(),
        visibility: img.visibility.into(),
        location: match (img.lat, img.lon) {
            (Some(lat), Some(lon)) => Some(location(lat, lon, img.place_name.as_deref())),
            _ => None,
        },
        status: img.status.into(),
        created_at: img.created_at,
        updated_at: img.updated_at,
        version: img.version,
        derivatives: crate::present::stored_derivatives(img),
        camera: camera(exif.camera_make.as_deref(), exif.camera_model.as_deref()),
        taken_at: exif.taken_at.as_deref().and_then(taken_at),
        analysis: img
            .analysis
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok()),
    }
}

/// The camera as people write it: `FUJIFILM X-T3` from make `FUJIFILM` and
/// model `X-T3`; the model alone when it already names the make (`Canon EOS
/// R5`, or `NIKON D750` from make `NIKON CORPORATION`).
fn camera(make: Option<&str>, model: Option<&str>) -> Option<String> {
    let make = make.map(str::trim).filter(|m| !m.is_empty());
    let model = model.map(str::trim).filter(|m| !m.is_empty());
    match (make, model) {
        (None, None) => None,
        (Some(one), None) | (None, Some(one)) => Some(one.to_owned()),
        (Some(make), Some(model)) => {
            let named = |prefix: &str| {
                model
                    .get(..prefix.len())
                    .is_some_and(|m| m.eq_ignore_ascii_case(prefix))
            };
            let brand = make.split_whitespace().next().unwrap_or(make);
            if named(make) || named(brand) {
                Some(model.to_owned())
            } else {
                Some(format!("{make} {model}"))
            }
        }
    }
}

/// EXIF's `2008-05-30T15:56:01` (read as UTC) or `2008-05-30T15:56:01+02:00`.
fn taken_at(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
                .ok()
                .map(|t| t.and_utc())
        })
}

/// A stored position and the owner's place name, with its place.
fn location(lat: f64, lon: f64, place_name: Option<&str>) -> kinds::Location {
    let p = crate::domain::placed(lat, lon, place_name);
    kinds::Location {
        lat,
        lon,
        place_name: p.place_name,
        city: p.city,
        region: p.region,
        country: p.country,
        country_code: p.country_code,
    }
}

/// `image.uploaded` for everyone, and the processing job on the urgent
/// thumbnails topic. `owner_private` is whether the owner's account is
/// private as this role's read model has it (None before its card
/// arrived): the job carries it for a thumbnails catalog that has not
/// heard of the account yet.
pub fn uploaded(
    img: &image::Model,
    tags: &[String],
    t: &task::Model,
    owner_private: Option<bool>,
) -> Vec<OutgoingEvent> {
    let job = ProcessJob {
        image_id: img.id,
        task_id: Some(t.id),
        force: false,
        owner_private,
        visibility: Some(img.visibility.into()),
        owner_id: img.owner_id,
        sha256: img.sha256.clone(),
        format: img.format.clone(),
        original_key: crate::store::original_key(
            &img.sha256,
            pinhole_media::Format::parse(&img.format).unwrap_or(pinhole_media::Format::Jpeg),
        ),
    };
    vec![
        OutgoingEvent::of(&kinds::ImageUploaded {
            image: record(img, tags),
            task_id: t.id,
        }),
        OutgoingEvent::of(&job),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cameras_read_as_people_write_them() {
        let cases = [
            (Some("FUJIFILM"), Some("X-T3"), Some("FUJIFILM X-T3")),
            (Some("Canon"), Some("Canon EOS R5"), Some("Canon EOS R5")),
            (
                Some("NIKON CORPORATION"),
                Some("NIKON D750"),
                Some("NIKON D750"),
            ),
            (
                Some("Apple"),
                Some("iPhone 12 Pro"),
                Some("Apple iPhone 12 Pro"),
            ),
            (Some(" SONY "), Some(" "), Some("SONY")),
            (None, Some("DMC-GX80"), Some("DMC-GX80")),
            (Some(""), None, None),
        ];
        for (make, model, expected) in cases {
            assert_eq!(
                camera(make, model).as_deref(),
                expected,
                "{make:?} {model:?}"
            );
        }
    }

    #[test]
    fn taken_at_without_an_offset_is_utc() {
        let utc = taken_at("2008-05-30T15:56:01").expect("a time");
        assert_eq!(utc.to_rfc3339(), "2008-05-30T15:56:01+00:00");
        let offset = taken_at("2008-05-30T15:56:01-07:00").expect("a time");
        assert_eq!(offset.to_rfc3339(), "2008-05-30T22:56:01+00:00");
        assert_eq!(taken_at("yesterday"), None);
    }
}
