//! One cluster's network: a Linux bridge, one network namespace per node
//! with a veth pair into the bridge, and an iptables chain of our own that
//! lets bridged traffic through the host's FORWARD chain.
//!
//! ```text
//!   control (harness, clients): fl-<name>-br  10.x.y.1/24
//!        ├── fl-<name>-1 ══ eth0 in fl-<name>-n1  10.x.y.11
//!        ├── fl-<name>-2 ══ eth0 in fl-<name>-n2  10.x.y.12
//!        └── ...
//! ```
//!
//! Every name derives from the cluster name (at most [`NAME_LEN_MAX`]
//! characters, so that interface names stay within Linux's 15), so parallel
//! clusters never collide. Namespaces get no default route: their traffic
//! cannot leave the /24, let alone the machine.
//!
//! Creation is split in steps the caller records as it goes; [`ClusterNet::destroy`]
//! removes whatever exists of the plan and treats "already gone" as success,
//! so it also cleans up after a harness that died half-way through.
//!
//! Bridged frames traverse the host's iptables FORWARD chain when
//! `br_netfilter` is loaded (Docker sets its policy to DROP). We add one jump
//! from FORWARD to `FAULTLINE-FWD-<name>`, which accepts traffic of our bridge,
//! and remove exactly that at teardown; nobody else's rules are touched.

use std::net::Ipv4Addr;

use faultline_nemesis::HostError;
use serde::{Deserialize, Serialize};

use super::exec::{self, CONTROL_HOST, argv};

/// Longest cluster name: `fl-` + name + `-br` must fit in 15 characters.
pub const NAME_LEN_MAX: usize = 8;
/// Most nodes per cluster; bounds every per-node loop and the address plan.
pub const NODES_MAX: u32 = 32;
/// The control side's host number in the /24 (`.1`).
const CONTROL_HOST_NUMBER: u8 = 1;
/// Node `i` gets host number `NODE_HOST_BASE + i` (`.11`, `.12`, ...).
const NODE_HOST_BASE: u8 = 10;
/// Default subnets are `10.<DEFAULT_SECOND_OCTET>.<k>.0/24`; `k` derives from
/// the cluster name. 10.213/16 is rarely used by Docker, libvirt or VPNs.
const DEFAULT_SECOND_OCTET: u8 = 213;
/// How many default subnets to try before giving up on finding a free one.
const DEFAULT_SUBNET_TRIES_MAX: u32 = 64;
/// How many times a jump to our chain is deleted from FORWARD; bounds the
/// removal loop (we insert exactly one, a crashed retry might leave two).
const JUMP_DELETES_MAX: u32 = 8;

/// An IPv4 /24: the only size the address plan needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    /// The network address (last octet 0).
    pub network: Ipv4Addr,
}

impl Subnet {
    /// Parses `a.b.c.0/24`.
    pub fn parse(s: &str) -> Result<Subnet, String> {
        let (addr, len) = s.split_once('/').ok_or_else(|| format!("subnet {s:?}: expected a.b.c.0/24"))?;
        let network: Ipv4Addr = addr.parse().map_err(|e| format!("subnet {s:?}: {e}"))?;
        if len != "24" || network.octets()[3] != 0 {
            return Err(format!("subnet {s:?}: only /24 networks ending in .0 are supported"));
        }
        if !network.is_private() {
            return Err(format!("subnet {s:?}: must be a private (RFC 1918) range"));
        }
        Ok(Subnet { network })
    }

    pub fn host(&self, number: u8) -> Ipv4Addr {
        let [a, b, c, _] = self.network.octets();
        Ipv4Addr::new(a, b, c, number)
    }

    /// The default subnet candidates for a cluster name, best first.
    pub fn defaults_for(name: &str) -> impl Iterator<Item = Subnet> {
        // FNV-1a: stable across runs and Rust versions, unlike DefaultHasher.
        let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ b as u32).wrapping_mul(0x0100_0193));
        (0..DEFAULT_SUBNET_TRIES_MAX).map(move |k| {
            let third = ((hash >> 8).wrapping_add(k) % 256) as u8;
            Subnet { network: Ipv4Addr::new(10, DEFAULT_SECOND_OCTET, third, 0) }
        })
    }

    fn overlaps(&self, net: Ipv4Addr, prefix_len: u8) -> bool {
        let len = prefix_len.min(24) as u32;
        let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
        u32::from(self.network) & mask == u32::from(net) & mask
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/24", self.network)
    }
}

