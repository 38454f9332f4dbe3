//! Which client library the application under test is built on: faultline's
//! own Rust model of Kafka's producer and consumer over the node's HTTP API,
//! or librdkafka (through the `rdkafka` crate, bundled and pinned) over
//! Kafka's wire protocol. Both record the same history format, so the
//! checker never knows which one ran.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `--client`: the library behind the producer and consumer applications.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientLibrary {
    /// faultline's Rust model of Kafka's clients (accumulator, retries,
    /// idempotence, commit strategies) over the HTTP API.
    #[default]
    Faultline,
    /// librdkafka, the C library behind confluent-kafka-python, -go and
    /// -dotnet, over Kafka's wire protocol.
    Librdkafka,
}

impl ClientLibrary {
    pub const ALL: [ClientLibrary; 2] = [ClientLibrary::Faultline, ClientLibrary::Librdkafka];

    pub fn name(self) -> &'static str {
        match self {
            ClientLibrary::Faultline => "faultline",
            ClientLibrary::Librdkafka => "librdkafka",
        }
    }

    /// The library's version, as `test.json` records it.
    pub fn version(self) -> String {
        match self {
            ClientLibrary::Faultline => env!("CARGO_PKG_VERSION").to_string(),
            ClientLibrary::Librdkafka => rdkafka::util::get_rdkafka_version().1,
        }
    }
}

impl fmt::Display for ClientLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ClientLibrary {
    type Err = String;

    fn from_str(s: &str) -> Result<ClientLibrary, String> {
        ClientLibrary::ALL.into_iter().find(|c| c.name() == s).ok_or_else(|| {
            let names: Vec<&str> = ClientLibrary::ALL.iter().map(|c| c.name()).collect();
            format!("unknown client library {s:?}; known: {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_display_serde_and_clap() {
        for c in ClientLibrary::ALL {
            assert_eq!(c.to_string().parse::<ClientLibrary>().unwrap(), c);
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
            assert_eq!(<ClientLibrary as clap::ValueEnum>::from_str(c.name(), false).unwrap(), c);
        }
        assert!("kafka-go".parse::<ClientLibrary>().unwrap_err().contains("faultline, librdkafka"));
    }

    #[test]
    fn the_bundled_librdkafka_reports_its_pinned_version() {
        assert_eq!(ClientLibrary::Librdkafka.version(), "2.12.1");
    }
}
