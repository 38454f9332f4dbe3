//! Client supervision: each client slot runs its application as a real OS
//! process (`faultline client SPEC`), records the events it prints into the
//! one history, and replaces it under a new process id when it dies, its
//! open ops turned `info` (Jepsen's process + concurrency). The final
//! drain reader runs here too.

use nix::sys::signal::Signal;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use faultline_checker::op::{Op, OpType, Process};
use parking_lot::Mutex;
use tokio::io::AsyncBufReadExt;
use tokio::sync::watch;
use tokio::time::Instant;

use super::plan::{DRAIN_DEADLINE_MS, DRAIN_PROCESSES, REQUEST_TIMEOUT_MS, Role};
use crate::app::library::ClientLibrary;
use crate::app::spec::{ClientSpec, DrainSpec, RoleSpec};
use crate::exit::EXIT_BAD_ARGS;
use crate::history::HistoryWriter;
use crate::store::RunLog;

/// Replacement processes one client slot may start; a slot that keeps
/// dying fails the run instead of looping.
const RESTARTS_PER_SLOT_MAX: u32 = 50;
/// The running executable, on Linux.
const SELF_EXE: &str = "/proc/self/exe";
/// Pause before starting a replacement process.
const RESTART_PAUSE: Duration = Duration::from_millis(200);

/// What the supervisors share.
pub struct Shared {
    pub writer: Arc<Mutex<HistoryWriter>>,
    /// Process ids of slot `k` are `k, k + stride, k + 2 * stride, ...`
    /// (Jepsen's process + concurrency): a client goes on under the next
    /// one after an `info` op, a replacement process takes the next one
    /// after the last its slot used. Every id is used by one process only.
    /// The last [`DRAIN_PROCESSES`] slots are the drain reader's.
    pub stride: u64,
    pub log: Arc<RunLog>,
    pub clients_log: PathBuf,
    pub urls: Vec<String>,
    /// The nodes' Kafka listeners, `host:port`.
    pub kafka: Vec<String>,
    /// The library the producer and consumer applications run on.
    pub library: ClientLibrary,
    /// The workload's topic.
    pub topic: String,
    /// The system speaks only Kafka's protocol (`--system`): the final
    /// reader uses it too.
    pub kafka_only: bool,
    /// The workload's start, for kill times.
    pub started: Instant,
    /// How long a stopped client may take to settle its op and exit.
    pub stop_grace: Duration,
}

/// What the nemesis does to a client process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientSignal {
    /// SIGKILL, once an op is in flight.
    Kill,
    /// SIGSTOP, at once: a long GC pause.
    Pause,
    /// SIGCONT.
    Resume,
    /// SIGUSR1: a consumer's next batch outlasts `max.poll.interval.ms`.
    Stall,
}

/// One client slot: a role and its arguments; the process behind it is
/// replaced when it dies.
pub struct Slot {
    pub role: Role,
    pub index: u32,
    pub first_process: u64,
    /// What the slot's processes do.
    pub spec: RoleSpec,
    /// Signal the slot's process at these times into the workload.
    pub kills: Vec<(Duration, ClientSignal)>,
    /// The client's `request.timeout.ms`.
    pub request_timeout_ms: u64,
}

impl Slot {
    fn label(&self) -> String {
        format!("{} {}", self.role.name(), self.index)
    }
}

