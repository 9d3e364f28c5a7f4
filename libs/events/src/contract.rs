//! The typed contract between roles: every event that crosses roles is a
//! Rust type implementing [`Event`] (topic, `type`, partition key, schema
//! version, payload), used by producer and consumers alike, and listed in
//! the AsyncAPI 3.0 document ([`asyncapi`]) with a JSON Schema generated
//! from the same type.
//!
//! [`Event`] is sealed: only the [`contract!`] list in this crate implements
//! it, and that list is also the document's, so an event that can be
//! emitted is an event the document describes.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::{Envelope, OutgoingEvent};

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// An event type of the contract.
pub trait Event: Serialize + DeserializeOwned + JsonSchema + sealed::Sealed {
    /// The topic it travels on.
    const TOPIC: &'static str;
    /// The CloudEvents `type`.
    const TYPE: &'static str;
    /// The version of its `data` schema (`schemaversion`).
    const VERSION: u32;
    /// The role that emits it (CloudEvents `source`).
    const SOURCE: &'static str;
    /// One line on what it means.
    const SUMMARY: &'static str;

    /// The partitioning key: the id of the entity it is about.
    fn key(&self) -> String;

    /// The CloudEvents `subject`, e.g. `user/0192…`.
    fn subject(&self) -> String;
}

impl OutgoingEvent {
    /// `event` in a fresh envelope, on its topic, under its key.
    pub fn of<E: Event>(event: &E) -> Self {
        Self {
            topic: E::TOPIC,
            key: event.key(),
            envelope: Envelope::new(
                E::SOURCE,
                E::TYPE,
                event.subject(),
                E::VERSION,
                // Plain data types: serializing them cannot fail.
                serde_json::to_value(event).unwrap_or(Value::Null),
            ),
        }
    }

    /// `event` in a fresh envelope, as JSON bytes, with its key: what
    /// [`OutgoingEvent::of`] and [`Envelope::to_json`] make, written straight
    /// from the typed payload (no JSON value between), for events sent by
    /// the thousand.
    pub fn encode<E: Event>(event: &E) -> (String, Vec<u8>) {
        /// [`Envelope`]'s fields, in its order, borrowing the payload.
        #[derive(Serialize)]
        struct Borrowed<'a, E> {
            specversion: &'static str,
            id: uuid::Uuid,
            source: &'static str,
            #[serde(rename = "type")]
            kind: &'static str,
            time: chrono::DateTime<chrono::Utc>,
            subject: String,
            datacontenttype: &'static str,
            schemaversion: u32,
            data: &'a E,
        }
        let envelope = Borrowed {
            specversion: crate::SPEC_VERSION,
            id: uuid::Uuid::now_v7(),
            source: E::SOURCE,
            kind: E::TYPE,
            time: chrono::Utc::now(),
            subject: event.subject(),
            datacontenttype: crate::CONTENT_TYPE,
            schemaversion: E::VERSION,
            data: event,
        };
        // Plain data types: serializing them cannot fail.
        (
            event.key(),
            serde_json::to_vec(&envelope).unwrap_or_default(),
        )
    }
}

/// Why an envelope's data is not the event asked for.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("an event of type `{found}` is not `{expected}`")]
    WrongType {
        expected: &'static str,
        found: String,
    },
    #[error("`{kind}` data (schema version {version}): {source}")]
    Data {
        kind: &'static str,
        version: u32,
        source: serde_json::Error,
    },
}

impl Envelope {
    /// The typed data of this envelope, if it is an `E`.
    pub fn decode<E: Event>(&self) -> Result<E, DecodeError> {
        if self.kind != E::TYPE {
            return Err(DecodeError::WrongType {
                expected: E::TYPE,
                found: self.kind.clone(),
            });
        }
        serde_json::from_value(self.data.clone()).map_err(|source| DecodeError::Data {
            kind: E::TYPE,
            version: self.schemaversion,
            source,
        })
    }
}

/// What the document says of one event type.
#[derive(Clone, Copy)]
pub struct MessageSpec {
    pub topic: &'static str,
    pub kind: &'static str,
    pub version: u32,
    pub source: &'static str,
    pub summary: &'static str,
    schema: fn(&mut SchemaGenerator) -> schemars::Schema,
}

impl MessageSpec {
    pub(crate) fn of<E: Event>() -> Self {
        Self {
            topic: E::TOPIC,
            kind: E::TYPE,
            version: E::VERSION,
            source: E::SOURCE,
            summary: E::SUMMARY,
            schema: |g| g.subschema_for::<E>(),
        }
    }

