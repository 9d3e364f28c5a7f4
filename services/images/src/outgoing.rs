//! The events this role sends (through the outbox, keyed by image id).

use pinhole_events::OutgoingEvent;
use pinhole_events::images::{self as kinds, ProcessJob};

use crate::entity::{image, task};

/// What other roles need to know of an image (no EXIF: only the location
/// the owner chose).
pub fn record(img: &image::Model, tags: &[String]) -> kinds::ImageRecord {
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
        visibility: img.visibility.as_str().to_owned(),
        location: match (img.lat, img.lon) {
            (Some(lat), Some(lon)) => Some(kinds::Location {
                lat,
                lon,
                place_name: img.place_name.clone(),
            }),
            _ => None,
        },
        status: img.status.as_str().to_owned(),
        created_at: img.created_at,
        updated_at: img.updated_at,
        version: img.version,
        derivatives: crate::present::stored_derivatives(img),
    }
}

/// `image.uploaded` for everyone, and the processing job on the urgent
/// thumbnails topic.
pub fn uploaded(img: &image::Model, tags: &[String], t: &task::Model) -> Vec<OutgoingEvent> {
    let job = ProcessJob {
        image_id: img.id,
        task_id: Some(t.id),
        force: false,
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
