//! `system.toml`: how to run a Kafka-protocol cluster faultline did not
//! build (`kind = "external-kafka"`). The user's hosts already have it
//! installed; the file says, per host, how to start and stop a node, how to
//! find its pid, which port its Kafka listener uses and where its log is.
//! Keys at the top apply to every host; a `[hosts.<name>]` table (names from
//! `hosts.toml`) overrides them for one host. Commands are `sh -c` scripts
//! run on the host over SSH, with `{host}`, `{address}` and `{base_dir}`
//! (the host's `base-dir/<cluster>`, which faultline owns) replaced.
//!
//! Every error names the file and the key, and the host where it is one
//! host's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::hosts::hosts_file::SshTarget;

/// Kafka's default listener port.
const KAFKA_PORT_DEFAULT: u16 = 9092;
/// How long a node may take to show a pid after its start command, by default.
const START_TIMEOUT_S_DEFAULT: u64 = 60;
/// Longest accepted start timeout.
const START_TIMEOUT_S_MAX: u64 = 600;

/// The keys a host's commands may have, at the top or in `[hosts.<name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Keys {
    start: Option<String>,
    stop: Option<String>,
    pid: Option<String>,
    pid_file: Option<PathBuf>,
    kafka_port: Option<u16>,
    logs: Option<PathBuf>,
    broker_id: Option<i32>,
}

/// The file as written; the top-level command keys are read into [`Keys`]
/// (which refuses unknown ones) after `kind` and `start-timeout-s`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Doc {
    kind: String,
    #[serde(default)]
    start_timeout_s: Option<u64>,
    #[serde(flatten)]
    keys: BTreeMap<String, toml::Value>,
    #[serde(default)]
    hosts: BTreeMap<String, Keys>,
}

/// Where a node's pid comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PidSource {
    /// A command that prints it (`pgrep -f kafka.Kafka`).
    Command(String),
    /// A file that holds it.
    File(PathBuf),
}

/// One host's node of an external system, placeholders replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalNode {
    pub start: String,
    pub stop: String,
    pub pid: PidSource,
    pub kafka_port: u16,
    /// The node's log file, whose tail is kept with the run.
    pub logs: Option<PathBuf>,
    /// The broker id, when the cluster's Metadata cannot be matched to the
    /// host by address.
    pub broker_id: Option<i32>,
    /// How long the node may take to show a pid after `start`.
    pub start_timeout_s: u64,
}

/// A read and checked `system.toml`.
#[derive(Debug, Clone)]
pub struct SystemFile {
    pub path: PathBuf,
    defaults: Keys,
    hosts: BTreeMap<String, Keys>,
    start_timeout_s: u64,
}

