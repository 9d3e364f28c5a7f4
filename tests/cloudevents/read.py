"""Reads every record of the given Kafka topics from the beginning, with a
plain Kafka client (confluent-kafka, i.e. librdkafka) and a consumer group
of its own, and parses each as a CloudEvent 1.0 in structured content mode
with the CNCF CloudEvents SDK's Kafka binding.

    python read.py BROKERS GROUP EXPECTED TOPIC...

Stops once EXPECTED records were read (or after 60 s), and prints one line
per record: `OK <topic> <type> <id>`, or `BAD <topic> <offset> <reason>`.
Exits 1 when any record is not a valid CloudEvent.
"""

import json
import sys
import time

from cloudevents.kafka import KafkaMessage, from_structured
from confluent_kafka import Consumer

REQUIRED = ("id", "source", "type", "specversion")


def main() -> int:
    brokers, group, expected, *topics = sys.argv[1:]
    expected = int(expected)
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe(topics)
    read = bad = 0
    deadline = time.monotonic() + 60
    try:
        while read < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                print(f"ERR {msg.error()}", flush=True)
                continue
            read += 1
            where = f"{msg.topic()} {msg.offset()}"
            try:
                event = from_structured(
                    KafkaMessage(
                        headers=dict(msg.headers() or []),
                        key=msg.key(),
                        value=msg.value(),
                    )
                )
                attrs = event.get_attributes()
                missing = [a for a in REQUIRED if not attrs.get(a)]
                if missing:
                    raise ValueError(f"missing {missing}")
                if attrs["specversion"] != "1.0":
                    raise ValueError(f"specversion {attrs['specversion']}")
                if attrs.get("datacontenttype", "application/json") != "application/json":
                    raise ValueError(f"datacontenttype {attrs['datacontenttype']}")
                if not isinstance(event.get_data(), dict):
                    raise ValueError("data is not a JSON object")
                print(f"OK {msg.topic()} {attrs['type']} {attrs['id']}", flush=True)
            except Exception as e:  # every failure is reported, none stops the read
                bad += 1
                print(f"BAD {where} {e!r}: {msg.value()[:200]!r}", flush=True)
    finally:
        consumer.close()
    print(f"read {read} of {expected}, {bad} bad", flush=True)
    return 1 if bad or read < expected else 0


if __name__ == "__main__":
    sys.exit(main())
