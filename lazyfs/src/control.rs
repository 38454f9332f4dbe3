//! The control channel: a Unix socket beside the mount. A client connects,
//! sends one command line, and reads one JSON line back. The harness's
//! `power-loss` fault sends `lose-unsynced` right after it has killed the
//! node, before it restarts it.

use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::fs::State;
use crate::journal::{Loss, Pending};

/// What a client asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Drop every unsynced change.
    LoseUnsynced,
    /// Drop unsynced changes but keep a random prefix of each file's
    /// unsynced writes, drawn from this seed (a partly written page).
    LoseUnsyncedTorn(u64),
    /// Make everything durable.
    Checkpoint,
    /// How much is unsynced.
    Pending,
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::LoseUnsynced => f.write_str("lose-unsynced"),
            Command::LoseUnsyncedTorn(seed) => write!(f, "lose-unsynced torn {seed}"),
            Command::Checkpoint => f.write_str("checkpoint"),
            Command::Pending => f.write_str("pending"),
        }
    }
}

impl FromStr for Command {
    type Err = String;

    fn from_str(s: &str) -> Result<Command, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        match words.as_slice() {
            ["lose-unsynced"] => Ok(Command::LoseUnsynced),
            ["lose-unsynced", "torn", seed] => seed
                .parse()
                .map(Command::LoseUnsyncedTorn)
                .map_err(|_| format!("torn seed {seed:?} is not an unsigned integer")),
            ["checkpoint"] => Ok(Command::Checkpoint),
            ["pending"] => Ok(Command::Pending),
            _ => Err(format!(
                "unknown command {s:?}: expected lose-unsynced, lose-unsynced torn SEED, checkpoint or pending"
            )),
        }
    }
}

/// The answer, one JSON line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Reply {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<LossReply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<PendingReply>,
}

/// [`Loss`] as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LossReply {
    pub files: usize,
    pub bytes_lost: u64,
    pub bytes_kept: u64,
    pub metadata_changes: usize,
}

/// [`Pending`] as it travels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PendingReply {
    pub writes: usize,
    pub bytes: u64,
    pub metadata_changes: usize,
}

impl From<Loss> for LossReply {
    fn from(l: Loss) -> Self {
        LossReply {
            files: l.files,
            bytes_lost: l.bytes_lost,
            bytes_kept: l.bytes_kept,
            metadata_changes: l.metadata_changes,
        }
    }
}

impl From<Pending> for PendingReply {
    fn from(p: Pending) -> Self {
        PendingReply { writes: p.writes, bytes: p.bytes, metadata_changes: p.metadata_changes }
    }
}

impl Reply {
    fn failed(error: String) -> Reply {
        Reply { ok: false, error: Some(error), loss: None, pending: None }
    }

    fn done() -> Reply {
        Reply { ok: true, error: None, loss: None, pending: None }
    }
}

/// Carries out one command on the filesystem's state.
pub fn execute(state: &Mutex<State>, command: Command) -> Reply {
    let mut s = state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let outcome = match command {
        Command::LoseUnsynced => s.dir.lose_unsynced(None).map(|l| Reply { loss: Some(l.into()), ..Reply::done() }),
        Command::LoseUnsyncedTorn(seed) => {
            s.dir.lose_unsynced(Some(seed)).map(|l| Reply { loss: Some(l.into()), ..Reply::done() })
        }
        Command::Checkpoint => s.dir.checkpoint().map(|()| Reply::done()),
        Command::Pending => Ok(Reply { pending: Some(s.dir.pending().into()), ..Reply::done() }),
    };
    outcome.unwrap_or_else(|e| Reply::failed(e.to_string()))
}

/// Answers connections on `listener` until it fails; one command each.
pub fn serve(listener: UnixListener, state: Arc<Mutex<State>>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let _ = answer(stream, &state);
            }
            // One failed accept (EMFILE, ECONNABORTED) must not end the channel.
            Err(e) => eprintln!("faultline-lazyfs: control channel: accept: {e}"),
        }
    }
}

fn answer(stream: UnixStream, state: &Mutex<State>) -> io::Result<()> {
    // A client that connects and says nothing must not hold the channel.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = String::new();
    BufReader::new(&stream).take_line(&mut line)?;
    let reply = match line.trim().parse::<Command>() {
        Ok(command) => execute(state, command),
        Err(e) => Reply::failed(e),
    };
    let mut out = serde_json::to_string(&reply).expect("a reply serializes");
    out.push('\n');
    (&stream).write_all(out.as_bytes())
}

trait TakeLine {
    fn take_line(self, line: &mut String) -> io::Result<usize>;
}

impl<R: BufRead> TakeLine for R {
    /// One line of at most 4 KiB: commands are short.
    fn take_line(self, line: &mut String) -> io::Result<usize> {
        self.take(4096).read_line(line)
    }
}

/// Sends `command` to the filesystem whose control socket is `socket`.
pub fn send(socket: &Path, command: Command, timeout: Duration) -> io::Result<Reply> {
    let stream = UnixStream::connect(socket)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    (&stream).write_all(format!("{command}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(&stream).take_line(&mut line)?;
    serde_json::from_str(&line).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("{line:?}: {e}")))
}
