//! `listeners` and `advertised.listeners`: one `http://host:port` (the
//! HTTP API; required in `listeners`) and at most one
//! `PLAINTEXT://host:port` (Kafka's protocol), comma-separated, in the
//! style of Kafka's own listener syntax.

use std::net::SocketAddr;

use super::ConfigError;

/// The listeners of `listeners` (or `advertised.listeners`): one
/// `http://host:port` (the HTTP API; required in `listeners`) and at most
/// one `PLAINTEXT://host:port` (Kafka's protocol), comma-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listeners {
    pub http: Option<String>,
    pub kafka: Option<String>,
}

pub(super) fn parse_listeners(key: &str, value: &str) -> Result<Listeners, ConfigError> {
    let bad = |why: &str| ConfigError::BadValue {
        key: key.into(),
        value: value.into(),
        expected: format!("http://host:port and optionally PLAINTEXT://host:port, comma-separated ({why})"),
    };
    let mut out = Listeners::default();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (slot, rest) = if let Some(rest) = entry.strip_prefix("http://") {
            (&mut out.http, rest)
        } else if let Some(rest) = entry.strip_prefix("PLAINTEXT://") {
            (&mut out.kafka, rest)
        } else {
            return Err(bad(&format!("{entry:?} has neither scheme")));
        };
        if slot.replace(rest.to_string()).is_some() {
            return Err(bad("each scheme at most once"));
        }
    }
    Ok(out)
}

pub(super) fn parse_listener(value: &str) -> Result<(SocketAddr, Option<SocketAddr>), ConfigError> {
    let bad = || ConfigError::BadValue {
        key: "listeners".into(),
        value: value.into(),
        expected: "http://host:port (with an IP address), optionally ,PLAINTEXT://host:port".into(),
    };
    let l = parse_listeners("listeners", value)?;
    let http = l.http.ok_or_else(bad)?.parse().map_err(|_| bad())?;
    let kafka = l.kafka.map(|k| k.parse().map_err(|_| bad())).transpose()?;
    Ok((http, kafka))
}

#[cfg(test)]
mod tests {
    use super::super::tests::load;

    #[test]
    fn listeners_take_http_and_optionally_kafka_protocol() {
        let c = load("node.id=1\nlisteners=http://127.0.0.1:9092, PLAINTEXT://127.0.0.1:9093").unwrap();
        assert_eq!((c.listener.port(), c.kafka_listener.map(|k| k.port())), (9092, Some(9093)));
        let c =
            load("node.id=1\nlisteners=http://127.0.0.1:1\nadvertised.listeners=http://a:1,PLAINTEXT://a:2").unwrap();
        assert_eq!((c.advertised.as_deref(), c.kafka_advertised.as_deref()), (Some("http://a:1"), Some("a:2")));
        assert_eq!(c.kafka_listener, None);
        for bad in
            ["PLAINTEXT://127.0.0.1:9093", "http://127.0.0.1:1,http://127.0.0.1:2", "http://127.0.0.1:1,ssl://x:1"]
        {
            let e = load(&format!("node.id=1\nlisteners={bad}")).unwrap_err().to_string();
            assert!(e.contains("listeners") && e.contains("PLAINTEXT"), "{bad}: {e}");
        }
    }
}