/// A running client process: kill-on-drop, stdin held open until a
/// graceful stop, stdout read line by line.
struct ClientProc {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

fn spawn_client(
    shared: &Shared,
    role: &RoleSpec,
    process: u64,
    stride: u64,
    request_timeout_ms: u64,
) -> anyhow::Result<ClientProc> {
    // This very executable, even if a rebuild replaced the file since it
    // started (a long campaign outlives many builds).
    let exe = match std::path::Path::new(SELF_EXE) {
        p if p.exists() => p.to_path_buf(),
        _ => std::env::current_exe().context("locating the faultline binary")?,
    };
    let stderr = std::fs::File::options()
        .create(true)
        .append(true)
        .open(&shared.clients_log)
        .with_context(|| format!("opening {}", shared.clients_log.display()))?;
    let spec = ClientSpec {
        process,
        process_stride: stride,
        library: shared.library,
        bootstrap: shared.urls.clone(),
        kafka_bootstrap: shared.kafka.clone(),
        topic: shared.topic.clone(),
        request_timeout_ms,
        role: role.clone(),
    };
    // A client never outlives its harness: when a SIGKILLed run cannot stop
    // it, the kernel does.
    let mut cmd = std::process::Command::new(exe);
    faultline_nemesis::process::die_with_parent(&mut cmd);
    let mut child = tokio::process::Command::from(cmd)
        .arg("client")
        .arg(spec.to_arg())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .kill_on_drop(true)
        .spawn()
        .context("starting a client process")?;
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped");
    Ok(ClientProc { child, stdin, lines: tokio::io::BufReader::new(stdout).lines() })
}

/// Records one event line of a client whose ids must pass `allowed`, and
/// returns its type and process id; `Err` means the client broke the
/// protocol.
fn record_line(shared: &Shared, line: &str, allowed: impl Fn(u64) -> bool) -> anyhow::Result<(OpType, u64)> {
    let op: Op = serde_json::from_str(line).with_context(|| format!("client event {line:?}"))?;
    let Process::Client(p) = op.process else { bail!("client event for the nemesis: {line:?}") };
    anyhow::ensure!(allowed(p), "client event for process {p}, which is not this client's");
    let op_type = op.op_type;
    shared.writer.lock().record(op)?;
    Ok((op_type, p))
}

/// Runs one client slot until it is told to stop: starts its process,
/// records its events, replaces it with a new process id when it dies.
pub async fn supervise(shared: Arc<Shared>, slot: Slot, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    let mut kills: Vec<(Instant, ClientSignal)> = slot.kills.iter().map(|(t, s)| (shared.started + *t, *s)).collect();
    kills.sort_by_key(|(t, _)| *t);
    let mut process = slot.first_process;
    for restart in 0..=RESTARTS_PER_SLOT_MAX {
        if restart > 0 {
            process += shared.stride;
        }
        let mut run = ProcessRun::start(&shared, &slot, process)?;
        run.watch(&mut stop, &mut kills).await;
        process = run.process;
        run.finish().await?;
        if *stop.borrow() {
            return Ok(());
        }
        tokio::time::sleep(RESTART_PAUSE).await;
    }
    bail!("{} died {RESTARTS_PER_SLOT_MAX} times; giving up", slot.label())
}

/// One process of a slot, from its start to its exit.
struct ProcessRun<'a> {
    shared: &'a Shared,
    slot: &'a Slot,
    proc: ClientProc,
    pid: u32,
    /// The first id this process was given.
    first: u64,
    /// The highest id it has used.
    process: u64,
    /// A client uses several ids at once (an async producer's in-flight
    /// slots, a consumer's queue worker), all of its slot: those seen, and
    /// those with an op open.
    seen: BTreeSet<u64>,
    open: BTreeSet<u64>,
    stop_deadline: Option<Instant>,
    protocol_error: Option<anyhow::Error>,
    /// A kill waits for the next invoke, so that it is certain to leave an
    /// op open.
    kill_pending: bool,
}

