//! Who owns a cluster: the harness process that created it and is
//! responsible for tearing it down. A cluster whose owner is gone (a
//! SIGKILLed `faultline run`, a crashed `cluster up`) is *stale*: nothing
//! will remove it but `faultline cluster down`. A cluster that `cluster up`
//! finished, or that a run left with `--leave-running`, has no owner: the
//! user keeps it on purpose.
//!
//! A pid alone is not an identity (pids are reused), so the owner is the
//! pid with its start time in clock ticks since boot (`/proc/PID/stat`
//! field 22).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    pub start_ticks: u64,
    /// What the owner is, for people: `faultline run`, `faultline cluster up`.
    pub command: String,
}

impl Owner {
    /// This process, as the owner of a cluster it creates.
    pub fn current(command: &str) -> Owner {
        let pid = std::process::id();
        Owner { pid, start_ticks: start_ticks(pid).unwrap_or(0), command: command.to_string() }
    }

    /// Whether the owner still runs (the same process, not a reused pid).
    pub fn alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// A live process's start time (field 22 of proc(5)), or `None` when there
/// is no such process (or only its zombie).
fn start_ticks(pid: u32) -> Option<u64> {
    let fields = crate::hosts::netns::stat_fields(pid)?;
    if matches!(fields.first()?.as_str(), "Z" | "X" | "x") {
        return None;
    }
    // Counted from the state, field 3.
    fields.get(22 - 3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_or_reused_pid_is_not() {
        let me = Owner::current("test");
        assert!(me.start_ticks > 0 && me.alive());
        assert!(!Owner { start_ticks: me.start_ticks + 1, ..me.clone() }.alive(), "a reused pid is not the owner");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!Owner { pid, start_ticks: 1, command: "true".into() }.alive());
    }
}
