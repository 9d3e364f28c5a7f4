//! Every event type of the contract: serialized in its envelope, read back
//! into the same Rust value, and described in the AsyncAPI document with a
//! schema whose references all resolve.

use std::collections::BTreeSet;

use chrono::Utc;
use pinhole_events::images::{
    self, Derivative, ImageRecord, ImageStatus, Location, ProcessJob, Source, Visibility,
};
use pinhole_events::users::{self, AccountCard};
use pinhole_events::{Envelope, Event, OutgoingEvent, asyncapi, catalog, topics};
use serde_json::Value;
use uuid::Uuid;

fn id() -> Uuid {
    Uuid::now_v7()
}

fn record() -> ImageRecord {
    ImageRecord {
        image_id: id(),
        owner_id: id(),
        sha256: "ab".repeat(32),
        format: "jpeg".into(),
        width: 640,
        height: 480,
        size: 12345,
        title: Some("森林中的浓雾与阳光".into()),
        description: None,
        alt_text: Some("fog".into()),
        tags: vec!["forest".into()],
        visibility: Visibility::Public,
        location: Some(Location {
            lat: 48.85,
            lon: 2.35,
            place_name: Some("Paris".into()),
            city: Some("Paris".into()),
            region: Some("Ile-de-France".into()),
            country: Some("France".into()),
            country_code: Some("FR".into()),
        }),
        status: ImageStatus::Ready,
        created_at: Utc::now(),
        updated_at: Utc::now(),
        version: 2,
        derivatives: vec![
            Derivative {
                name: "w640".into(),
                key: "derivatives/ab/x/w640.jpg".into(),
                width: 640,
                height: 480,
                format: "jpeg".into(),
                on_request: false,
            },
            Derivative {
                name: "w2048".into(),
                key: "derivatives/ab/x/w2048.webp".into(),
                width: 2048,
                height: 1536,
                format: "webp".into(),
                on_request: true,
            },
        ],
        camera: Some("FUJIFILM X-T3".into()),
        taken_at: Some(Utc::now()),
        analysis: Some(serde_json::json!({"phash": "c3a5f00f0ff0a5c3"})),
    }
}

fn job() -> ProcessJob {
    ProcessJob {
        image_id: id(),
        task_id: Some(id()),
        owner_id: id(),
        sha256: "cd".repeat(32),
        format: "png".into(),
        original_key: "originals/cd/x.png".into(),
        force: true,
        visibility: Some(Visibility::Public),
        owner_private: Some(false),
    }
}

fn source() -> Source {
    Source {
        sha256: "ef".repeat(32),
        format: "jpeg".into(),
        original_key: "originals/ef/x.jpg".into(),
    }
}

fn card() -> AccountCard {
    AccountCard {
        user_id: id(),
        username: "ada".into(),
        display_name: Some("Ada".into()),
        avatar_image_id: Some(id()),
        is_private: true,
    }
}

/// Round-trips `event` through its envelope's JSON; its document entry.
fn round_trip<E: Event + PartialEq + std::fmt::Debug>(event: E, seen: &mut BTreeSet<String>) {
    let out = OutgoingEvent::of(&event);
    assert_eq!(out.topic, E::TOPIC);
    assert_eq!(out.envelope.kind, E::TYPE);
    assert_eq!(out.envelope.schemaversion, E::VERSION);
    assert!(
        out.envelope.subject.ends_with(&out.key),
        "{}",
        out.envelope.subject
    );
    let wire = out.envelope.to_json();
    let back = Envelope::from_json(&wire).expect("an envelope");
    assert_eq!(back.decode::<E>().expect("decodes"), event);
    // Another type's envelope is refused, not misread.
    let mut other = back.clone();
    other.kind = "something.else".into();
    assert!(other.decode::<E>().is_err());
    // A plain CloudEvents 1.0 reader finds what it needs.
    let plain: Value = serde_json::from_slice(&wire).expect("json");
    for attr in [
        "specversion",
        "id",
        "source",
        "type",
        "time",
        "subject",
        "datacontenttype",
        "data",
    ] {
        assert!(plain.get(attr).is_some(), "{attr} missing in {plain}");
    }
    assert_eq!(plain["specversion"], "1.0");
    seen.insert(format!("{} {}", E::TOPIC, E::TYPE));
}