impl SystemFile {
    pub fn load(path: &Path) -> Result<SystemFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        SystemFile::parse(&text, path).map_err(|e| format!("{}: {e}", path.display()))
    }

    fn parse(text: &str, path: &Path) -> Result<SystemFile, String> {
        let doc: Doc = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        if doc.kind != "external-kafka" {
            return Err(format!(
                "kind = {:?}: the only kind a system file describes is \"external-kafka\" (faultline-node is built in)",
                doc.kind
            ));
        }
        let defaults: Keys = toml::Value::Table(doc.keys.into_iter().collect())
            .try_into()
            .map_err(|e: toml::de::Error| e.to_string().trim_end().to_string())?;
        let start_timeout_s = doc.start_timeout_s.unwrap_or(START_TIMEOUT_S_DEFAULT);
        if !(1..=START_TIMEOUT_S_MAX).contains(&start_timeout_s) {
            return Err(format!("start-timeout-s = {start_timeout_s}: must be 1 to {START_TIMEOUT_S_MAX}"));
        }
        Ok(SystemFile { path: path.to_path_buf(), defaults, hosts: doc.hosts, start_timeout_s })
    }

    /// Each host's node, in `hosts` order; `cluster` names the base
    /// directory. Errors name the host and the missing or conflicting key.
    pub fn resolve(&self, hosts: &[SshTarget], cluster: &str) -> Result<Vec<ExternalNode>, String> {
        if let Some(name) = self.hosts.keys().find(|n| !hosts.iter().any(|h| &h.name == *n)) {
            let known: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
            return Err(format!("[hosts.{name}]: no such host in the hosts file; hosts: {}", known.join(", ")));
        }
        hosts.iter().map(|h| self.node(h, cluster)).collect()
    }

    fn node(&self, h: &SshTarget, cluster: &str) -> Result<ExternalNode, String> {
        let own = self.hosts.get(&h.name).cloned().unwrap_or_default();
        let d = &self.defaults;
        let base_dir = h.base_dir.join(cluster);
        let fill = |s: &str| {
            s.replace("{host}", &h.name)
                .replace("{address}", &h.address.to_string())
                .replace("{base_dir}", &base_dir.display().to_string())
        };
        let at = |key: &str| format!("host {}: {key}", h.name);
        let start = own
            .start
            .or(d.start.clone())
            .ok_or_else(|| format!("{}: missing (a command that starts the node)", at("start")))?;
        let stop = own
            .stop
            .or(d.stop.clone())
            .ok_or_else(|| format!("{}: missing (a command that stops the node)", at("stop")))?;
        let pid = match (own.pid.or(d.pid.clone()), own.pid_file.or(d.pid_file.clone())) {
            (Some(cmd), None) => PidSource::Command(fill(&cmd)),
            (None, Some(file)) => PidSource::File(PathBuf::from(fill(&file.display().to_string()))),
            (Some(_), Some(_)) => return Err(format!("{}: give pid or pid-file, not both", at("pid"))),
            (None, None) => {
                return Err(format!("{}: missing: give pid (a command printing it) or pid-file", at("pid")));
            }
        };
        let kafka_port = own.kafka_port.or(d.kafka_port).unwrap_or(KAFKA_PORT_DEFAULT);
        if kafka_port == 0 {
            return Err(format!("{} = 0: give the port of the node's Kafka listener", at("kafka-port")));
        }
        Ok(ExternalNode {
            start: fill(&start),
            stop: fill(&stop),
            pid,
            kafka_port,
            logs: own.logs.or(d.logs.clone()).map(|p| PathBuf::from(fill(&p.display().to_string()))),
            broker_id: own.broker_id,
            start_timeout_s: self.start_timeout_s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, ip: [u8; 4]) -> SshTarget {
        SshTarget {
            name: name.into(),
            address: ip.into(),
            client_address: ip.into(),
            ssh_address: ip.into(),
            user: "root".into(),
            port: 22,
            key: None,
            base_dir: "/var/tmp/faultline".into(),
            iptables: None,
            sudo: false,
        }
    }

    const KAFKA: &str = r#"kind = "external-kafka"
start = "cd /opt/kafka && bin/kafka-server-start.sh -daemon config/server.properties"
stop = "cd /opt/kafka && bin/kafka-server-stop.sh"
pid = "pgrep -f kafka.Kafka"
kafka-port = 9092
logs = "/opt/kafka/logs/server.log"

[hosts.k2]
broker-id = 2
start = "echo {host} {address} {base_dir}"
"#;

    #[test]
    fn defaults_apply_to_every_host_and_a_host_table_overrides_them() {
        let f = SystemFile::parse(KAFKA, Path::new("system.toml")).unwrap();
        let nodes = f.resolve(&[host("k1", [10, 0, 0, 1]), host("k2", [10, 0, 0, 2])], "c").unwrap();
        assert_eq!(nodes[0].pid, PidSource::Command("pgrep -f kafka.Kafka".into()));
        assert_eq!((nodes[0].kafka_port, nodes[0].broker_id, nodes[0].start_timeout_s), (9092, None, 60));
        assert!(nodes[0].start.contains("kafka-server-start.sh -daemon"));
        assert_eq!(nodes[1].start, "echo k2 10.0.0.2 /var/tmp/faultline/c");
        assert_eq!(nodes[1].broker_id, Some(2));
        assert_eq!(nodes[1].stop, nodes[0].stop, "what a host does not override it inherits");
    }

    #[test]
    fn errors_name_the_key_and_the_host() {
        let bad = |text: &str, needle: &str| {
            let e = SystemFile::parse(text, Path::new("s.toml"))
                .and_then(|f| f.resolve(&[host("k1", [10, 0, 0, 1]), host("k2", [10, 0, 0, 2])], "c").map(|_| f))
                .unwrap_err();
            assert!(e.contains(needle), "{e:?} should contain {needle:?}");
        };
        bad("kind = \"faultline-node\"", "only kind");
        bad(&KAFKA.replace("kafka-port = 9092", "kafka-prot = 9092"), "kafka-prot");
        bad(&KAFKA.replace("stop = ", "#"), "host k1: stop: missing");
        bad(&format!("{KAFKA}\npid-file = \"/x\""), "not both");
        bad(&KAFKA.replace("[hosts.k2]", "[hosts.k9]"), "[hosts.k9]: no such host");
        bad(&format!("start-timeout-s = 0\n{KAFKA}"), "start-timeout-s = 0");
        bad(&KAFKA.replace("broker-id = 2", "broker-id = \"two\""), "broker-id");
    }

    /// The Apache Kafka examples of the README and docs/external-kafka.md parse.
    #[test]
    fn the_documented_examples_parse() {
        for doc in ["README.md", "docs/external-kafka.md"] {
            let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(doc)).unwrap();
            let start = text.find("kind = \"external-kafka\"").expect("an example");
            let example = &text[start..start + text[start..].find("```").unwrap()];
            let f = SystemFile::parse(example, Path::new(doc)).unwrap_or_else(|e| panic!("{doc}: {e}"));
            let hosts = [host("kafka1", [10, 0, 0, 11]), host("kafka3", [10, 0, 0, 13])];
            let nodes = f.resolve(&hosts, "c").unwrap_or_else(|e| panic!("{doc}: {e}"));
            assert_eq!(nodes[0].pid, PidSource::Command("pgrep -f '[k]afka\\.Kafka'".into()), "{doc}");
        }
    }
}