    /// The message's id in the document: unique across topics (one type
    /// name may travel on two topics).
    pub fn id(&self) -> String {
        format!("{}.{}", channel_id(self.topic), self.kind)
    }
}

impl std::fmt::Debug for MessageSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} on {} (v{})", self.kind, self.topic, self.version)
    }
}

fn channel_id(topic: &str) -> String {
    topic.trim_start_matches("pinhole.").replace('.', "-")
}

/// Implements [`Event`] for each listed type and makes the list the
/// catalog that the AsyncAPI document is generated from.
macro_rules! contract {
    ($(
        $ty:ty {
            topic: $topic:expr,
            type: $kind:expr,
            version: $version:literal,
            source: $source:expr,
            key: $($key:ident).+,
            subject: $subject:literal,
            summary: $summary:literal $(,)?
        }
    ),* $(,)?) => {
        $(
            impl $crate::contract::sealed::Sealed for $ty {}
            impl $crate::contract::Event for $ty {
                const TOPIC: &'static str = $topic;
                const TYPE: &'static str = $kind;
                const VERSION: u32 = $version;
                const SOURCE: &'static str = $source;
                const SUMMARY: &'static str = $summary;
                fn key(&self) -> String {
                    self.$($key).+.to_string()
                }
                fn subject(&self) -> String {
                    format!("{}/{}", $subject, self.$($key).+)
                }
            }
        )*

        /// Every event type of the contract.
        pub(crate) fn contract_catalog() -> Vec<$crate::contract::MessageSpec> {
            vec![$($crate::contract::MessageSpec::of::<$ty>()),*]
        }
    };
}
pub(crate) use contract;

/// The AsyncAPI 3.0 document of every event Pinhole's roles send: one
/// channel per topic, one message per event type (the CloudEvents envelope
/// with its `data` schema), one `send` operation per message, and the
/// Kafka key of each message.
pub fn asyncapi() -> Value {
    let mut settings = SchemaSettings::draft07();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut generator = settings.into_generator();

    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for spec in crate::catalog() {
        let channel = channel_id(spec.topic);
        let id = spec.id();
        let data = (spec.schema)(&mut generator);
        messages.insert(
            id.clone(),
            json!({
                "name": spec.kind,
                "title": spec.kind,
                "summary": spec.summary,
                "contentType": "application/cloudevents+json",
                "payload": envelope_schema(&spec, data.to_value()),
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": "the id of the entity the event is about; one entity's events stay in order"},
                        "bindingVersion": "0.5.0",
                    }
                },
            }),
        );
        let entry = channels.entry(channel.clone()).or_insert_with(|| {
            json!({
                "address": spec.topic,
                "title": spec.topic,
                "messages": {},
            })
        });
        entry["messages"][id.as_str()] = json!({"$ref": format!("#/components/messages/{id}")});
        operations.insert(
            format!("send.{id}"),
            json!({
                "action": "send",
                "title": format!("{} sends {}", spec.source, spec.kind),
                "channel": {"$ref": format!("#/channels/{channel}")},
                "messages": [{"$ref": format!("#/channels/{channel}/messages/{id}")}],
            }),
        );
    }
    let schemas: Map<String, Value> = generator.take_definitions(true).into_iter().collect();
    json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Pinhole events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Every event Pinhole's roles send to each other over Kafka (or the embedded log): CloudEvents 1.0 envelopes in structured JSON mode, keyed by the entity they are about. `schemaversion` versions `data` for each `type`.",
        },
        "defaultContentType": "application/cloudevents+json",
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
        },
    })
}

/// The CloudEvents 1.0 envelope around `data`.
fn envelope_schema(spec: &MessageSpec, data: Value) -> Value {
    json!({
        "type": "object",
        "required": ["specversion", "id", "source", "type", "time", "subject", "datacontenttype", "schemaversion", "data"],
        "properties": {
            "specversion": {"type": "string", "const": "1.0"},
            "id": {"type": "string", "format": "uuid", "description": "a UUIDv7, unique and sortable by time"},
            "source": {"type": "string", "const": spec.source},
            "type": {"type": "string", "const": spec.kind},
            "time": {"type": "string", "format": "date-time"},
            "subject": {"type": "string"},
            "datacontenttype": {"type": "string", "const": "application/json"},
            "schemaversion": {"type": "integer", "const": spec.version},
            "data": data,
        },
    })
}