#[test]
fn every_event_round_trips_and_is_documented() {
    let mut seen = BTreeSet::new();
    let s = &mut seen;
    round_trip(
        users::UserRegistered {
            account: card(),
            created_at: Utc::now(),
        },
        s,
    );
    round_trip(
        users::UserUpdated {
            account: card(),
            changed: vec!["is_private".into()],
        },
        s,
    );
    round_trip(
        users::UserDeleted {
            user_id: id(),
            username: "ada".into(),
        },
        s,
    );
    round_trip(
        users::FollowRequested {
            follower_id: id(),
            followee_id: id(),
        },
        s,
    );
    round_trip(
        users::FollowCreated {
            follower_id: id(),
            followee_id: id(),
        },
        s,
    );
    round_trip(
        users::FollowRemoved {
            follower_id: id(),
            followee_id: id(),
        },
        s,
    );
    round_trip(
        users::BlockCreated {
            blocker_id: id(),
            blocked_id: id(),
        },
        s,
    );
    round_trip(
        users::BlockRemoved {
            blocker_id: id(),
            blocked_id: id(),
        },
        s,
    );
    round_trip(
        images::ImageUploaded {
            image: record(),
            task_id: id(),
        },
        s,
    );
    round_trip(images::ImageUpdated { image: record() }, s);
    round_trip(images::ImagePublished { image: record() }, s);
    round_trip(
        images::ImageDeleted {
            image_id: id(),
            owner_id: id(),
            sha256: "ab".repeat(32),
            derivatives: vec![],
        },
        s,
    );
    round_trip(
        images::CommentCreated {
            image_id: id(),
            comment_id: id(),
            author_id: id(),
            body: "nice".into(),
            created_at: Utc::now(),
        },
        s,
    );
    round_trip(
        images::CommentDeleted {
            image_id: id(),
            comment_id: id(),
            deleted_by: id(),
        },
        s,
    );
    round_trip(
        images::LikeCreated {
            image_id: id(),
            user_id: id(),
        },
        s,
    );
    round_trip(
        images::LikeRemoved {
            image_id: id(),
            user_id: id(),
        },
        s,
    );
    round_trip(job(), s);
    round_trip(images::ReprocessJob { job: job() }, s);
    round_trip(
        images::EditJob {
            image_id: id(),
            task_id: id(),
            owner_id: id(),
            base_version: 1,
            base: source(),
            operations: serde_json::json!([{"op": "rotate", "degrees": 90}]),
            watermark: Some(source()),
        },
        s,
    );
    round_trip(
        images::Processing {
            image_id: id(),
            task_id: None,
        },
        s,
    );
    round_trip(
        images::Processed {
            image_id: id(),
            task_id: Some(id()),
            sha256: "ab".repeat(32),
            derivatives: vec![],
            analysis: Some(serde_json::json!({"phash": "00ff"})),
            pipeline: 3,
        },
        s,
    );
    round_trip(
        images::Edited {
            image_id: id(),
            task_id: id(),
            base_version: 1,
            original: source(),
            staged_key: Some(format!("edits/{}/{}.jpg", id(), "ef".repeat(32))),
            width: 10,
            height: 20,
            size: 30,
            derivatives: vec![],
            analysis: None,
            pipeline: 3,
            operations: serde_json::json!([]),
        },
        s,
    );
    round_trip(
        images::EditSettled {
            image_id: id(),
            task_id: id(),
            staged_key: format!("edits/{}/{}.jpg", id(), "ef".repeat(32)),
        },
        s,
    );
    round_trip(
        images::ContentReleased {
            sha256: "ab".repeat(32),
            format: "jpeg".into(),
        },
        s,
    );
    round_trip(
        pinhole_events::pageviews::PageViewed {
            page: "image".into(),
            target: id().to_string(),
            image_id: Some(id()),
            path: "/p/0192".into(),
            format: "html".into(),
            status: 200,
            viewer_id: None,
            referrer_host: Some("example.com".into()),
            user_agent: Some("Mozilla/5.0".into()),
            viewed_at: Utc::now(),
        },
        s,
    );
    round_trip(
        images::ProcessingFailed {
            image_id: id(),
            task_id: None,
            reason: "corrupt".into(),
        },
        s,
    );

    // The catalog (the document's list) is exactly the types above: a new
    // event type needs a round trip here.
    let listed: BTreeSet<String> = catalog()
        .iter()
        .map(|m| format!("{} {}", m.topic, m.kind))
        .collect();
    assert_eq!(listed, seen);
}

