//! `faultline hosts`: helpers that write a `hosts.toml`.
//!
//! `from-vagrant [DIR]` prints one for the VMs of `vagrant/Vagrantfile`,
//! from `vagrant ssh-config` run there (or a saved copy of its output).

use std::io::Read;
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};

use crate::exit::{Failure, report};
use crate::hosts::vagrant::{DEFAULT_NETWORK, hosts_toml};

/// How long `vagrant ssh-config` may take (it loads every plugin).
const VAGRANT_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Args, Debug)]
pub struct HostsArgs {
    #[command(subcommand)]
    command: HostsCommand,
}

#[derive(Subcommand, Debug)]
enum HostsCommand {
    /// Print a hosts.toml for the VMs of a Vagrant directory (`vagrant ssh-config` run there).
    FromVagrant(FromVagrantArgs),
}

#[derive(Args, Debug)]
struct FromVagrantArgs {
    /// The directory holding the Vagrantfile.
    #[arg(default_value = "vagrant")]
    dir: PathBuf,
    /// Read this saved output of `vagrant ssh-config` instead of running vagrant (`-`: stdin).
    #[arg(long, value_name = "FILE")]
    ssh_config: Option<PathBuf>,
    /// The Vagrantfile's private network, three octets (FAULTLINE_NETWORK there).
    #[arg(long, default_value = DEFAULT_NETWORK)]
    network: String,
}

pub fn main(args: HostsArgs) -> ExitCode {
    let HostsCommand::FromVagrant(a) = args.command;
    report("hosts", from_vagrant(&a), |text| print!("{text}"))
}

fn from_vagrant(a: &FromVagrantArgs) -> Result<String, Failure> {
    let config = match &a.ssh_config {
        Some(p) if p.as_os_str() == "-" => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
            text
        }
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| Failure::BadArgs(format!("--ssh-config {}: {e}", p.display())))?
        }
        None => vagrant_ssh_config(&a.dir)?,
    };
    hosts_toml(&config, &a.network).map_err(Failure::BadArgs)
}

/// `vagrant ssh-config` in `dir`, bounded.
fn vagrant_ssh_config(dir: &std::path::Path) -> Result<String, Failure> {
    if !dir.join("Vagrantfile").is_file() {
        return Err(Failure::BadArgs(format!("{}: no Vagrantfile there", dir.display())));
    }
    let mut child = std::process::Command::new("vagrant")
        .arg("ssh-config")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => anyhow!("`vagrant` not found in PATH; install the `vagrant` package"),
            _ => anyhow!("starting vagrant: {e}"),
        })?;
    let deadline = Instant::now() + VAGRANT_TIMEOUT;
    // Bounded by the deadline: vagrant is killed when it outlives it.
    while child.try_wait().context("waiting for vagrant")?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(anyhow!("`vagrant ssh-config` did not finish within {VAGRANT_TIMEOUT:?}").into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().context("reading vagrant's output")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(anyhow!("`vagrant ssh-config` in {} failed: {}", dir.display(), err.trim()).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
