//! Local commands with a time bound, and the preconditions of the namespace
//! backend.
//!
//! Every command the backend runs goes through [`run`]: a kill-on-drop tokio
//! child whose output is captured and which is killed when it outlives its
//! bound, so a wedged `ip` or `iptables` can never hang the harness.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use faultline_nemesis::{CommandOutput, HostError};

/// How long one `ip` or `iptables` invocation may take. They normally take
/// milliseconds; `iptables -w` may wait for the xtables lock held by another
/// run, which is why this is generous.
pub const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

/// The name used for the machine itself in messages.
pub const CONTROL_HOST: &str = "control";

/// Programs the namespace backend needs, with the Debian package of each.
pub const REQUIRED_TOOLS: &[(&str, &str)] = &[("ip", "iproute2"), ("iptables", "iptables")];

/// Runs `argv` on this machine to completion; `host` names it in errors.
pub async fn run(host: &str, argv: &[String], timeout: Duration) -> Result<CommandOutput, HostError> {
    assert!(!argv.is_empty(), "a command needs a program");
    let command = argv.join(" ");
    let child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| HostError::Spawn { host: host.into(), command: command.clone(), source })?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(Ok(out)) => Ok(CommandOutput { code: out.status.code(), stdout: out.stdout, stderr: out.stderr }),
        Ok(Err(source)) => Err(HostError::Spawn { host: host.into(), command, source }),
        // Dropping the future drops the child, which kills it.
        Err(_) => Err(HostError::Timeout { host: host.into(), command, timeout_ms: timeout.as_millis() as u64 }),
    }
}

/// Runs `argv` and turns a non-zero exit into [`HostError::CommandFailed`].
pub async fn run_ok(host: &str, argv: &[String]) -> Result<CommandOutput, HostError> {
    let out = run(host, argv, TOOL_TIMEOUT).await?;
    if out.success() { Ok(out) } else { Err(failed(host, argv, &out)) }
}

pub fn failed(host: &str, argv: &[String], out: &CommandOutput) -> HostError {
    HostError::CommandFailed {
        host: host.into(),
        command: argv.join(" "),
        status: out.code.map_or("killed by a signal".into(), |c| format!("exit {c}")),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// `argv` from string slices.
pub fn argv(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// Finds `program` in `PATH`, as a shell would.
pub fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0))
}

/// Checks, in this order, that we run as root and that `ip` and `iptables`
/// are installed; the error names what is missing and how to get it.
pub fn check_preconditions() -> Result<(), HostError> {
    // The owner of /proc/self is our effective uid.
    let euid = std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(u32::MAX);
    if euid != 0 {
        return Err(HostError::Privilege(format!(
            "network-namespace hosts need root (running as uid {euid}); rerun as root or with sudo"
        )));
    }
    for (program, package) in REQUIRED_TOOLS {
        if which(program).is_none() {
            return Err(HostError::MissingTool { program: program.to_string(), package: package.to_string() });
        }
    }
    Ok(())
}