/// `staged_key` came to `image.edited` without a new schema version: an
/// event from before it (the worker stored the original itself) still
/// reads, without one.
#[test]
fn an_edited_event_from_before_staging_still_reads() {
    let event = images::Edited {
        image_id: id(),
        task_id: id(),
        base_version: 1,
        original: source(),
        staged_key: None,
        width: 10,
        height: 20,
        size: 30,
        derivatives: vec![],
        analysis: None,
        pipeline: 2,
        operations: serde_json::json!([{"op": "rotate", "degrees": 90}]),
    };
    let mut envelope = OutgoingEvent::of(&event).envelope;
    assert_eq!(envelope.schemaversion, 1);
    let data = envelope.data.as_object_mut().expect("an object");
    assert!(data.remove("staged_key").is_some());
    assert_eq!(envelope.decode::<images::Edited>().expect("decodes"), event);
}

/// `camera`, `taken_at` and `analysis` came to the image record without a
/// new schema version: a record from before them still reads, without them.
#[test]
fn an_image_record_from_before_camera_and_analysis_still_reads() {
    let event = images::ImageUpdated {
        image: ImageRecord {
            camera: None,
            taken_at: None,
            analysis: None,
            ..record()
        },
    };
    let mut envelope = OutgoingEvent::of(&event).envelope;
    assert_eq!(envelope.schemaversion, 1);
    let data = envelope.data.as_object_mut().expect("an object");
    for field in ["camera", "taken_at", "analysis"] {
        assert!(data.remove(field).is_some(), "{field}");
    }
    assert_eq!(
        envelope.decode::<images::ImageUpdated>().expect("decodes"),
        event
    );
}

/// An export page's entry (not an event) reads back as written.
#[test]
fn an_image_export_round_trips() {
    let export = images::ImageExport {
        image: record(),
        like_count: 1,
        likers: vec![id()],
        comments: vec![images::ExportedComment {
            comment_id: id(),
            author_id: id(),
            body: "nice".into(),
            created_at: Utc::now(),
        }],
    };
    let json = serde_json::to_value(&export).expect("json");
    assert_eq!(json["image"]["camera"], "FUJIFILM X-T3");
    assert_eq!(json["comments"][0]["body"], "nice");
    let back: images::ImageExport = serde_json::from_value(json).expect("reads");
    assert_eq!(back, export);
    assert!(
        !catalog().iter().any(|m| m.kind.contains("export")),
        "not an event"
    );
}

/// `visibility` came to the processing job without a new schema version: a
/// job from before it still reads, without it.
#[test]
fn a_process_job_from_before_visibility_still_reads() {
    let event = ProcessJob {
        visibility: None,
        ..job()
    };
    let mut envelope = OutgoingEvent::of(&event).envelope;
    assert_eq!(envelope.schemaversion, 1);
    let data = envelope.data.as_object_mut().expect("an object");
    assert!(data.remove("visibility").is_some());
    assert_eq!(envelope.decode::<ProcessJob>().expect("decodes"), event);
}

/// `owner_private` came to the processing job without a new schema version
/// either: a job from before it still reads, without it.
#[test]
fn a_process_job_from_before_owner_private_still_reads() {
    let event = ProcessJob {
        owner_private: None,
        ..job()
    };
    let mut envelope = OutgoingEvent::of(&event).envelope;
    assert_eq!(envelope.schemaversion, 1);
    let data = envelope.data.as_object_mut().expect("an object");
    assert!(data.remove("owner_private").is_some());
    assert_eq!(envelope.decode::<ProcessJob>().expect("decodes"), event);
}

