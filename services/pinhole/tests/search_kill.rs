//! The search index under `kill -9`: a `pinhole serve --roles search`
//! process indexing thousands of events from Kafka is killed while it
//! indexes, started again, and the index ends with every document once,
//! every like counted once and every comment searchable, its stored
//! offsets at the end of the topics.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use anyhow::ensure;
use pinhole_bus::{EventBus, KafkaBus, KafkaOptions, Message, Namespaced, TopicSpec};
use pinhole_events::images::{
    CommentCreated, ImagePublished, ImageRecord, ImageStatus, LikeCreated, Visibility,
};
use pinhole_events::users::{AccountCard, UserRegistered};
use pinhole_events::{Event, OutgoingEvent, topics};
use pinhole_testkit::wait_for;
use uuid::Uuid;

const IMAGES: usize = 6000;
const USERS: usize = 40;
const LIKES: usize = 3000;
const COMMENTS: usize = 1000;

fn record(owner: Uuid, n: usize) -> ImageRecord {
    let now = chrono::Utc::now();
    ImageRecord {
        image_id: Uuid::now_v7(),
        owner_id: owner,
        sha256: format!("{n:064x}"),
        format: "jpeg".into(),
        width: 640,
        height: 480,
        size: 1000,
        title: Some(format!("photo number {n}")),
        description: Some("a quiet morning by the river".into()),
        alt_text: None,
        tags: vec![format!("t{}", n % 50)],
        visibility: Visibility::Public,
        location: None,
        status: ImageStatus::Ready,
        created_at: now,
        updated_at: now,
        version: 1,
        derivatives: Vec::new(),
        camera: None,
        taken_at: None,
        analysis: None,
    }
}

fn message<E: Event>(e: &E) -> (String, String, Vec<u8>) {
    let out = OutgoingEvent::of(e);
    (out.topic.to_owned(), out.key, out.envelope.to_json())
}

fn serve(dir: &Path, env: &[(&str, String)]) -> anyhow::Result<Child> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pinhole"));
    command
        .args(["serve", "--roles", "search"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("PINHOLE_") {
            command.env_remove(name);
        }
    }
    for (k, v) in env {
        command.env(k, v);
    }
    Ok(command.spawn()?)
}

fn kill9(child: &mut Child) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-9", &child.id().to_string()])
        .status()?;
    ensure!(status.success(), "kill -9");
    child.wait()?;
    Ok(())
}

#[tokio::test]
async fn kill_9_while_indexing_loses_and_doubles_nothing() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let namespace = pinhole_testkit::unique("searchkill");
    let search_dir = dir.path().join("search");
    let env = vec![
        ("PINHOLE_LISTEN", "127.0.0.1:0".to_owned()),
        ("PINHOLE_DATA_DIR", dir.path().display().to_string()),
        (
            "PINHOLE_DATABASE_URL",
            pinhole_testkit::fresh_postgres().await?,
        ),
        (
            "PINHOLE_BUS_URL",
            format!("kafka://{}", pinhole_testkit::kafka_brokers()),
        ),
        ("PINHOLE_BUS_NAMESPACE", namespace.clone()),
        ("PINHOLE_SEARCH_DIR", search_dir.display().to_string()),
        ("PINHOLE_LOG_FORMAT", "json".to_owned()),
    ];
    let kafka: pinhole_bus::SharedBus = Arc::new(KafkaBus::new(KafkaOptions::new(
        pinhole_testkit::kafka_brokers(),
    ))?);
    let bus = Namespaced::new(kafka, &namespace);
    bus.ensure_topics(&[
        TopicSpec {
            name: topics::IMAGES,
            partitions: 4,
        },
        TopicSpec {
            name: topics::USERS,
            partitions: 4,
        },
    ])
    .await?;

    // The events: accounts, images, likes, comments (with a word of their own).
    let mut out = Vec::new();
    let users: Vec<Uuid> = (0..USERS).map(|_| Uuid::now_v7()).collect();
    for (n, u) in users.iter().enumerate() {
        out.push(message(&UserRegistered {
            account: AccountCard {
                user_id: *u,
                username: format!("user{n}"),
                display_name: None,
                avatar_image_id: None,
                is_private: false,
            },
            created_at: chrono::Utc::now(),
        }));
    }
    let images: Vec<ImageRecord> = (0..IMAGES).map(|n| record(users[n % USERS], n)).collect();
    for image in &images {
        out.push(message(&ImagePublished {
            image: image.clone(),
        }));
    }
    for n in 0..LIKES {
        out.push(message(&LikeCreated {
            image_id: images[n % IMAGES].image_id,
            user_id: users[n % USERS],
        }));
    }
    for image in images.iter().take(COMMENTS) {
        out.push(message(&CommentCreated {
            image_id: image.image_id,
            comment_id: Uuid::now_v7(),
            author_id: users[0],
            body: "kingfisher spotted".into(),
            created_at: chrono::Utc::now(),
        }));
    }
    for chunk in out.chunks(500) {
        let messages: Vec<Message<'_>> = chunk
            .iter()
            .map(|(topic, key, payload)| Message {
                topic,
                key: key.as_bytes(),
                payload,
            })
            .collect();
        bus.publish_all(&messages).await?;
    }

    // Kill it while it indexes, a few times.
    let mut kills = 0;
    for _ in 0..3 {
        let mut child = serve(dir.path(), &env)?;
        let before = pinhole_search::engine::census(&search_dir, None)
            .map(|(c, _)| c.images)
            .unwrap_or(0);
        let progressed = wait_for(Duration::from_secs(60), "indexing to progress", || async {
            let (c, _) = pinhole_search::engine::census(&search_dir, None).ok()?;
            (c.images > before).then_some(c.images)
        })
        .await;
        kill9(&mut child)?;
        let indexed = progressed?;
        if indexed < IMAGES as u64 {
            kills += 1;
        }
        println!("killed with {indexed} of {IMAGES} images indexed");
    }
    ensure!(kills > 0, "the process was never killed mid-way");

    // Started again, it finishes: everything once.
    let mut child = serve(dir.path(), &env)?;
    let result = wait_for(Duration::from_secs(120), "the whole index", || async {
        let (c, with_word) =
            pinhole_search::engine::census(&search_dir, Some("kingfisher")).ok()?;
        (c.images >= IMAGES as u64 && c.likes >= LIKES as u64 && with_word >= COMMENTS as u64)
            .then_some((c, with_word))
    })
    .await;
    kill9(&mut child)?;
    let (census, with_word) = result?;
    ensure!(census.images == IMAGES as u64, "{census:?}");
    ensure!(census.accounts == USERS as u64, "{census:?}");
    ensure!(census.likes == LIKES as u64, "{census:?}");
    ensure!(with_word == COMMENTS as u64, "{with_word}");
    let ends: u64 = census
        .offsets
        .iter()
        .filter(|((t, _), _)| t == topics::IMAGES || t == topics::USERS)
        .map(|(_, o)| u64::try_from(*o).unwrap_or(0))
        .sum();
    ensure!(
        ends == out.len() as u64,
        "stored offsets {:?} cover {ends} records of {}",
        census.offsets,
        out.len()
    );
    Ok(())
}
