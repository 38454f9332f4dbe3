//! The run's modes: how the producer sends, how consumers commit and
//! process, what the sink does. They decide which anomalies a run permits,
//! so the checker owns them, and the harness's settings, campaign files,
//! `test.json` and `--guarantees` all use these types.
//!
//! Each type owns its names: the kebab-case words users see are defined
//! once per variant, and `Display`, `FromStr`, serde and (with the `clap`
//! feature) clap's `ValueEnum` all go through them.

use std::fmt;
use std::str::FromStr;

/// A word that names no variant of a mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {given:?}; expected one of: {}", expected.join(", "))]
pub struct UnknownName {
    pub what: &'static str,
    pub given: String,
    pub expected: Vec<&'static str>,
}

/// Defines a mode enum with its names (and extra spellings `FromStr`
/// accepts), `Display`, `FromStr`, serde as those names, and clap's
/// `ValueEnum` under the `clap` feature.
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal $(| $alias:literal)*, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name users write and see.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }

        impl FromStr for $name {
            type Err = UnknownName;
            fn from_str(s: &str) -> Result<Self, UnknownName> {
                match s {
                    $($text $(| $alias)* => Ok($name::$variant),)+
                    _ => Err(UnknownName {
                        what: $what,
                        given: s.to_owned(),
                        expected: Self::ALL.iter().map(|v| v.name()).collect(),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(NameVisitor::<$name>::new())
            }
        }

        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }
            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                Some(clap::builder::PossibleValue::new(self.name()))
            }
        }
    };
}

/// Reads a mode from a string, or from an integer written as one (TOML's
/// `acks = 1`).
struct NameVisitor<T>(std::marker::PhantomData<T>);

impl<T> NameVisitor<T> {
    fn new() -> Self {
        NameVisitor(std::marker::PhantomData)
    }
}

impl<T: FromStr<Err = UnknownName>> serde::de::Visitor<'_> for NameVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a name")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }
    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<T, E> {
        v.to_string().parse().map_err(E::custom)
    }
}

named_enum! {
    /// The producer's `acks`: how many replicas must have a record before
    /// the leader answers. `-1` is Kafka's other spelling of `all`.
    pub enum Acks ("acks") {
        Zero = "0",
        One = "1",
        All = "all" | "-1",
    }
}

named_enum! {
    /// When the producer application counts a record as sent.
    pub enum ProducerMode ("producer mode") {
        /// Awaits each send's outcome.
        Sync = "sync",
        /// Enqueues, and learns the outcome when the callback fires.
        Callback = "callback",
        /// Counts a record as sent once it is enqueued (`enqueue` ops);
        /// records still buffered when the producer dies are gone (R4.10).
        FireAndForget = "fire-and-forget",
    }
}

named_enum! {
    /// When the consumer application commits offsets relative to
    /// processing (`docs/semantics.md` §5, §8.3).
    pub enum CommitStrategy ("commit strategy") {
        /// Kafka's auto-commit: at the start of each poll, the positions
        /// returned by previous polls.
        Auto = "auto",
        /// Manual commit after processing: at-least-once.
        AfterProcess = "after-process",
        /// Manual commit before processing: at-most-once.
        BeforeProcess = "before-process",
    }
}

named_enum! {
    /// How a consumer hands polled records to processing.
    pub enum Processing ("processing") {
        /// Every record of a poll is processed before the next poll.
        Inline = "inline",
        /// Records go to an in-memory queue drained by a worker: an
        /// auto-commit can commit records not yet processed (R5.4).
        Queue = "queue",
    }
}

named_enum! {
    /// How the downstream sink inserts processed records.
    pub enum SinkMode ("sink mode") {
        /// Every processed record is inserted: redeliveries become duplicates.
        Plain = "plain",
        /// A unique key absorbs redelivered records.
        Idempotent = "idempotent",
    }
}

named_enum! {
    /// What a consumer does when the sink refuses a write.
    pub enum OnSinkError ("on-sink-error") {
        /// Drops the records and goes on: their offsets get committed anyway.
        Skip = "skip",
        /// Retries until the write succeeds.
        Retry = "retry",
    }
}

named_enum! {
    /// Where a consumer starts in a partition its group has no committed
    /// offset for (`auto.offset.reset`).
    pub enum OffsetReset ("auto.offset.reset") {
        /// From the log start: nothing is skipped.
        Earliest = "earliest",
        /// From the end: records written before are never processed by the
        /// group (apparent loss, `docs/semantics.md` §8.3 C5).
        Latest = "latest",
    }
}

/// `Option<T>` of a mode, written `"none"` when absent (a run without
/// consumers has no commit strategy, one without a sink no sink mode).
pub mod none_or {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub const NONE: &str = "none";

    pub fn serialize<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_str(NONE),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    /// `"none"` or a name of `T`.
    pub fn parse<T: FromStr>(s: &str) -> Result<Option<T>, T::Err> {
        if s == NONE { Ok(None) } else { s.parse().map(Some) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + serde::Serialize + serde::de::DeserializeOwned,
        T::Err: fmt::Debug,
    {
        for v in all {
            let name = v.to_string();
            assert_eq!(name.parse::<T>().unwrap(), *v);
            assert_eq!(serde_json::to_value(v).unwrap(), serde_json::Value::String(name.clone()));
            assert_eq!(serde_json::from_value::<T>(serde_json::Value::String(name)).unwrap(), *v);
        }
    }

    /// Every mode's name is the same in `Display`, `FromStr` and serde.
    #[test]
    fn names_round_trip_everywhere() {
        round_trips(Acks::ALL);
        round_trips(ProducerMode::ALL);
        round_trips(CommitStrategy::ALL);
        round_trips(Processing::ALL);
        round_trips(SinkMode::ALL);
        round_trips(OnSinkError::ALL);
        round_trips(OffsetReset::ALL);
    }

    #[test]
    fn acks_takes_kafkas_spellings_and_integers() {
        assert_eq!("-1".parse::<Acks>().unwrap(), Acks::All);
        assert_eq!(serde_json::from_str::<Acks>("1").unwrap(), Acks::One);
        assert_eq!(serde_json::from_str::<Acks>("-1").unwrap(), Acks::All);
        let e = "2".parse::<Acks>().unwrap_err();
        assert_eq!(e.to_string(), "unknown acks \"2\"; expected one of: 0, 1, all");
    }

    #[test]
    fn none_or_reads_none_and_names() {
        assert_eq!(none_or::parse::<SinkMode>("none").unwrap(), None);
        assert_eq!(none_or::parse::<SinkMode>("plain").unwrap(), Some(SinkMode::Plain));
        assert!(none_or::parse::<SinkMode>("fancy").is_err());
    }
}
