//! A member's partitions go to the rest of its group when it leaves (closed,
//! dropped, its process stopping several members at once) or dies
//! (`kill -9`), on a real Kafka-protocol broker: a private tansu each, so
//! that its groups and timings are the test's own.
//!
//! `cargo nextest run -p pinhole-bus --test kafka_handover --run-ignored
//! only --no-capture` prints the handover time after `kill -9` over a few
//! rounds.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use pinhole_bus::{EventBus, KafkaBus, KafkaOptions, Message, TopicSpec};
use pinhole_testkit::{Broker, free_port, unique};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

const PARTITIONS: i32 = 4;
/// What DESIGN.md advises for tests; a rebalance on tansu takes half of it.
const SESSION: Duration = Duration::from_secs(6);
/// A fresh group's first joins and rebalances, on a slow machine.
const FORMING: Duration = Duration::from_secs(60);
/// A closed or dropped member: it checks for a rebalance for 1.5 s, then
/// the survivor notices within a heartbeat (1 s) and rejoins (3 s).
const GRACEFUL: Duration = Duration::from_secs(10);
/// A killed member: the goal (about 10 s expected: S + H + S / 2).
const KILLED: Duration = Duration::from_secs(15);
/// Set in the child process that `child_member` turns into a member:
/// `BROKERS GROUP TOPIC`.
const CHILD: &str = "PINHOLE_BUS_HANDOVER_CHILD";

fn options(brokers: &str) -> KafkaOptions {
    let mut options = KafkaOptions::new(brokers);
    options.session_timeout = SESSION;
    options
}

/// A private broker with a topic, a group name, and records published to
/// every partition every 100 ms until dropped.
struct Scene {
    broker: Broker,
    topic: String,
    group: String,
    publishing: JoinHandle<()>,
}

impl Scene {
    async fn start() -> anyhow::Result<Self> {
        let broker = Broker::start(free_port()?).await?;
        let publisher = KafkaBus::new(options(&broker.brokers()))?;
        let topic = unique("handover");
        publisher
            .ensure_topics(&[TopicSpec {
                name: &topic,
                partitions: PARTITIONS.unsigned_abs(),
            }])
            .await?;
        let keys: Vec<String> = (0..16).map(|i| format!("key-{i}")).collect();
        let publish = {
            let topic = topic.clone();
            move || {
                let (publisher, topic, keys) = (publisher.clone(), topic.clone(), keys.clone());
                async move {
                    let messages: Vec<Message<'_>> = keys
                        .iter()
                        .map(|k| Message {
                            topic: &topic,
                            key: k.as_bytes(),
                            payload: b"tick",
                        })
                        .collect();
                    publisher.publish_all(&messages).await
                }
            }
        };
        let positions = publish().await?;
        let hit: BTreeSet<i32> = positions.iter().map(|p| p.partition).collect();
        ensure!(hit.len() == 4, "the keys reach every partition: {hit:?}");
        let publishing = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = publish().await;
            }
        });
        Ok(Self {
            broker,
            topic,
            group: unique("group"),
            publishing,
        })
    }

    /// A client of its own, as another process would have.
    fn bus(&self) -> anyhow::Result<Arc<dyn EventBus>> {
        Ok(Arc::new(KafkaBus::new(options(&self.broker.brokers()))?))
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        self.publishing.abort();
    }
}

/// A member of the scene's group that reports `(id, partition)` for each
/// record and commits it; closes its subscription once `stop` is set.
fn member(
    scene: &Scene,
    bus: Arc<dyn EventBus>,
    id: usize,
    received: UnboundedSender<(usize, i32)>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<anyhow::Result<()>> {
    let (group, topic) = (scene.group.clone(), scene.topic.clone());
    tokio::spawn(async move {
        let mut sub = bus.subscribe(&group, &[&topic]).await?;
        while !stop.load(Ordering::SeqCst) {
            if let Some(record) = sub.next(Duration::from_millis(100)).await? {
                // A commit in a partition just revoked fails; it does not
                // matter here.
                let _ = sub.commit(&record).await;
                let _ = received.send((id, record.partition));
            }
        }
        sub.close().await?;
        Ok(())
    })
}

/// Who got records from which partitions.
struct Seen {
    rx: UnboundedReceiver<(usize, i32)>,
    by: HashMap<usize, BTreeSet<i32>>,
}

impl Seen {
    fn new(rx: UnboundedReceiver<(usize, i32)>) -> Self {
        Self {
            rx,
            by: HashMap::new(),
        }
    }

    /// Forgets what was seen so far, including what is still queued.
    fn clear(&mut self) {
        while self.rx.try_recv().is_ok() {}
        self.by.clear();
    }

    /// Waits until `done` holds for what was seen, at most `deadline`.
    async fn until(
        &mut self,
        deadline: Duration,
        what: &str,
        done: impl Fn(&HashMap<usize, BTreeSet<i32>>) -> bool,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        while !done(&self.by) {
            let left = deadline.saturating_sub(started.elapsed());
            if left.is_zero() {
                bail!("{what} within {deadline:?}: saw {:?}", self.by);
            }
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some((id, partition))) => {
                    self.by.entry(id).or_default().insert(partition);
                }
                Ok(None) => bail!("every member stopped; saw {:?}", self.by),
                Err(_) => {}
            }
        }
        Ok(started.elapsed())
    }

    /// Waits until each of `ids` got records.
    async fn all_active(&mut self, ids: &[usize]) -> anyhow::Result<()> {
        self.until(FORMING, "every member to get records", |by| {
            ids.iter()
                .all(|id| by.get(id).is_some_and(|p| !p.is_empty()))
        })
        .await
        .map(|_| ())
    }

    /// Forgets what was seen, then waits until `id` gets records from every
    /// partition: it has taken the others' over.
    async fn handover_to(&mut self, id: usize, deadline: Duration) -> anyhow::Result<Duration> {
        self.clear();
        self.until(deadline, "the survivor to get every partition", |by| {
            by.get(&id).is_some_and(|p| p.len() == 4)
        })
        .await
    }
}