impl<'a> ProcessRun<'a> {
    fn start(shared: &'a Shared, slot: &'a Slot, process: u64) -> anyhow::Result<ProcessRun<'a>> {
        let proc = spawn_client(shared, &slot.spec, process, shared.stride, slot.request_timeout_ms)?;
        let pid = proc.child.id().unwrap_or(0);
        shared.log.info(format!("{}: process {process} started (pid {pid})", slot.label()));
        Ok(ProcessRun {
            shared,
            slot,
            proc,
            pid,
            first: process,
            process,
            seen: BTreeSet::new(),
            open: BTreeSet::new(),
            stop_deadline: None,
            protocol_error: None,
            kill_pending: false,
        })
    }

    /// Records the process's events until its stdout ends, which a kill or
    /// the stop grace forces: the loop's bound.
    async fn watch(&mut self, stop: &mut watch::Receiver<bool>, kills: &mut Vec<(Instant, ClientSignal)>) {
        if *stop.borrow() {
            self.begin_stop();
        }
        loop {
            let next_kill = kills.first().map(|(t, _)| *t);
            let stopping = self.stop_deadline;
            tokio::select! {
                line = self.proc.lines.next_line() => match line {
                    Ok(Some(l)) => self.on_line(&l),
                    Ok(None) | Err(_) => return,
                },
                r = stop.changed(), if stopping.is_none() => {
                    if r.is_err() || *stop.borrow() {
                        self.begin_stop();
                    }
                }
                _ = tokio::time::sleep_until(stopping.unwrap_or_else(Instant::now)), if stopping.is_some() => {
                    self.shared.log.info(format!(
                        "{}: process {} did not stop within {:?}; SIGKILL",
                        self.slot.label(),
                        self.process,
                        self.shared.stop_grace
                    ));
                    let _ = self.proc.child.start_kill();
                    self.stop_deadline = Some(Instant::now() + self.shared.stop_grace);
                }
                _ = tokio::time::sleep_until(next_kill.unwrap_or_else(Instant::now)),
                    if next_kill.is_some() && stopping.is_none() => {
                    match kills.remove(0).1 {
                        ClientSignal::Kill if self.open.is_empty() => self.kill_pending = true,
                        ClientSignal::Kill => self.kill(),
                        ClientSignal::Pause => self.signal(Signal::SIGSTOP),
                        ClientSignal::Resume => self.signal(Signal::SIGCONT),
                        ClientSignal::Stall => self.signal(Signal::SIGUSR1),
                    }
                }
            }
        }
    }

    /// EOF on stdin: the client finishes its current op and exits (resumed
    /// first, should the nemesis have paused it).
    fn begin_stop(&mut self) {
        if let Some(pid) = self.proc.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGCONT);
        }
        self.proc.stdin = None;
        self.stop_deadline = Some(Instant::now() + self.shared.stop_grace);
    }

    fn on_line(&mut self, line: &str) {
        let (first, stride) = (self.first, self.shared.stride);
        // The client's current id, or a later one of its slot.
        match record_line(self.shared, line, |p| p >= first && (p - first).is_multiple_of(stride)) {
            Ok((t, p)) => {
                self.seen.insert(p);
                self.process = self.process.max(p);
                if t == OpType::Invoke {
                    self.open.insert(p);
                } else {
                    self.open.remove(&p);
                }
                if !self.open.is_empty() && self.kill_pending {
                    self.kill_pending = false;
                    self.kill();
                }
            }
            Err(e) => {
                self.shared.log.warn(format!("{}: process {}: {e:#}; killing it", self.slot.label(), self.process));
                self.protocol_error = Some(e);
                let _ = self.proc.child.start_kill();
            }
        }
    }

    fn signal(&self, signal: Signal) {
        self.shared.log.info(format!("{}: {signal} process {} (pid {})", self.slot.label(), self.process, self.pid));
        if let Some(pid) = self.proc.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
        }
    }

    fn kill(&self) {
        self.shared.log.info(format!(
            "{}: SIGKILL process {} (pid {}) with an op in flight",
            self.slot.label(),
            self.process,
            self.pid
        ));
        if let Some(pid) = self.proc.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Waits for the exit, turns the open ops `info`, and fails the slot
    /// when the client broke the protocol or refused its arguments.
    async fn finish(mut self) -> anyhow::Result<()> {
        let (status, bad_args) = match tokio::time::timeout(self.shared.stop_grace, self.proc.child.wait()).await {
            Ok(Ok(s)) => (s.to_string(), s.code() == Some(i32::from(EXIT_BAD_ARGS))),
            _ => {
                let _ = self.proc.child.start_kill();
                ("did not exit".into(), false)
            }
        };
        let mut crashed = false;
        for p in &self.seen {
            crashed |= self
                .shared
                .writer
                .lock()
                .crash(Process::Client(*p), &format!("client process exited ({status}) with the op in flight"))?;
        }
        let label = self.slot.label();
        let open = if crashed { "; its open ops are info" } else { "" };
        self.shared.log.info(format!("{label}: process {} exited ({status}){open}", self.process));
        if let Some(e) = self.protocol_error {
            return Err(e.context(format!("{label} broke the event protocol")));
        }
        if bad_args {
            bail!("{label}: the client refused its arguments (see clients.log)");
        }
        Ok(())
    }
}

/// Step 5 of the final phase: a fresh reader (two process ids never used
/// before: the drain op and its polls).
pub async fn run_drain(shared: &Arc<Shared>, targets: &[(u32, i64)]) -> anyhow::Result<()> {
    let process = shared.stride - DRAIN_PROCESSES;
    let kafka = shared.kafka_only;
    let role = RoleSpec::Drain(DrainSpec { targets: targets.to_vec(), deadline_ms: DRAIN_DEADLINE_MS, kafka });
    let mut proc = spawn_client(shared, &role, process, 0, REQUEST_TIMEOUT_MS)?;
    proc.stdin = None;
    let bound = Duration::from_millis(DRAIN_DEADLINE_MS) + shared.stop_grace;
    let read = async {
        while let Some(l) = proc.lines.next_line().await.context("reading the drain reader")? {
            record_line(shared, &l, |p| p == process || p == process + 1)?;
        }
        anyhow::Ok(())
    };
    let r = tokio::time::timeout(bound, read).await;
    let _ = proc.child.start_kill();
    let _ = proc.child.wait().await;
    for p in [process, process + 1] {
        shared.writer.lock().crash(Process::Client(p), "drain reader exited with the op in flight")?;
    }
    match r {
        Ok(r) => r,
        Err(_) => bail!("the drain reader did not finish within {bound:?}"),
    }
}
