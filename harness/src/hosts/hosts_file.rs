//! `hosts.toml`: the machines a cluster runs on when they are reached over
//! SSH instead of being network namespaces on this machine.
//!
//! ```toml
//! [defaults]                 # optional; every key may also be set per host
//! user = "root"
//! key = "~/.ssh/faultline"
//! base-dir = "/var/lib/faultline"
//!
//! [[host]]
//! name = "n1"
//! address = "192.168.56.11"
//!
//! [[host]]
//! name = "n2"
//! address = "192.168.56.12"
//! port = 2222
//! client-address = "10.0.0.12"   # where clients reach the node, if not `address`
//! ssh-address = "127.0.0.1"      # where SSH reaches the host, if not `address` (NAT)
//! sudo = true                   # the user is not root
//! iptables = "/usr/sbin/iptables"
//! ```
//!
//! `[defaults]` may also give `control-address`: the address the hosts see
//! the harness and its clients at, when it is not the one SSH reports (a
//! VM reached over a NAT port forward but talking on a private network).
//!
//! [`HostsFile::load`] checks everything that can be checked without a
//! connection: unknown keys, duplicate names and addresses, a key file that
//! is missing, relative paths. Each error names the file, the host and the
//! key, and the fix.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::network::NODES_MAX;

/// SSH's port unless a host says otherwise.
const SSH_PORT: u16 = 22;
/// Where binaries, configs, data and pid files go on a host by default.
const BASE_DIR: &str = "/var/lib/faultline";

/// Keys every `[[host]]` may set and `[defaults]` may give for all.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Defaults {
    #[serde(flatten)]
    common: Common,
    /// Where the hosts see the harness and its clients.
    control_address: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Common {
    /// SSH user; root unless given.
    user: Option<String>,
    /// SSH port.
    port: Option<u16>,
    /// The private key to log in with; `~/` is the harness user's home.
    key: Option<PathBuf>,
    /// The host's directory for binaries, configs, data and pid files.
    base_dir: Option<PathBuf>,
    /// The host's `iptables`, when it is not found in the login PATH.
    iptables: Option<PathBuf>,
    /// Prefix privileged commands with `sudo -n` (the user is not root).
    sudo: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Entry {
    name: String,
    /// The IPv4 address the node listens on and peers and SSH reach.
    address: Ipv4Addr,
    /// Where clients reach the node, when it is not `address` (NAT).
    client_address: Option<Ipv4Addr>,
    /// Where SSH reaches the host, when it is not `address` (NAT).
    ssh_address: Option<Ipv4Addr>,
    #[serde(flatten)]
    common: Common,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    defaults: Defaults,
    #[serde(default)]
    host: Vec<Entry>,
}

/// One machine, with every default applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SshTarget {
    pub name: String,
    pub address: Ipv4Addr,
    pub client_address: Ipv4Addr,
    /// Where SSH connects: `address` unless the file says otherwise.
    pub ssh_address: Ipv4Addr,
    pub user: String,
    pub port: u16,
    pub key: Option<PathBuf>,
    pub base_dir: PathBuf,
    pub iptables: Option<PathBuf>,
    pub sudo: bool,
}

/// The parsed, checked file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsFile {
    pub path: PathBuf,
    pub hosts: Vec<SshTarget>,
    /// Where the hosts see the harness, when SSH's view is not it.
    pub control_address: Option<Ipv4Addr>,
}

