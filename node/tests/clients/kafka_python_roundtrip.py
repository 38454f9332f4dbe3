"""kafka-python against faultline-node's Kafka listener.

Creates a topic (CreateTopics), reads its settings back (DescribeConfigs),
produces COUNT records with acks=all and idempotence, consumes them from
assigned partitions, commits the consumed offsets as a simple consumer
(FindCoordinator, OffsetCommit) and reads the commits back (OffsetFetch).
Prints one JSON object with what it saw; the Rust test asserts on it.

usage: kafka_python_roundtrip.py BROKERS TOPIC PARTITIONS REPLICAS COUNT
"""

import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

DEADLINE_S = 60


def main():
    brokers, topic, partitions, replicas, count = sys.argv[1:6]
    partitions, replicas, count = int(partitions), int(replicas), int(count)
    admin = KafkaAdminClient(bootstrap_servers=brokers, request_timeout_ms=20000)
    admin.create_topics(
        [NewTopic(topic, partitions, replicas, topic_configs={"min.insync.replicas": "2"})],
        timeout_ms=20000,
    )
    described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)], config_filter="all")
    configs = {k: v["value"] for k, v in described["topic"][topic].items()}
    admin.close()

    producer = KafkaProducer(bootstrap_servers=brokers, acks="all", enable_idempotence=True, retries=5)
    futures = [producer.send(topic, key=b"k%d" % i, value=b"v%d" % i) for i in range(count)]
    acked = [f.get(timeout=30) for f in futures]
    producer.flush()
    producer.close()

    tps = [TopicPartition(topic, p) for p in range(partitions)]
    consumer = KafkaConsumer(
        bootstrap_servers=brokers,
        group_id="kafka-python-roundtrip",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    values = []
    deadline = time.monotonic() + DEADLINE_S
    while len(values) < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            values.extend(r.value.decode() for r in records)
    consumer.commit()
    committed = {tp.partition: consumer.committed(tp) for tp in tps}
    ends = consumer.end_offsets(tps)
    consumer.close()
    print(
        json.dumps(
            {
                "acked": len(acked),
                "values": values,
                "configs": configs,
                "committed": {str(p): o for p, o in committed.items()},
                "end_offsets": {str(tp.partition): o for tp, o in ends.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