/// How the leaving members stop.
#[derive(Clone, Copy)]
enum Stop {
    /// `Subscription::close`, one after the other, the last to join first.
    Close,
    /// Their tasks aborted at once, the last to join first: the
    /// subscriptions are dropped mid-poll, as when a server stops.
    Drop,
}

/// `leaving` members of one process (one client) join first, one after the
/// other, so that the first leads the group (tansu keeps its leader while it
/// stays); then one member of another process. The first ones stop, and the
/// other must get every partition within `deadline`.
async fn members_stop(leaving: usize, how: Stop, deadline: Duration) -> anyhow::Result<()> {
    let scene = Scene::start().await?;
    let (tx, rx) = unbounded_channel();
    let mut seen = Seen::new(rx);
    let stopping = scene.bus()?;
    let mut members = Vec::new();
    for id in 1..=leaving {
        let stop = Arc::new(AtomicBool::new(false));
        let task = member(
            &scene,
            Arc::clone(&stopping),
            id,
            tx.clone(),
            Arc::clone(&stop),
        );
        members.push((task, stop));
        seen.all_active(&(1..=id).collect::<Vec<_>>()).await?;
    }
    let survivor_stop = Arc::new(AtomicBool::new(false));
    let survivor = member(&scene, scene.bus()?, 0, tx, Arc::clone(&survivor_stop));
    seen.all_active(&(0..=leaving).collect::<Vec<_>>()).await?;

    seen.clear();
    let started = Instant::now();
    match how {
        Stop::Close => {
            for (task, stop) in members.into_iter().rev() {
                stop.store(true, Ordering::SeqCst);
                task.await??;
            }
        }
        Stop::Drop => members.iter().rev().for_each(|(task, _)| task.abort()),
    }
    seen.until(deadline, "the survivor to get every partition", |by| {
        by.get(&0).is_some_and(|p| p.len() == 4)
    })
    .await?;
    let took = started.elapsed();
    eprintln!("{leaving} member(s) stopped: the survivor had every partition after {took:.2?}");
    ensure!(took < deadline, "handover took {took:?}");
    survivor_stop.store(true, Ordering::SeqCst);
    survivor.await??;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_member_hands_over() -> anyhow::Result<()> {
    members_stop(1, Stop::Close, GRACEFUL).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_member_hands_over() -> anyhow::Result<()> {
    members_stop(1, Stop::Drop, GRACEFUL).await
}

/// What wedged tansu's group for good: a member leaves, the group starts a
/// rebalance led by the other member of the same process, and that one
/// leaves before the rebalance is over (it now waits for it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_closed_after_another_member_hands_over() -> anyhow::Result<()> {
    members_stop(2, Stop::Close, GRACEFUL * 3).await
}

/// The same, as a server stops: both members dropped at once (they now
/// leave one at a time).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_of_a_stopping_process_hand_over() -> anyhow::Result<()> {
    members_stop(2, Stop::Drop, GRACEFUL * 3).await
}

