//! The offsets and admin APIs over the Kafka protocol with a raw client:
//! FindCoordinator (one key and v4's list), simple-consumer OffsetCommit
//! and OffsetFetch with Kafka's per-partition codes, CreateTopics (also
//! `validate_only`, and its refusals) and DescribeConfigs for a topic and
//! this broker.

use std::net::TcpStream;

use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, CreateTopicsRequest, CreateTopicsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, GroupId, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};

use crate::kafka::{call, free_port};
use crate::util::Node;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn topic(name: &str, partitions: i32, configs: &[(&str, &str)]) -> CreatableTopic {
    let configs =
        configs.iter().map(|(k, v)| CreatableTopicConfig::default().with_name(s(k)).with_value(Some(s(v)))).collect();
    CreatableTopic::default()
        .with_name(TopicName(s(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(-1)
        .with_configs(configs)
}

fn create(conn: &mut TcpStream, topics: Vec<CreatableTopic>, validate_only: bool) -> CreateTopicsResponse {
    let req =
        CreateTopicsRequest::default().with_topics(topics).with_timeout_ms(10_000).with_validate_only(validate_only);
    CreateTopicsResponse::decode(&mut call(conn, ApiKey::CreateTopics, 7, &req), 7).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_topics_and_describe_configs_over_the_kafka_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = Node::start(dir.path(), &[&format!("listeners=http://127.0.0.1:0,PLAINTEXT://127.0.0.1:{port}")]);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();

    let checked = create(&mut conn, vec![topic("events", 2, &[("segment.bytes", "4096")])], true);
    assert_eq!(checked.topics[0].error_code, 0, "{checked:?}");
    assert!(node.client().list_topics().await.unwrap().topics.is_empty(), "validate_only creates nothing");

    let created = create(
        &mut conn,
        vec![
            topic("events", 2, &[("segment.bytes", "4096")]),
            topic("__mine", 1, &[]),
            topic("bad", 1, &[("no.such.key", "1")]),
            topic("zero", 0, &[]),
        ],
        false,
    );
    let codes: Vec<i16> = created.topics.iter().map(|t| t.error_code).collect();
    // INVALID_TOPIC_EXCEPTION, INVALID_CONFIG, INVALID_PARTITIONS.
    assert_eq!(codes, [0, 17, 40, 37], "{created:?}");
    assert_eq!((created.topics[0].num_partitions, created.topics[0].replication_factor), (2, 1));
    assert!(created.topics[2].error_message.as_deref().is_some_and(|m| m.contains("no.such.key")), "{created:?}");
    assert_eq!(node.client().describe_topic("events").await.unwrap().partitions.len(), 2);
    let again = create(&mut conn, vec![topic("events", 2, &[])], false);
    assert_eq!(again.topics[0].error_code, 36, "TOPIC_ALREADY_EXISTS");

    let resources = vec![
        DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("events"))
            .with_configuration_keys(None),
        DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("1"))
            .with_configuration_keys(Some(vec![s("min.insync.replicas")])),
        DescribeConfigsResource::default().with_resource_type(2).with_resource_name(s("nope")),
        DescribeConfigsResource::default().with_resource_type(4).with_resource_name(s("9")),
    ];
    let req = DescribeConfigsRequest::default().with_resources(resources).with_include_documentation(true);
    let described = DescribeConfigsResponse::decode(&mut call(&mut conn, ApiKey::DescribeConfigs, 4, &req), 4).unwrap();
    let r = &described.results;
    let segment = r[0].configs.iter().find(|c| *c.name == *"segment.bytes").expect("segment.bytes");
    assert_eq!((segment.value.as_deref(), segment.config_source), (Some("4096"), 1), "the topic's override");
    let min_isr = r[0].configs.iter().find(|c| *c.name == *"min.insync.replicas").unwrap();
    assert_eq!((min_isr.value.as_deref(), min_isr.config_source, min_isr.config_type), (Some("1"), 5, 5));
    assert_eq!(r[1].configs.len(), 1, "only the key asked for: {:?}", r[1]);
    assert!(r[1].configs[0].documentation.is_some());
    assert_eq!((r[2].error_code, r[3].error_code), (3, 42), "unknown topic, another broker: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_consumer_offsets_over_the_kafka_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = Node::start(dir.path(), &[&format!("listeners=http://127.0.0.1:0,PLAINTEXT://127.0.0.1:{port}")]);
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    create(&mut conn, vec![topic("events", 2, &[])], false);

    let find = FindCoordinatorRequest::default().with_key(s("g"));
    let found = FindCoordinatorResponse::decode(&mut call(&mut conn, ApiKey::FindCoordinator, 3, &find), 3).unwrap();
    assert_eq!((found.error_code, found.node_id.0, found.port), (0, 1, i32::from(port)), "{found:?}");
    let batch = FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g"), s("")]);
    let found = FindCoordinatorResponse::decode(&mut call(&mut conn, ApiKey::FindCoordinator, 4, &batch), 4).unwrap();
    let codes: Vec<i16> = found.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, [0, 24], "an empty group id is INVALID_GROUP_ID: {found:?}");

    let partition = |p: i32, offset: i64| {
        OffsetCommitRequestPartition::default().with_partition_index(p).with_committed_offset(offset)
    };
    let commit = |generation: i32| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_generation_id_or_member_epoch(generation)
            .with_topics(vec![
                OffsetCommitRequestTopic::default().with_name(TopicName(s("events"))).with_partitions(vec![
                    partition(0, 5),
                    partition(1, 7),
                    partition(9, 1),
                ]),
            ])
    };
    let answer = OffsetCommitResponse::decode(&mut call(&mut conn, ApiKey::OffsetCommit, 8, &commit(-1)), 8).unwrap();
    let codes: Vec<i16> = answer.topics[0].partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, [0, 0, 3], "partition 9 does not exist: {answer:?}");
    let answer = OffsetCommitResponse::decode(&mut call(&mut conn, ApiKey::OffsetCommit, 8, &commit(3)), 8).unwrap();
    assert_eq!(answer.topics[0].partitions[0].error_code, 25, "UNKNOWN_MEMBER_ID: the group has no such member");

    let fetch = OffsetFetchRequest::default().with_group_id(GroupId(s("g"))).with_topics(Some(vec![
        OffsetFetchRequestTopic::default().with_name(TopicName(s("events"))).with_partition_indexes(vec![0, 1]),
    ]));
    let fetched = OffsetFetchResponse::decode(&mut call(&mut conn, ApiKey::OffsetFetch, 7, &fetch), 7).unwrap();
    let offsets: Vec<i64> = fetched.topics[0].partitions.iter().map(|p| p.committed_offset).collect();
    assert_eq!(offsets, [5, 7], "the generation-3 commit changed nothing: {fetched:?}");
    let all = OffsetFetchRequest::default().with_group_id(GroupId(s("g"))).with_topics(None);
    let fetched = OffsetFetchResponse::decode(&mut call(&mut conn, ApiKey::OffsetFetch, 7, &all), 7).unwrap();
    assert_eq!(fetched.topics[0].partitions.len(), 2, "every committed partition: {fetched:?}");
    let http = node.client().committed_offsets("g").await.unwrap();
    assert_eq!(http.offsets.iter().map(|o| o.offset).collect::<Vec<_>>(), [5, 7], "one store for both APIs");
}

