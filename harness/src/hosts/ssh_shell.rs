//! Shells kept open on an SSH host, so that a command costs one round trip
//! on an open channel instead of a new SSH session.
//!
//! A new session is not free: sshd forks, and the login shell runs the
//! user's startup files (a `.bashrc` that sets up a language toolchain can
//! take 100 ms by itself), for every command. A kept shell pays that once.
//! It runs [`DRIVER`]: it reads one base64 line per command (a complete
//! `sh` script), runs it with no stdin, and answers one line: the exit code,
//! then stdout and stderr in base64. Line framing and base64 keep any
//! output intact. Commands keep their own bound (the remote `timeout` in the
//! script); if an answer still does not come within the local bound, the
//! shell is dropped, so a stuck one is never reused.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use faultline_nemesis::CommandOutput;
use openssh::{ChildStdin, ChildStdout, Session, Stdio};
use parking_lot::Mutex;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The loop the kept shell runs; its work files live in a private
/// directory removed when the shell ends.
const DRIVER: &str = r#"dir=$(mktemp -d) || exit 1
trap 'rm -rf "$dir"' EXIT
while IFS= read -r line; do
  printf '%s' "$line" | base64 -d >"$dir/cmd" || exit 1
  sh "$dir/cmd" >"$dir/out" 2>"$dir/err" </dev/null
  code=$?
  printf '%s %s %s\n' "$code" "$(base64 -w0 <"$dir/out")" "$(base64 -w0 <"$dir/err")"
done"#;

/// Longest answer line accepted (base64 of both outputs).
const ANSWER_BYTES_MAX: usize = 64 << 20;

/// One kept shell.
pub struct Shell {
    _child: openssh::Child<Arc<Session>>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// The idle kept shells of one host; a caller takes one (or opens one),
/// and gives it back when its command got an answer.
#[derive(Default)]
pub struct Shells {
    idle: Mutex<Vec<Shell>>,
}

/// `'...'` for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The complete script for `argv`: each word quoted.
pub fn script_of(argv: &[String]) -> String {
    argv.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
}

impl Shells {
    /// Runs `argv` in a kept shell (opened with `prefix`, e.g. `sudo -n`),
    /// bounded by `bound`; `Err` with the reason when the shell failed.
    pub async fn run(
        &self,
        session: &Arc<Session>,
        prefix: &[String],
        argv: &[String],
        bound: Duration,
    ) -> Result<CommandOutput, String> {
        let taken = self.idle.lock().pop();
        let mut shell = match taken {
            Some(s) => s,
            None => open(session, prefix).await?,
        };
        match tokio::time::timeout(bound, ask(&mut shell, &script_of(argv))).await {
            Ok(Ok(out)) => {
                self.idle.lock().push(shell);
                Ok(out)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!("no answer within {bound:?}")),
        }
    }
}

async fn open(session: &Arc<Session>, prefix: &[String]) -> Result<Shell, String> {
    let mut cmd = session.clone().arc_command(prefix.first().map_or("sh", String::as_str));
    if !prefix.is_empty() {
        cmd.args(&prefix[1..]).arg("sh");
    }
    cmd.args(["-c", DRIVER]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = cmd.spawn().await.map_err(|e| format!("opening a shell: {e}"))?;
    let stdin = child.stdin().take().ok_or("no stdin")?;
    let stdout = BufReader::new(child.stdout().take().ok_or("no stdout")?);
    Ok(Shell { _child: child, stdin, stdout })
}

async fn ask(shell: &mut Shell, script: &str) -> Result<CommandOutput, String> {
    let line = format!("{}\n", BASE64.encode(script.as_bytes()));
    shell.stdin.write_all(line.as_bytes()).await.map_err(|e| format!("sending: {e}"))?;
    shell.stdin.flush().await.map_err(|e| format!("sending: {e}"))?;
    let mut answer = String::new();
    let n = (&mut shell.stdout)
        .take(ANSWER_BYTES_MAX as u64)
        .read_line(&mut answer)
        .await
        .map_err(|e| format!("reading: {e}"))?;
    if n == 0 || !answer.ends_with('\n') {
        return Err("the shell ended".into());
    }
    let mut parts = answer.trim_end_matches('\n').splitn(3, ' ');
    let code = parts.next().and_then(|c| c.parse::<i32>().ok()).ok_or("a malformed answer")?;
    let decode = |text: &str| BASE64.decode(text).map_err(|e| format!("a malformed answer (base64: {e})"));
    let stdout = decode(parts.next().unwrap_or_default())?;
    let stderr = decode(parts.next().unwrap_or_default())?;
    Ok(CommandOutput { code: Some(code), stdout, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_sh() {
        let argv = ["sh", "-c", "echo 'x'; exit 3"].map(String::from);
        assert_eq!(script_of(&argv), r#"'sh' '-c' 'echo '\''x'\''; exit 3'"#);
    }
}