/// A process with two members of the group (the first leads it) stops
/// and another starts right away, as a server restarts: the new members
/// must get every partition. This wedged tansu's group half of the time
/// (the old members left a fraction of a millisecond apart, the leader
/// last); the Kafka killed-worker test in `tests/thumbnails.rs` does the
/// same with servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_process_takes_over() -> anyhow::Result<()> {
    let scene = Scene::start().await?;
    let (tx, rx) = unbounded_channel();
    let mut seen = Seen::new(rx);
    let old = scene.bus()?;
    let mut members = Vec::new();
    for id in 1..=2 {
        let stop = Arc::new(AtomicBool::new(false));
        members.push(member(&scene, Arc::clone(&old), id, tx.clone(), stop));
        seen.all_active(&(1..=id).collect::<Vec<_>>()).await?;
    }

    members.iter().rev().for_each(JoinHandle::abort);
    let started = Instant::now();
    let new = scene.bus()?;
    let stop = Arc::new(AtomicBool::new(false));
    let restarted: Vec<_> = [3, 4]
        .into_iter()
        .map(|id| member(&scene, Arc::clone(&new), id, tx.clone(), Arc::clone(&stop)))
        .collect();
    seen.clear();
    seen.until(
        GRACEFUL * 3,
        "the new members to get every partition",
        |by| {
            [3, 4]
                .iter()
                .filter_map(|id| by.get(id))
                .flatten()
                .collect::<BTreeSet<_>>()
                .len()
                == 4
        },
    )
    .await?;
    eprintln!(
        "restarted: the new members had every partition after {:.2?}",
        started.elapsed()
    );
    stop.store(true, Ordering::SeqCst);
    for task in restarted {
        task.await??;
    }
    Ok(())
}

/// Kills a child process on drop (a failing test leaves no member behind).
struct ChildMember(std::process::Child);

impl Drop for ChildMember {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A member in a child process (this test binary running `child_member`)
/// reports as member `id`.
fn spawn_child_member(
    scene: &Scene,
    id: usize,
    received: UnboundedSender<(usize, i32)>,
) -> anyhow::Result<ChildMember> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["--exact", "child_member", "--nocapture"])
        .env(
            CHILD,
            format!("{} {} {}", scene.broker.brokers(), scene.group, scene.topic),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting the child member")?;
    let stdout = child.stdout.take().context("the child's stdout")?;
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(partition) = line
                .strip_prefix("record ")
                .and_then(|p| p.parse::<i32>().ok())
            {
                let _ = received.send((id, partition));
            }
        }
    });
    Ok(ChildMember(child))
}

/// One member in this process, one in a child; the child is killed with
/// SIGKILL once both have partitions. Returns how long the survivor took
/// to get every partition.
async fn kill_handover() -> anyhow::Result<Duration> {
    let scene = Scene::start().await?;
    let (tx, rx) = unbounded_channel();
    let mut seen = Seen::new(rx);
    let stop = Arc::new(AtomicBool::new(false));
    let survivor = member(&scene, scene.bus()?, 0, tx.clone(), Arc::clone(&stop));
    let mut child = spawn_child_member(&scene, 1, tx)?;
    seen.all_active(&[0, 1]).await?;

    child.0.kill()?; // SIGKILL
    let took = seen.handover_to(0, KILLED).await?;
    stop.store(true, Ordering::SeqCst);
    survivor.await??;
    Ok(took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_member_hands_over() -> anyhow::Result<()> {
    let took = kill_handover().await?;
    eprintln!("handover after kill -9: {took:?}");
    Ok(())
}

/// The handover time after `kill -9` over a few rounds (a measurement,
/// about a minute: run it with `--run-ignored only --no-capture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a measurement; prints the handover time after kill -9"]
async fn handover_after_kill_figures() -> anyhow::Result<()> {
    let mut times = Vec::new();
    for round in 1..=5 {
        let took = kill_handover().await?;
        eprintln!("round {round}: {took:.2?}");
        times.push(took);
    }
    times.sort();
    eprintln!(
        "handover after kill -9 (session {SESSION:?}): median {:.2?}, min {:.2?}, max {:.2?}",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}

/// Not a test of its own: with `PINHOLE_BUS_HANDOVER_CHILD` set, this is the
/// member that `a_killed_member_hands_over` runs in a child process. It
/// prints `record PARTITION` for each record and runs until killed (two
/// minutes at most, should its parent be gone).
#[tokio::test]
async fn child_member() -> anyhow::Result<()> {
    let Ok(spec) = std::env::var(CHILD) else {
        return Ok(());
    };
    let [brokers, group, topic] = spec.split(' ').collect::<Vec<_>>()[..] else {
        bail!("{CHILD} is `BROKERS GROUP TOPIC`: {spec}");
    };
    let bus = KafkaBus::new(options(brokers))?;
    let mut sub = bus.subscribe(group, &[topic]).await?;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if let Some(record) = sub.next(Duration::from_millis(100)).await? {
            let _ = sub.commit(&record).await;
            println!("record {}", record.partition);
        }
    }
    Ok(())
}