/// Visibility and status are enums in Rust and the same lowercase strings
/// on the wire as when they were strings; a value outside the set does not
/// read.
#[test]
fn visibility_and_status_keep_their_wire_names() {
    for (visibility, name) in [
        (Visibility::Public, "public"),
        (Visibility::Followers, "followers"),
        (Visibility::Private, "private"),
    ] {
        assert_eq!(serde_json::to_value(visibility).expect("writes"), name);
        assert_eq!(visibility.as_str(), name);
        let back: Visibility = serde_json::from_value(Value::from(name)).expect("reads");
        assert_eq!(back, visibility);
    }
    for (status, name) in [
        (ImageStatus::Processing, "processing"),
        (ImageStatus::Ready, "ready"),
        (ImageStatus::Failed, "failed"),
    ] {
        assert_eq!(serde_json::to_value(status).expect("writes"), name);
        assert_eq!(status.as_str(), name);
        let back: ImageStatus = serde_json::from_value(Value::from(name)).expect("reads");
        assert_eq!(back, status);
    }
    let json = serde_json::to_value(record()).expect("writes");
    assert_eq!(json["visibility"], "public");
    assert_eq!(json["status"], "ready");
    let json = serde_json::to_value(job()).expect("writes");
    assert_eq!(json["visibility"], "public");
    assert!(serde_json::from_value::<Visibility>(Value::from("friends")).is_err());
    assert!(serde_json::from_value::<ImageStatus>(Value::from("Ready")).is_err());
}

/// The nearest place's `city`, `region`, `country` and `country_code` came
/// to the location without a new schema version: a location from before
/// them still reads, without them.
#[test]
fn a_location_from_before_its_place_still_reads() {
    let old = serde_json::json!({"lat": -33.86, "lon": 151.21, "place_name": "Sydney"});
    let location: Location = serde_json::from_value(old).expect("reads");
    assert_eq!(
        location,
        Location {
            lat: -33.86,
            lon: 151.21,
            place_name: Some("Sydney".into()),
            city: None,
            region: None,
            country: None,
            country_code: None,
        }
    );
}

/// Follows a local `$ref` in the document.
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let path = reference.strip_prefix("#/")?;
    path.split('/').try_fold(doc, |v, part| v.get(part))
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    if let Some(r) = v.as_str() {
                        out.push(r.to_owned());
                    }
                } else {
                    refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_asyncapi_document_describes_every_message() {
    let doc = asyncapi();
    assert_eq!(doc["asyncapi"], "3.0.0");
    let channels = doc["channels"].as_object().expect("channels");
    let addresses: BTreeSet<&str> = channels
        .values()
        .filter_map(|c| c["address"].as_str())
        .collect();
    for spec in catalog() {
        assert!(addresses.contains(spec.topic), "{spec:?}: no channel");
        let message = &doc["components"]["messages"][spec.id()];
        assert_eq!(message["name"], spec.kind, "{spec:?}");
        let payload = &message["payload"];
        assert_eq!(payload["properties"]["type"]["const"], spec.kind);
        assert_eq!(
            payload["properties"]["schemaversion"]["const"],
            spec.version
        );
        assert!(
            payload["properties"]["data"].is_object(),
            "{spec:?}: no data schema"
        );
        assert!(
            doc["operations"][format!("send.{}", spec.id())]["action"] == "send",
            "{spec:?}: no operation"
        );
    }
    // Every reference resolves inside the document.
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > catalog().len());
    for r in all {
        assert!(resolve(&doc, &r).is_some(), "dangling $ref {r}");
    }
    // The upload's schema names the image record's fields and its own.
    let uploaded = &doc["components"]["schemas"]["ImageUploaded"];
    for field in ["visibility", "owner_id", "task_id", "derivatives"] {
        assert!(
            uploaded["properties"][field].is_object(),
            "{field}: {uploaded}"
        );
    }
    // The processing job's says what a catalog that has not heard of the
    // image or its owner needs.
    let job = &doc["components"]["schemas"]["ProcessJob"];
    for field in ["visibility", "owner_private", "original_key"] {
        assert!(job["properties"][field].is_object(), "{field}: {job}");
    }
    assert!(topics::ALL.contains(&topics::USERS));
}