impl HostsFile {
    pub fn load(path: &Path) -> Result<HostsFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        HostsFile::parse(path, &text, &home())
    }

    /// Parses `text` (the contents of `path`); `~/` in key paths is `home`.
    pub fn parse(path: &Path, text: &str, home: &Path) -> Result<HostsFile, String> {
        let at = path.display();
        let de = toml::Deserializer::parse(text).map_err(|e| format!("{at}: {e}"))?;
        let raw: Raw =
            serde_path_to_error::deserialize(de).map_err(|e| format!("{at}: {}: {}", e.path(), e.inner()))?;
        if raw.host.is_empty() {
            return Err(format!("{at}: no [[host]] entries; add one per node (name, address)"));
        }
        if raw.host.len() > NODES_MAX as usize {
            return Err(format!("{at}: {} hosts; at most {NODES_MAX} are supported", raw.host.len()));
        }
        let hosts = raw
            .host
            .iter()
            .map(|e| resolve(e, &raw.defaults.common, home).map_err(|why| format!("{at}: host {:?}: {why}", e.name)))
            .collect::<Result<Vec<_>, _>>()?;
        check_unique(&hosts).map_err(|why| format!("{at}: {why}"))?;
        Ok(HostsFile { path: path.to_path_buf(), hosts, control_address: raw.defaults.control_address })
    }
}

fn home() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// One entry with the defaults applied and its paths checked.
fn resolve(e: &Entry, d: &Common, home: &Path) -> Result<SshTarget, String> {
    if e.name.is_empty() || !e.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err("name: use letters, digits and '-'".into());
    }
    let pick = |own: &Option<PathBuf>, default: &Option<PathBuf>| own.clone().or_else(|| default.clone());
    let key = pick(&e.common.key, &d.key).map(|k| expand_home(&k, home));
    if let Some(k) = &key
        && !k.is_file()
    {
        return Err(format!("key: {} does not exist (generate one with ssh-keygen, or fix the path)", k.display()));
    }
    let base_dir = pick(&e.common.base_dir, &d.base_dir).unwrap_or_else(|| PathBuf::from(BASE_DIR));
    let iptables = pick(&e.common.iptables, &d.iptables);
    for (field, p) in [("base-dir", Some(&base_dir)), ("iptables", iptables.as_ref())] {
        if p.is_some_and(|p| !p.is_absolute()) {
            return Err(format!("{field}: {} must be an absolute path on the host", p.unwrap().display()));
        }
    }
    Ok(SshTarget {
        name: e.name.clone(),
        address: e.address,
        client_address: e.client_address.unwrap_or(e.address),
        ssh_address: e.ssh_address.unwrap_or(e.address),
        user: e.common.user.clone().or_else(|| d.user.clone()).unwrap_or_else(|| "root".into()),
        port: e.common.port.or(d.port).unwrap_or(SSH_PORT),
        key,
        base_dir,
        iptables,
        sudo: e.common.sudo.or(d.sudo).unwrap_or(false),
    })
}

fn expand_home(p: &Path, home: &Path) -> PathBuf {
    p.strip_prefix("~").map_or_else(|_| p.to_path_buf(), |rest| home.join(rest))
}

