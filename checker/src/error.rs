//! The checker's error type. Anomalies are data, not errors: an `Error` means
//! the input could not be read, never that the system under test misbehaved.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A history line is not valid JSON or does not follow the format.
    /// `line` and `column` are 1-based, as editors count them.
    #[error("line {line}, column {column}: {message}")]
    Malformed { line: u64, column: u64, message: String },

    /// The history, `test.json` or `replicas.json` could not be read.
    // The source is not in the message: a caller printing the error chain
    // would say it twice.
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `test.json` or `replicas.json` is not in the documented shape.
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },

    /// A `--guarantees` item is unknown or has a value out of range.
    #[error("bad guarantee {item:?}: {message}")]
    BadGuarantee { item: String, message: String },

    /// `gen-history` was asked for something it cannot produce.
    #[error("cannot generate: {0}")]
    Generate(String),
}

pub type Result<T> = std::result::Result<T, Error>;