/// DescribeQuorum names the metadata log's leader (the active controller),
/// its epoch and the voters; any other partition is unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_quorum_names_the_active_controller() {
    use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
    use kafka_protocol::messages::{DescribeQuorumRequest, DescribeQuorumResponse};
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let node = Node::start(dir.path(), &[&format!("listeners=http://127.0.0.1:0,PLAINTEXT://127.0.0.1:{port}")]);
    let controller = node.client().cluster().await.unwrap().controller.expect("a controller");
    let mut conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let parts =
        vec![PartitionData::default().with_partition_index(0), PartitionData::default().with_partition_index(1)];
    let req = DescribeQuorumRequest::default().with_topics(vec![
        TopicData::default().with_topic_name(TopicName(s("__cluster_metadata"))).with_partitions(parts),
    ]);
    for version in [0, 1] {
        let resp = DescribeQuorumResponse::decode(&mut call(&mut conn, ApiKey::DescribeQuorum, version, &req), version)
            .unwrap();
        let p = &resp.topics[0].partitions;
        assert_eq!((p[0].error_code, p[0].leader_id.0), (0, controller), "{resp:?}");
        assert!(p[0].leader_epoch >= 1, "the epoch is the Raft term: {resp:?}");
        let voters: Vec<i32> = p[0].current_voters.iter().map(|v| v.replica_id.0).collect();
        assert_eq!(voters, [controller]);
        assert_eq!(p[1].error_code, 3, "UNKNOWN_TOPIC_OR_PARTITION for any other partition");
    }
}
