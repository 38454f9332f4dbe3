//! `faultline hosts from-vagrant`: a `hosts.toml` from what `vagrant
//! ssh-config` prints for the VMs of `vagrant/Vagrantfile`.
//!
//! SSH goes where Vagrant says (a VM's management address, or a NAT port
//! forward on 127.0.0.1 with VirtualBox) as the `vagrant` user with its
//! key and passwordless sudo. The nodes talk on the Vagrantfile's private
//! network: `n<i>` is at `<network>.<10 + i>` and this machine at
//! `<network>.1`, which is where the VMs see the harness and its clients.

use std::fmt::Write;
use std::net::Ipv4Addr;

/// The private network's first three octets unless told otherwise; the
/// Vagrantfile's default too.
pub const DEFAULT_NETWORK: &str = "192.168.56";

/// One `Host` block of `vagrant ssh-config`.
#[derive(Debug, Default, PartialEq, Eq)]
struct Block {
    name: String,
    host_name: Option<String>,
    user: Option<String>,
    port: Option<u16>,
    identity_file: Option<String>,
}

/// The blocks of `text`, in order; an unknown keyword is ignored, a bad
/// value names its line.
fn blocks(text: &str) -> Result<Vec<Block>, String> {
    let mut out: Vec<Block> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let value = value.trim().trim_matches('"').to_string();
        if key.eq_ignore_ascii_case("Host") {
            out.push(Block { name: value, ..Block::default() });
            continue;
        }
        let Some(block) = out.last_mut() else {
            return Err(format!("line {}: `{key}` before any `Host` line", n + 1));
        };
        match key.to_ascii_lowercase().as_str() {
            "hostname" => block.host_name = Some(value),
            "user" => block.user = Some(value),
            "port" => block.port = Some(value.parse().map_err(|_| format!("line {}: Port {value:?}", n + 1))?),
            "identityfile" => block.identity_file = Some(value),
            _ => {}
        }
    }
    if out.is_empty() {
        return Err("no `Host` entries: is any VM up (`vagrant up`)?".into());
    }
    Ok(out)
}

