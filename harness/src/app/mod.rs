//! `faultline client SPEC` (hidden): the client applications of a run,
//! each a separate OS process started by `faultline run` with one
//! [`spec::ClientSpec`] as JSON, built on `faultline-client` (the Rust
//! model of Kafka's clients) or on librdkafka (`rdkafka/`), as the spec's
//! [`library::ClientLibrary`] says; the final drain reader is always the
//! harness's own.
//!
//! A client process writes one JSON line per event to its stdout: an op of
//! the public history format (`faultline_checker::op::Op`) with `time` the
//! absolute `CLOCK_MONOTONIC` stamp taken when it happened and `index` 0;
//! the harness, the single history writer, assigns indices, pairs
//! completions and makes times relative to the run's start. A client runs
//! one op at a time per logical process; after an `info` op it goes on
//! under its next process id (the spec's stride), as a Jepsen worker does,
//! and a consumer then assigns afresh. It stops gracefully, after its
//! current op settles, when its stdin closes or receives a line; a closed
//! stdout (the harness is gone) ends it at once.
//!
//! Outcomes follow R1.10: a send is `ok` when acknowledged with offsets,
//! `fail` only when the producer says no attempt could have been appended
//! (`SendOutcome::Failed`), and `info` otherwise; an acks=0 send is always
//! `info`, because nothing acknowledges it.

pub mod consumer;
pub mod coordinator;
pub mod drain;
pub mod library;
pub mod member;
pub mod processing;
pub mod producer;
pub mod rdkafka;
pub mod record;
pub mod spec;
pub mod stall;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use crate::exit::EXIT_BAD_ARGS;
use library::ClientLibrary;
use spec::{ClientSpec, RoleSpec};

#[derive(Args, Debug)]
pub struct ClientArgs {
    /// The client's spec, JSON (written by `faultline run`).
    spec: String,
}

pub fn main(args: ClientArgs) -> ExitCode {
    // Before any thread starts, so that every one inherits it.
    stall::hold_signal();
    let spec = match ClientSpec::from_arg(&args.spec) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::from(EXIT_BAD_ARGS);
        }
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("building the tokio runtime");
    let stop = Arc::new(AtomicBool::new(false));
    watch_stdin(stop.clone());
    let result = runtime.block_on(async {
        match (&spec.role, spec.library) {
            (RoleSpec::Producer(a), ClientLibrary::Faultline) => producer::produce(&spec, a, &stop).await,
            (RoleSpec::Producer(a), ClientLibrary::Librdkafka) => rdkafka::producer::produce(&spec, a, &stop).await,
            (RoleSpec::Consumer(a), ClientLibrary::Faultline) => consumer::consume(&spec, a, &stop).await,
            (RoleSpec::Consumer(a), ClientLibrary::Librdkafka) => rdkafka::consumer::consume(&spec, a, &stop).await,
            // The final reader is the harness's, not the application under
            // test: HTTP where the system has it, else Kafka's protocol.
            (RoleSpec::Drain(a), _) if a.kafka => rdkafka::drain::drain(&spec, a).await,
            (RoleSpec::Drain(a), _) => drain::drain(&spec, a).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(255)
        }
    }
}

/// Sets `stop` when stdin has a line or closes: the harness's graceful stop.
fn watch_stdin(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        stop.store(true, Ordering::SeqCst);
    });
}
