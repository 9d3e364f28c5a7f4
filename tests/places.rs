//! Where images were taken, named: a position without a place name gets the
//! nearest populated place (offline GeoNames data) on the image record and
//! on the image's events; an owner's place name stays; at sea there is no
//! place.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use pinhole_events::images::{ImageUploaded, Location};
use pinhole_testkit::unique;
use pinhole_tests::app::{App, DEADLINE, photo, with_exif};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Whether a record's `location` names the Paris of the data.
fn in_paris(location: &Value) -> bool {
    location["city"] == "Paris"
        && location["region"] == "Ile-de-France"
        && location["country"] == "France"
        && location["country_code"] == "FR"
}

/// The first `image.uploaded` of `image_id`, read from the bus by a group
/// of the test's own.
async fn uploaded_event(app: &App, image_id: &str) -> anyhow::Result<ImageUploaded> {
    let bus = Arc::clone(&app.server.ctx.backends.bus);
    let mut sub = bus
        .subscribe(&unique("test-reader"), &[pinhole_events::topics::IMAGES])
        .await?;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while tokio::time::Instant::now() < deadline {
        let Some(record) = sub.next(Duration::from_millis(500)).await? else {
            continue;
        };
        if record.key.as_deref() != Some(image_id.as_bytes()) {
            continue;
        }
        let envelope = pinhole_events::Envelope::from_json(&record.payload)?;
        if let Ok(event) = envelope.decode::<ImageUploaded>() {
            sub.close().await?;
            return Ok(event);
        }
    }
    bail!("no image.uploaded of {image_id} within {DEADLINE:?}")
}

async fn positions_are_named(app: App) -> anyhow::Result<()> {
    let ana = app.user("ana").await?;
    let ben = app.user("ben").await?;

    // `LAT,LON` by the Louvre, no place name.
    let image = app
        .posted(
            &ana,
            photo("Blinds.jpg")?,
            &[("location", "48.8606,2.3376")],
        )
        .await?;
    let id = image["id"].as_str().context("id")?.to_owned();
    ensure!(in_paris(&image["location"]), "{image}");
    ensure!(
        image["location"]["place_name"] == "Paris, Ile-de-France, France",
        "{image}"
    );
    // Anyone who sees the image sees its place.
    let (status, seen) = app.get(&format!("/images/{id}"), Some(&ben)).await?;
    ensure!(
        status == StatusCode::OK && in_paris(&seen["location"]),
        "{status} {seen}"
    );
    // The event carries it.
    let event = uploaded_event(&app, &id).await?;
    let location = event.image.location.context("a location")?;
    ensure!(
        location
            == Location {
                lat: 48.8606,
                lon: 2.3376,
                place_name: Some("Paris, Ile-de-France, France".into()),
                city: Some("Paris".into()),
                region: Some("Ile-de-France".into()),
                country: Some("France".into()),
                country_code: Some("FR".into()),
            },
        "{location:?}"
    );

    // The owner's place name stays, with the place beside it.
    let path = format!("/images/{id}");
    let body = json!({"location": {"lat": 48.8606, "lon": 2.3376, "place_name": "Le Louvre"}});
    let (status, named) = app
        .call(Method::PATCH, &path, Some(&ana), Some(body))
        .await?;
    ensure!(status == StatusCode::OK, "{status} {named}");
    ensure!(
        named["location"]["place_name"] == "Le Louvre" && in_paris(&named["location"]),
        "{named}"
    );

    // At sea: no place, and no name.
    let body = json!({"location": {"lat": 30.0, "lon": -40.0}});
    let (status, at_sea) = app
        .call(Method::PATCH, &path, Some(&ana), Some(body))
        .await?;
    ensure!(status == StatusCode::OK, "{status} {at_sea}");
    let location = &at_sea["location"];
    ensure!(
        location["lat"] == 30.0
            && ["place_name", "city", "region", "country", "country_code"]
                .iter()
                .all(|f| location[f].is_null()),
        "{at_sea}"
    );

    // The photo's own GPS position (Notre-Dame), kept with `exif`.
    let gps = with_exif(
        app.dir.path(),
        "Storm.jpg",
        &[
            "-GPSLatitude=48.8530",
            "-GPSLatitudeRef=N",
            "-GPSLongitude=2.3499",
            "-GPSLongitudeRef=E",
        ],
    )?;
    let image = app.posted(&ana, gps, &[("location", "exif")]).await?;
    ensure!(
        in_paris(&image["location"])
            && image["location"]["place_name"] == "Paris, Ile-de-France, France",
        "{image}"
    );
    Ok(())
}

pinhole_tests::backends!(positions_are_named);
