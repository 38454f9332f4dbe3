//! `faultline lazyfs`: the power-loss filesystem by hand. `serve` mounts a
//! `faultline-lazyfs` filesystem over a directory and serves it until it is
//! unmounted or gets SIGTERM/SIGINT (the harness starts one per node of a
//! `--disk lazyfs` cluster); `ctl` sends one control command
//! (`lose-unsynced`, `lose-unsynced torn SEED`, `checkpoint`, `pending`)
//! and prints the JSON answer. Exit codes: 0 done, 254 bad arguments, 255
//! failure (no /dev/fuse, not root, no daemon on the socket, a loss that
//! could not be rolled back).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use faultline_lazyfs::control::{self, Command};

use crate::exit::{Failure, report};

#[derive(Args, Debug)]
pub struct LazyfsArgs {
    #[command(subcommand)]
    command: LazyfsCommand,
}

#[derive(Subcommand, Debug)]
enum LazyfsCommand {
    /// Mount over --mount, keeping the data in --backing, until unmounted or signalled.
    Serve {
        /// The real directory that holds the data.
        #[arg(long)]
        backing: PathBuf,
        /// Where the filesystem appears (created if missing).
        #[arg(long)]
        mount: PathBuf,
        /// The control channel's Unix socket.
        #[arg(long)]
        control: PathBuf,
    },
    /// Send one command to a mount's control socket and print the answer.
    Ctl {
        /// The mount's control socket.
        socket: PathBuf,
        /// lose-unsynced, "lose-unsynced torn SEED", checkpoint or pending.
        #[arg(num_args = 1.., required = true)]
        command: Vec<String>,
        /// How long the command may take.
        #[arg(long, default_value_t = 60_000)]
        timeout_ms: u64,
    },
}

pub fn main(args: LazyfsArgs) -> ExitCode {
    report("lazyfs", run(args), |line| println!("{line}"))
}

fn run(args: LazyfsArgs) -> Result<String, Failure> {
    match args.command {
        LazyfsCommand::Serve { backing, mount, control } => {
            let spec = faultline_lazyfs::MountSpec { backing, mountpoint: mount, control };
            faultline_lazyfs::serve(&spec)
                .with_context(|| format!("serving {} over {}", spec.backing.display(), spec.mountpoint.display()))?;
            Ok(format!("unmounted {}", spec.mountpoint.display()))
        }
        LazyfsCommand::Ctl { socket, command, timeout_ms } => {
            let command: Command = command.join(" ").parse().map_err(Failure::BadArgs)?;
            let reply = control::send(&socket, command, Duration::from_millis(timeout_ms))
                .with_context(|| format!("{}: {command}", socket.display()))?;
            let line = serde_json::to_string(&reply).context("printing the reply")?;
            if !reply.ok {
                return Err(Failure::Harness(anyhow::anyhow!("{line}")));
            }
            Ok(line)
        }
    }
}