/// One node's namespace and link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeNet {
    /// The node id, from 1.
    pub id: u32,
    pub netns: String,
    /// The bridge-side end of the veth pair; the other end is `eth0` in the namespace.
    pub veth: String,
    pub ip: Ipv4Addr,
}

/// The plan of one cluster's network; also its record in the state file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNet {
    pub name: String,
    pub subnet: Subnet,
    pub bridge: String,
    /// The bridge's address: where the harness and clients sit.
    pub control_ip: Ipv4Addr,
    /// Our iptables chain in the filter table, jumped to from FORWARD.
    pub chain: String,
    pub nodes: Vec<NodeNet>,
}

/// Checks a cluster name: 1 to [`NAME_LEN_MAX`] of `[a-z0-9]`.
pub fn validate_name(name: &str) -> Result<(), String> {
    let ok_chars = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if name.is_empty() || name.len() > NAME_LEN_MAX || !ok_chars {
        return Err(format!(
            "cluster name {name:?}: use 1 to {NAME_LEN_MAX} characters of a-z and 0-9 \
             (interface names are limited to 15)"
        ));
    }
    Ok(())
}

impl ClusterNet {
    pub fn plan(name: &str, subnet: Subnet, nodes: u32) -> ClusterNet {
        assert!(validate_name(name).is_ok(), "validated by the caller");
        assert!((1..=NODES_MAX).contains(&nodes), "validated by the caller");
        let nodes = (1..=nodes)
            .map(|id| NodeNet {
                id,
                netns: format!("fl-{name}-n{id}"),
                veth: format!("fl-{name}-{id}"),
                ip: subnet.host(NODE_HOST_BASE + id as u8),
            })
            .collect();
        ClusterNet {
            name: name.into(),
            subnet,
            bridge: format!("fl-{name}-br"),
            control_ip: subnet.host(CONTROL_HOST_NUMBER),
            chain: format!("FAULTLINE-FWD-{name}"),
            nodes,
        }
    }

    /// Refuses to build over anything that already exists under our names
    /// (leftovers of a crashed run of the same cluster).
    pub async fn check_absent(&self) -> Result<(), String> {
        let mut found = Vec::new();
        if link_exists(&self.bridge).await.map_err(|e| e.to_string())? {
            found.push(format!("bridge {}", self.bridge));
        }
        let namespaces = list_netns().await.map_err(|e| e.to_string())?;
        found.extend(
            self.nodes.iter().filter(|n| namespaces.contains(&n.netns)).map(|n| format!("namespace {}", n.netns)),
        );
        if chain_exists(&self.chain).await.map_err(|e| e.to_string())? {
            found.push(format!("iptables chain {}", self.chain));
        }
        if found.is_empty() { Ok(()) } else { Err(found.join(", ")) }
    }

    /// The bridge with the control address, up.
    pub async fn create_bridge(&self) -> Result<(), HostError> {
        let br = self.bridge.as_str();
        ip(&["link", "add", br, "type", "bridge", "forward_delay", "0", "stp_state", "0"]).await?;
        ip(&["addr", "add", &format!("{}/24", self.control_ip), "dev", br]).await?;
        ip(&["link", "set", br, "up"]).await
    }

    /// Our chain, accepting our bridge's traffic, jumped to from FORWARD.
    pub async fn create_chain(&self) -> Result<(), HostError> {
        let (chain, br) = (self.chain.as_str(), self.bridge.as_str());
        iptables(&["-N", chain]).await?;
        iptables(&["-A", chain, "-i", br, "-j", "ACCEPT"]).await?;
        iptables(&["-A", chain, "-o", br, "-j", "ACCEPT"]).await?;
        iptables(&["-I", "FORWARD", "1", "-j", chain]).await
    }

