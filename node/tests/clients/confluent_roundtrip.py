"""confluent-kafka (librdkafka) against faultline-node's Kafka listener.

Creates a topic (CreateTopics), reads its settings back (DescribeConfigs),
produces COUNT records with acks=all and idempotence, consumes them from
assigned partitions, commits the consumed offsets as a simple consumer
(FindCoordinator, OffsetCommit) and reads the commits back (OffsetFetch).
Prints one JSON object with what it saw; the Rust test asserts on it.

usage: confluent_roundtrip.py BROKERS TOPIC PARTITIONS REPLICAS COUNT
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

DEADLINE_S = 60


def main():
    brokers, topic, partitions, replicas, count = sys.argv[1:6]
    partitions, replicas, count = int(partitions), int(replicas), int(count)
    admin = AdminClient({"bootstrap.servers": brokers})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=replicas, config={"min.insync.replicas": "2"})
    for future in admin.create_topics([new], request_timeout=20).values():
        future.result(timeout=30)
    resource = ConfigResource("topic", topic)
    configs = {}
    for future in admin.describe_configs([resource], request_timeout=20).values():
        configs = {name: entry.value for name, entry in future.result(timeout=30).items()}

    producer = Producer({"bootstrap.servers": brokers, "acks": "all", "enable.idempotence": True})
    reports = []
    for i in range(count):
        producer.produce(topic, key=b"k%d" % i, value=b"v%d" % i, on_delivery=lambda err, msg: reports.append(err))
        producer.poll(0)
    left = producer.flush(30)
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": "confluent-roundtrip",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    values = []
    deadline = time.monotonic() + DEADLINE_S
    while len(values) < count and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is not None and msg.error() is None:
            values.append(msg.value().decode())
    consumer.commit(asynchronous=False)
    tps = [TopicPartition(topic, p) for p in range(partitions)]
    committed = consumer.committed(tps, timeout=30)
    ends = {tp.partition: consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in tps}
    consumer.close()
    print(
        json.dumps(
            {
                "acked": sum(1 for err in reports if err is None),
                "errors": [str(err) for err in reports if err is not None] + ([f"{left} left"] if left else []),
                "values": values,
                "configs": configs,
                "committed": {str(tp.partition): tp.offset for tp in committed},
                "end_offsets": {str(p): o for p, o in ends.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