fn check_unique(hosts: &[SshTarget]) -> Result<(), String> {
    for (i, h) in hosts.iter().enumerate() {
        if let Some(other) = hosts[..i].iter().find(|o| o.name == h.name) {
            return Err(format!("two hosts are named {:?} ({} and {})", h.name, other.address, h.address));
        }
        if let Some(other) = hosts[..i].iter().find(|o| (o.ssh_address, o.port) == (h.ssh_address, h.port)) {
            let (a, p) = (h.ssh_address, h.port);
            return Err(format!("hosts {:?} and {:?} are the same machine ({a}:{p})", other.name, h.name));
        }
        if let Some(other) = hosts[..i].iter().find(|o| o.address == h.address) {
            return Err(format!("hosts {:?} and {:?} have the same address {}", other.name, h.name, h.address));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<HostsFile, String> {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".ssh")).unwrap();
        std::fs::write(home.path().join(".ssh/id"), "key").unwrap();
        let text = text.replace("HOME", &home.path().display().to_string());
        HostsFile::parse(Path::new("hosts.toml"), &text, home.path())
    }

    #[test]
    fn defaults_apply_to_every_host_and_a_host_overrides_them() {
        let f = parse(
            r#"
            [defaults]
            user = "fl"
            key = "~/.ssh/id"
            sudo = true
            [[host]]
            name = "n1"
            address = "192.168.56.11"
            [[host]]
            name = "n2"
            address = "192.168.56.12"
            port = 2222
            user = "root"
            sudo = false
            client-address = "10.0.0.12"
            base-dir = "/srv/fl"
            iptables = "/usr/sbin/iptables"
            "#,
        )
        .unwrap();
        let [a, b] = &f.hosts[..] else { panic!("{f:?}") };
        assert_eq!((a.user.as_str(), a.port, a.sudo, a.client_address), ("fl", 22, true, a.address));
        assert!(a.key.as_ref().unwrap().ends_with(".ssh/id") && a.key.as_ref().unwrap().is_absolute());
        assert_eq!(a.base_dir, PathBuf::from(BASE_DIR));
        assert_eq!((b.user.as_str(), b.port, b.sudo), ("root", 2222, false));
        assert_eq!(b.client_address, "10.0.0.12".parse::<Ipv4Addr>().unwrap());
        assert_eq!(
            (b.base_dir.as_path(), b.iptables.as_deref()),
            (Path::new("/srv/fl"), Some(Path::new("/usr/sbin/iptables")))
        );
    }

    /// A VM behind a NAT port forward: SSH goes to the forward, the node
    /// and the clients use the private network.
    #[test]
    fn ssh_and_control_addresses_may_differ_from_the_node_address() {
        let f = parse(
            "[defaults]\ncontrol-address = \"192.168.56.1\"\n[[host]]\nname = \"n1\"\naddress = \"192.168.56.11\"\n\
             ssh-address = \"127.0.0.1\"\nport = 2222\n[[host]]\nname = \"n2\"\naddress = \"192.168.56.12\"\n\
             ssh-address = \"127.0.0.1\"\nport = 2200\n",
        )
        .unwrap();
        assert_eq!(f.control_address, Some(Ipv4Addr::new(192, 168, 56, 1)));
        assert_eq!(
            (f.hosts[0].ssh_address, f.hosts[0].address),
            (Ipv4Addr::LOCALHOST, Ipv4Addr::new(192, 168, 56, 11))
        );
        let same = "[[host]]\nname = \"a\"\naddress = \"10.0.0.1\"\nssh-address = \"127.0.0.1\"\nport = 2222\n\
                    [[host]]\nname = \"b\"\naddress = \"10.0.0.1\"\nssh-address = \"127.0.0.1\"\nport = 2200\n";
        assert!(parse(same).unwrap_err().contains("have the same address 10.0.0.1"));
    }

    /// Each mistake is named with the file, the host and the key.
    #[test]
    fn mistakes_name_the_host_and_the_key() {
        let cases = [
            ("[[host]]\nname = \"n1\"\naddress = \"10.0.0.1\"\nprot = 22\n", "unknown field `prot`"),
            ("[[host]]\nname = \"n1\"\naddress = \"10.0.0\"\n", "host[0].address"),
            ("[[host]]\nname = \"n1\"\naddress = \"10.0.0.1\"\nkey = \"~/.ssh/nope\"\n", "host \"n1\": key:"),
            ("[[host]]\nname = \"n1\"\naddress = \"10.0.0.1\"\nbase-dir = \"rel\"\n", "host \"n1\": base-dir:"),
            ("[[host]]\nname = \"n1\"\naddress = \"10.0.0.1\"\niptables = \"ipt\"\n", "host \"n1\": iptables:"),
            ("[[host]]\nname = \"n 1\"\naddress = \"10.0.0.1\"\n", "host \"n 1\": name:"),
            ("[defaults]\nuser = \"x\"\n", "no [[host]] entries"),
            (
                "[[host]]\nname = \"a\"\naddress = \"10.0.0.1\"\n[[host]]\nname = \"a\"\naddress = \"10.0.0.2\"\n",
                "two hosts are named \"a\"",
            ),
            (
                "[[host]]\nname = \"a\"\naddress = \"10.0.0.1\"\n[[host]]\nname = \"b\"\naddress = \"10.0.0.1\"\n",
                "are the same machine",
            ),
        ];
        for (text, needle) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.starts_with("hosts.toml: ") && e.contains(needle), "{needle:?} in {e:?}");
        }
    }
}