    /// One node's namespace, veth pair and addresses.
    pub async fn create_node(&self, node: &NodeNet) -> Result<(), HostError> {
        let (ns, veth) = (node.netns.as_str(), node.veth.as_str());
        ip(&["netns", "add", ns]).await?;
        ip(&["link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns]).await?;
        ip(&["link", "set", veth, "master", &self.bridge, "up"]).await?;
        ip(&["-n", ns, "addr", "add", &format!("{}/24", node.ip), "dev", "eth0"]).await?;
        ip(&["-n", ns, "link", "set", "eth0", "up"]).await?;
        ip(&["-n", ns, "link", "set", "lo", "up"]).await
    }

    /// Whether the control side can reach a node's address right now: our
    /// bridge is up with our address and the node's namespace exists. Checked
    /// before any traffic, so that nothing is ever sent to a private address
    /// without one of our namespaces behind it (it would leave the machine).
    pub async fn can_reach(&self, node: &NodeNet) -> Result<bool, HostError> {
        let out = exec::run(
            CONTROL_HOST,
            &argv(&["ip", "-4", "-o", "addr", "show", "dev", &self.bridge]),
            exec::TOOL_TIMEOUT,
        )
        .await?;
        let bridge_ok =
            out.success() && String::from_utf8_lossy(&out.stdout).contains(&format!(" {}/24 ", self.control_ip));
        Ok(bridge_ok && list_netns().await?.contains(&node.netns))
    }

    /// Removes every part of the plan that exists; returns the real failures
    /// (an already-removed part is not one). Processes must be gone first.
    pub async fn destroy(&self) -> Vec<HostError> {
        let mut failures = Vec::new();
        for node in &self.nodes {
            // Deleting the namespace destroys its veth end and so the pair.
            if let Err(e) = remove_netns(&node.netns).await {
                failures.push(e);
            }
            if let Err(e) = remove_link(&node.veth).await {
                failures.push(e);
            }
        }
        if let Err(e) = remove_link(&self.bridge).await {
            failures.push(e);
        }
        if let Err(e) = remove_chain(&self.chain).await {
            failures.push(e);
        }
        failures
    }
}

/// Checks that `subnet` overlaps none of this machine's routes or addresses.
pub async fn check_subnet_free(subnet: Subnet) -> Result<(), String> {
    let taken = taken_prefixes().await.map_err(|e| e.to_string())?;
    match taken.iter().find(|(net, len, _)| subnet.overlaps(*net, *len)) {
        Some((_, _, line)) => {
            Err(format!("subnet {subnet} collides with this machine's `{line}`; pick another with --subnet"))
        }
        None => Ok(()),
    }
}

/// Every IPv4 prefix this machine routes or owns, with the line it came
/// from. Default routes are skipped: everything overlaps them.
async fn taken_prefixes() -> Result<Vec<(Ipv4Addr, u8, String)>, HostError> {
    const ROUTE_TYPES: &[&str] = &[
        "unicast",
        "local",
        "broadcast",
        "multicast",
        "throw",
        "unreachable",
        "prohibit",
        "blackhole",
        "nat",
        "anycast",
    ];
    let mut taken = Vec::new();
    let routes = exec::run_ok(CONTROL_HOST, &argv(&["ip", "-4", "route", "show", "table", "all"])).await?;
    for line in String::from_utf8_lossy(&routes.stdout).lines() {
        let Some(prefix) = line.split_whitespace().find(|t| !ROUTE_TYPES.contains(t)) else { continue };
        if let Some((net, len)) = parse_prefix(prefix) {
            taken.push((net, len, line.trim().to_string()));
        }
    }
    let addrs = exec::run_ok(CONTROL_HOST, &argv(&["ip", "-4", "-o", "addr", "show"])).await?;
    for line in String::from_utf8_lossy(&addrs.stdout).lines() {
        let mut tokens = line.split_whitespace().skip_while(|t| *t != "inet").skip(1);
        if let Some((net, len)) = tokens.next().and_then(parse_prefix) {
            taken.push((net, len, line.split_whitespace().take(4).collect::<Vec<_>>().join(" ")));
        }
    }
    Ok(taken)
}

/// `a.b.c.d/len` or a bare address (a /32); `None` for `default` and the like.
fn parse_prefix(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
    Some((addr.parse().ok()?, len.parse().ok().filter(|l| *l <= 32)?))
}

async fn ip(args: &[&str]) -> Result<(), HostError> {
    let mut a = argv(&["ip"]);
    a.extend(argv(args));
    exec::run_ok(CONTROL_HOST, &a).await.map(drop)
}

/// `iptables -w`: waits for the xtables lock instead of failing.
async fn iptables(args: &[&str]) -> Result<(), HostError> {
    exec::run_ok(CONTROL_HOST, &iptables_argv(args)).await.map(drop)
}

fn iptables_argv(args: &[&str]) -> Vec<String> {
    let mut a = argv(&["iptables", "-w"]);
    a.extend(argv(args));
    a
}

pub async fn list_netns() -> Result<Vec<String>, HostError> {
    let out = exec::run_ok(CONTROL_HOST, &argv(&["ip", "netns", "list"])).await?;
    // Lines are `name` or `name (id: 3)`.
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

async fn link_exists(name: &str) -> Result<bool, HostError> {
    Ok(exec::run(CONTROL_HOST, &argv(&["ip", "link", "show", "dev", name]), exec::TOOL_TIMEOUT).await?.success())
}

async fn chain_exists(chain: &str) -> Result<bool, HostError> {
    Ok(exec::run(CONTROL_HOST, &iptables_argv(&["-S", chain]), exec::TOOL_TIMEOUT).await?.success())
}

async fn remove_netns(ns: &str) -> Result<(), HostError> {
    if !list_netns().await?.iter().any(|n| n == ns) {
        return Ok(());
    }
    ip(&["netns", "del", ns]).await
}

async fn remove_link(name: &str) -> Result<(), HostError> {
    let a = argv(&["ip", "link", "del", "dev", name]);
    let out = exec::run(CONTROL_HOST, &a, exec::TOOL_TIMEOUT).await?;
    if out.success() || !link_exists(name).await? {
        return Ok(());
    }
    Err(exec::failed(CONTROL_HOST, &a, &out))
}

async fn remove_chain(chain: &str) -> Result<(), HostError> {
    for _ in 0..JUMP_DELETES_MAX {
        let out = exec::run(CONTROL_HOST, &iptables_argv(&["-D", "FORWARD", "-j", chain]), exec::TOOL_TIMEOUT).await?;
        if !out.success() {
            break;
        }
    }
    if !chain_exists(chain).await? {
        return Ok(());
    }
    iptables(&["-F", chain]).await?;
    iptables(&["-X", chain]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names fit Linux's 15-character interface limit for the longest name
    /// and the most nodes; addresses stay inside the /24.
    #[test]
    fn plan_names_fit_and_addresses_stay_in_the_subnet() {
        let subnet = Subnet::parse("10.213.7.0/24").unwrap();
        let plan = ClusterNet::plan("abcdefgh", subnet, NODES_MAX);
        assert!(plan.bridge.len() <= 15, "{}", plan.bridge);
        assert!(plan.nodes.iter().all(|n| n.veth.len() <= 15 && subnet.overlaps(n.ip, 32)));
        assert_eq!(plan.control_ip, Ipv4Addr::new(10, 213, 7, 1));
        assert_eq!(plan.nodes[0].ip, Ipv4Addr::new(10, 213, 7, 11));
        assert!(validate_name("abcdefghi").is_err() && validate_name("A").is_err() && validate_name("").is_err());
    }

    #[test]
    fn subnets_parse_and_overlap() {
        assert!(Subnet::parse("10.1.2.0/16").is_err());
        assert!(Subnet::parse("10.1.2.5/24").is_err());
        assert!(Subnet::parse("8.8.8.0/24").is_err());
        let s = Subnet::parse("10.1.2.0/24").unwrap();
        assert!(s.overlaps(Ipv4Addr::new(10, 0, 0, 0), 8));
        assert!(s.overlaps(Ipv4Addr::new(10, 1, 2, 128), 25));
        assert!(!s.overlaps(Ipv4Addr::new(10, 1, 3, 0), 24));
        assert_eq!(parse_prefix("192.0.2.0/24"), Some((Ipv4Addr::new(192, 0, 2, 0), 24)));
        assert_eq!(parse_prefix("default"), None);
        let a: Vec<_> = Subnet::defaults_for("a").take(2).collect();
        assert_ne!(a[0], a[1]);
        assert_eq!(a[0], Subnet::defaults_for("a").next().unwrap());
    }
}