/// `hosts.toml` for the VMs in `ssh_config`, on private network `network`
/// (three octets, `192.168.56`).
pub fn hosts_toml(ssh_config: &str, network: &str) -> Result<String, String> {
    let prefix: Ipv4Addr = format!("{network}.0")
        .parse()
        .map_err(|_| format!("--network {network:?}: expected three octets, e.g. 192.168.56"))?;
    let [a, b, c, _] = prefix.octets();
    let mut text = format!(
        "# Written by `faultline hosts from-vagrant` from `vagrant ssh-config`.\n\
         # SSH goes where Vagrant says; the nodes and the clients use {network}.0/24.\n\
         [defaults]\nsudo = true\ncontrol-address = \"{}\"\n",
        Ipv4Addr::new(a, b, c, 1)
    );
    for block in blocks(ssh_config)? {
        let name = &block.name;
        let i: u8 = name
            .strip_prefix('n')
            .and_then(|i| i.parse().ok())
            .filter(|i| (1..=200).contains(i))
            .ok_or_else(|| format!("Host {name:?}: expected a VM of vagrant/Vagrantfile, named n1, n2, …"))?;
        let ssh: Ipv4Addr = block
            .host_name
            .as_deref()
            .ok_or_else(|| format!("Host {name}: no HostName"))?
            .parse()
            .map_err(|_| format!("Host {name}: HostName is not an IPv4 address"))?;
        let key = block.identity_file.ok_or_else(|| format!("Host {name}: no IdentityFile"))?;
        let _ = write!(
            text,
            "\n[[host]]\nname = \"{name}\"\naddress = \"{}\"\nssh-address = \"{ssh}\"\nport = {}\nuser = \"{}\"\nkey = \"{}\"\n",
            Ipv4Addr::new(a, b, c, 10 + i),
            block.port.unwrap_or(22),
            block.user.as_deref().unwrap_or("vagrant"),
            key.replace('\\', "\\\\").replace('"', "\\\"")
        );
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hosts::hosts_file::HostsFile;
    use std::path::Path;

    /// What `vagrant ssh-config` printed for two VirtualBox VMs (NAT port
    /// forwards on 127.0.0.1), with the key path made a placeholder.
    const VIRTUALBOX: &str = "Host n1
  HostName 127.0.0.1
  User vagrant
  Port 2222
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile \"KEYDIR/n1/virtualbox/private_key\"
  IdentitiesOnly yes
  LogLevel FATAL
  PubkeyAcceptedKeyTypes +ssh-rsa
  HostKeyAlgorithms +ssh-rsa

Host n2
  HostName 127.0.0.1
  User vagrant
  Port 2200
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile \"KEYDIR/n2/virtualbox/private_key\"
  IdentitiesOnly yes
  LogLevel FATAL
";

    /// The same from libvirt: each VM at its management address, port 22.
    const LIBVIRT: &str = "Host n1
  HostName 192.168.121.17
  User vagrant
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile KEYDIR/n1/libvirt/private_key
  IdentitiesOnly yes
  LogLevel FATAL
";

    fn with_keys(recorded: &str, dir: &Path) -> String {
        for n in ["n1", "n2"] {
            for provider in ["virtualbox", "libvirt"] {
                let d = dir.join(n).join(provider);
                std::fs::create_dir_all(&d).unwrap();
                std::fs::write(d.join("private_key"), "key").unwrap();
            }
        }
        recorded.replace("KEYDIR", &dir.display().to_string())
    }

    #[test]
    fn virtualbox_port_forwards_become_ssh_addresses_and_nodes_use_the_private_network() {
        let dir = tempfile::tempdir().unwrap();
        let text = hosts_toml(&with_keys(VIRTUALBOX, dir.path()), DEFAULT_NETWORK).unwrap();
        let f = HostsFile::parse(Path::new("hosts.toml"), &text, dir.path()).unwrap();
        assert_eq!(f.control_address, Some(Ipv4Addr::new(192, 168, 56, 1)));
        let [n1, n2] = &f.hosts[..] else { panic!("{text}") };
        assert_eq!((n1.address, n1.ssh_address, n1.port), (Ipv4Addr::new(192, 168, 56, 11), Ipv4Addr::LOCALHOST, 2222));
        assert_eq!(
            (n2.address, n2.port, n2.user.as_str(), n2.sudo),
            (Ipv4Addr::new(192, 168, 56, 12), 2200, "vagrant", true)
        );
        assert!(n2.key.as_ref().unwrap().ends_with("n2/virtualbox/private_key"));
    }

    #[test]
    fn libvirt_management_addresses_are_where_ssh_goes() {
        let dir = tempfile::tempdir().unwrap();
        let text = hosts_toml(&with_keys(LIBVIRT, dir.path()), "10.9.8").unwrap();
        let f = HostsFile::parse(Path::new("hosts.toml"), &text, dir.path()).unwrap();
        let n1 = &f.hosts[0];
        assert_eq!(
            (n1.address, n1.ssh_address, n1.port),
            (Ipv4Addr::new(10, 9, 8, 11), Ipv4Addr::new(192, 168, 121, 17), 22)
        );
        assert_eq!(f.control_address, Some(Ipv4Addr::new(10, 9, 8, 1)));
    }

    #[test]
    fn what_cannot_be_used_is_named() {
        assert!(hosts_toml("", DEFAULT_NETWORK).unwrap_err().contains("vagrant up"));
        assert!(hosts_toml("HostName x\n", DEFAULT_NETWORK).unwrap_err().contains("line 1"));
        assert!(hosts_toml("Host web\n HostName 1.2.3.4\n", DEFAULT_NETWORK).unwrap_err().contains("n1, n2"));
        assert!(hosts_toml("Host n1\n HostName vm.local\n", DEFAULT_NETWORK).unwrap_err().contains("IPv4"));
        assert!(hosts_toml("Host n1\n Port x\n", DEFAULT_NETWORK).unwrap_err().contains("line 2: Port"));
        assert!(hosts_toml(VIRTUALBOX, "192.168").unwrap_err().contains("--network"));
    }
}
