//! Network partitions: which host drops whose packets (a *grudge*), the
//! standard shapes that produce one, and installing or healing it as
//! inbound DROP (or TCP reset) rules in each host.
//!
//! Rules live in our own chain, [`CHAIN`], jumped to from INPUT and OUTPUT
//! inside each host's network namespace (or VM): an inbound rule matches a
//! source address (`-s`, never the host's own), an outbound one a
//! destination (`-d`, named [`OUTBOUND`]`<name>` in a grudge), so each only
//! ever matches in its own direction. Heal flushes only that chain and never
//! touches anyone else's rules (a Jepsen complaint). The control host,
//! where the harness and the clients run, is never cut off unless a shape
//! says so ([`CONTROL`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use rand::SeedableRng;
use rand::seq::SliceRandom;

use crate::host::{Host, HostError};

/// Our chain in each host's filter table.
pub const CHAIN: &str = "FAULTLINE";
/// The name that stands for the control host in a grudge.
pub const CONTROL: &str = "control";
/// Prefix of a grudge entry for packets the host *sends*: `to:control`
/// drops what it sends to the control host, while what it receives still
/// arrives (requests are handled, their answers lost).
pub const OUTBOUND: &str = "to:";
/// Prefix of a grudge entry for TCP the host *refuses*: `reset:control`
/// answers every packet from the control host with a reset, so a request
/// in flight fails at once and never arrives later. (A dropped request
/// would: the client's kernel retransmits it after the heal, even once
/// the client gave up on it.)
pub const RESET: &str = "reset:";
/// Bound on one iptables call; they take milliseconds.
const IPTABLES_TIMEOUT: Duration = Duration::from_secs(10);

/// Host name → the names whose packets it drops.
pub type Grudge = BTreeMap<String, BTreeSet<String>>;

/// A partition shape, resolved against the current node names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Cut one node off from every other node (clients still reach it).
    One(String),
    /// Split the nodes into two halves (the smaller half rounded down).
    Halves,
    /// Every node sees a majority, and no two nodes see the same one.
    MajoritiesRing,
    /// Two halves joined by one node that sees both.
    Bridge,
    /// Cut a node off from every other node and from the clients.
    IsolateWithClients(String),
    /// The node's packets to the clients are dropped; the clients' requests
    /// still reach it and replication still flows, so it does the work and
    /// its answers are lost ("the write succeeded, the ack did not").
    MuteToClients(String),
    /// The node resets the clients' TCP connections; it stays in the
    /// cluster, and requests sent to it fail without arriving.
    RefuseClients(String),
    /// Given outright.
    Explicit(Grudge),
}

fn cut(grudge: &mut Grudge, a: &str, b: &str) {
    grudge.entry(a.to_string()).or_default().insert(b.to_string());
    grudge.entry(b.to_string()).or_default().insert(a.to_string());
}

/// The grudge a shape means for `nodes`; random choices come from `seed`.
pub fn grudge(shape: &Shape, nodes: &[String], seed: u64) -> Grudge {
    let mut g = Grudge::new();
    let mut order = nodes.to_vec();
    order.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(seed));
    match shape {
        Shape::One(target) | Shape::IsolateWithClients(target) => {
            for n in nodes.iter().filter(|n| *n != target) {
                cut(&mut g, target, n);
            }
            if matches!(shape, Shape::IsolateWithClients(_)) {
                g.entry(target.clone()).or_default().insert(CONTROL.to_string());
            }
        }
        Shape::Halves => {
            let (a, b) = order.split_at(order.len() / 2);
            for x in a {
                for y in b {
                    cut(&mut g, x, y);
                }
            }
        }
        Shape::MajoritiesRing => {
            // In ring order, each node keeps its nearest neighbours up to a
            // majority and drops the rest.
            let n = order.len();
            let keep = n / 2; // neighbours on each side, counting both directions
            for (i, x) in order.iter().enumerate() {
                for (j, y) in order.iter().enumerate() {
                    let d = (i + n - j) % n;
                    let dist = d.min(n - d);
                    if i != j && dist > keep.div_ceil(2) {
                        g.entry(x.clone()).or_default().insert(y.clone());
                    }
                }
            }
        }
        Shape::Bridge => {
            let mid = order.len() / 2;
            let (a, rest) = order.split_at(mid);
            let b = &rest[1..];
            for x in a {
                for y in b {
                    cut(&mut g, x, y);
                }
            }
        }
        Shape::MuteToClients(target) => {
            g.entry(target.clone()).or_default().insert(format!("{OUTBOUND}{CONTROL}"));
        }
        Shape::RefuseClients(target) => {
            g.entry(target.clone()).or_default().insert(format!("{RESET}{CONTROL}"));
        }
        Shape::Explicit(given) => g = given.clone(),
    }
    g
}

/// One line per host of `grudge`, as the history's fault op shows it:
/// `n1 drops n2,n3`, `n1 drops to:control`, `n1 resets control`.
pub fn describe(grudge: &Grudge) -> Vec<String> {
    let mut out = Vec::new();
    for (node, entries) in grudge {
        let (reset, drop): (Vec<&String>, Vec<&String>) = entries.iter().partition(|e| e.starts_with(RESET));
        if !drop.is_empty() {
            out.push(format!("{node} drops {}", drop.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(",")));
        }
        if !reset.is_empty() {
            let names: Vec<&str> = reset.iter().map(|e| e.trim_start_matches(RESET)).collect();
            out.push(format!("{node} resets {}", names.join(",")));
        }
    }
    out
}

/// Parses a shape name as the CLI and schedules write it: `one:n1`,
/// `isolate:n1`, `mute:n1`, `refuse:n1`, `halves`, `majorities-ring`, `bridge`.
pub fn parse_shape(text: &str) -> Result<Shape, String> {
    match text.split_once(':') {
        Some(("one", n)) => Ok(Shape::One(n.to_string())),
        Some(("isolate", n)) => Ok(Shape::IsolateWithClients(n.to_string())),
        Some(("mute", n)) => Ok(Shape::MuteToClients(n.to_string())),
        Some(("refuse", n)) => Ok(Shape::RefuseClients(n.to_string())),
        None if text == "halves" || text == "majority-minority" => Ok(Shape::Halves),
        None if text == "majorities-ring" => Ok(Shape::MajoritiesRing),
        None if text == "bridge" => Ok(Shape::Bridge),
        _ => Err(format!(
            "unknown partition shape `{text}`; \
             known: one:<node>, isolate:<node>, mute:<node>, refuse:<node>, halves, majorities-ring, bridge"
        )),
    }
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

fn failed<H: Host>(host: &H, command: &str, out: &crate::host::CommandOutput) -> HostError {
    HostError::CommandFailed {
        host: host.name().to_string(),
        command: command.to_string(),
        status: format!("{:?}", out.code),
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// Flushes our chain, then (with rules) makes sure it exists, that INPUT
/// and OUTPUT jump to it, and appends each rule: one command per host, so
/// that a fault over SSH costs one round trip. `$1` is the host's
/// iptables, each further argument one rule's words.
const INSTALL: &str = r#"ipt=$1; shift
"$ipt" -w -F FAULTLINE 2>/dev/null
[ "$#" -eq 0 ] && exit 0
"$ipt" -w -N FAULTLINE 2>/dev/null
for hook in INPUT OUTPUT; do
  "$ipt" -w -C "$hook" -j FAULTLINE 2>/dev/null || "$ipt" -w -I "$hook" -j FAULTLINE || exit 1
done
for rule in "$@"; do
  # A rule is flags and addresses only: split into words on purpose.
  # shellcheck disable=SC2086
  "$ipt" -w -A FAULTLINE $rule || exit 1
done"#;

/// Removes the jumps (bounded), the rules and the chain; fails if it is
/// still there. `$1` is the host's iptables.
const REMOVE: &str = r#"ipt=$1
for hook in INPUT OUTPUT; do
  for _ in 1 2 3 4 5 6 7 8; do "$ipt" -w -D "$hook" -j FAULTLINE 2>/dev/null || break; done
done
"$ipt" -w -F FAULTLINE 2>/dev/null
"$ipt" -w -X FAULTLINE 2>/dev/null
! "$ipt" -w -S FAULTLINE >/dev/null 2>&1"#;

/// Runs `script` on `host` with its iptables and `rules` as arguments.
async fn script<H: Host>(host: &H, script: &str, rules: &[String]) -> Result<(), HostError> {
    let mut argv = args(&["sh", "-c", script, "faultline"]);
    argv.push(host.iptables());
    argv.extend_from_slice(rules);
    let out = host.run(&argv, IPTABLES_TIMEOUT).await?;
    if out.success() { Ok(()) } else { Err(failed(host, &format!("iptables {}", rules.join("; ")), &out)) }
}

/// `script` on every host at once, each with its own rules.
async fn on_all<H: Host>(hosts: &[H], text: &str, rules: Vec<Vec<String>>) -> Result<(), HostError> {
    let runs = hosts.iter().zip(&rules).map(|(h, r)| script(h, text, r));
    futures_util::future::join_all(runs).await.into_iter().collect()
}

/// Installs `grudge`: each host drops inbound packets from the addresses
/// of the hosts it holds a grudge against, and outbound packets to those
/// named [`OUTBOUND`]`<name>`. `addresses` maps every name in
/// the grudge (nodes and [`CONTROL`]) to its address. Replaces whatever
/// partition was there, so the result is exactly this grudge.
pub async fn apply<H: Host>(
    hosts: &[H],
    grudge: &Grudge,
    addresses: &BTreeMap<String, Ipv4Addr>,
) -> Result<(), HostError> {
    let rules = hosts.iter().map(|h| host_rules(h, grudge, addresses)).collect::<Result<Vec<_>, _>>()?;
    on_all(hosts, INSTALL, rules).await
}

/// The rules of `host` for `grudge`, each as `iptables -A FAULTLINE` words.
fn host_rules<H: Host>(
    host: &H,
    grudge: &Grudge,
    addresses: &BTreeMap<String, Ipv4Addr>,
) -> Result<Vec<String>, HostError> {
    let mut rules = Vec::new();
    for entry in grudge.get(host.name()).into_iter().flatten() {
        let (flag, name, verdict) = match (entry.strip_prefix(OUTBOUND), entry.strip_prefix(RESET)) {
            (Some(to), _) => ("-d", to, "DROP"),
            (_, Some(from)) => ("-s", from, "REJECT --reject-with tcp-reset"),
            _ => ("-s", entry.as_str(), "DROP"),
        };
        let ip = addresses.get(name).ok_or_else(|| HostError::CommandFailed {
            host: host.name().to_string(),
            command: "partition".into(),
            status: "no address".into(),
            stderr: format!("the grudge names `{name}`, which is not a host of this cluster"),
        })?;
        if let Some(port) = host.management_port().filter(|_| name == CONTROL) {
            // The harness's own connection (SSH) to the host survives.
            let side = if flag == "-s" { "--dport" } else { "--sport" };
            rules.push(format!("{flag} {ip} -p tcp {side} {port} -j ACCEPT"));
        }
        let tcp = if verdict == "DROP" { "" } else { "-p tcp " };
        rules.push(format!("{flag} {ip} {tcp}-j {verdict}"));
    }
    Ok(rules)
}

/// Removes every partition rule: flushes our chain in every host, all at
/// once. A host without the chain has nothing to heal.
pub async fn heal<H: Host>(hosts: &[H]) -> Result<(), HostError> {
    on_all(hosts, INSTALL, vec![Vec::new(); hosts.len()]).await
}

/// Removes our chain from every host: the jumps from INPUT and OUTPUT, its
/// rules, the chain itself. For hosts whose network outlives the cluster
/// (SSH machines); a namespace's chain goes with the namespace. A host
/// without the chain has nothing to remove.
pub async fn remove_chain<H: Host>(hosts: &[H]) -> Result<(), HostError> {
    on_all(hosts, REMOVE, vec![Vec::new(); hosts.len()]).await
}

/// The rules now in our chain on `host`, for the record and for tests.
pub async fn rules<H: Host>(host: &H) -> Result<Vec<String>, HostError> {
    let out = host.run(&[host.iptables(), "-w".into(), "-S".into(), CHAIN.into()], IPTABLES_TIMEOUT).await?;
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("-A")).map(str::to_string).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    /// Whether `a` and `b` can talk: neither drops the other.
    fn connected(g: &Grudge, a: &str, b: &str) -> bool {
        !g.get(a).is_some_and(|s| s.contains(b)) && !g.get(b).is_some_and(|s| s.contains(a))
    }

    #[test]
    fn one_cuts_a_node_from_the_others_but_not_from_clients() {
        let g = grudge(&Shape::One("n2".into()), &names(3), 1);
        assert!(!connected(&g, "n2", "n1") && !connected(&g, "n2", "n3") && connected(&g, "n1", "n3"));
        assert!(g.values().all(|s| !s.contains(CONTROL)));
        let g = grudge(&Shape::IsolateWithClients("n2".into()), &names(3), 1);
        assert!(g["n2"].contains(CONTROL));
        let g = grudge(&Shape::MuteToClients("n2".into()), &names(3), 1);
        assert_eq!(
            g,
            Grudge::from([("n2".to_string(), BTreeSet::from(["to:control".to_string()]))]),
            "only n2's packets to the clients"
        );
        assert_eq!(parse_shape("mute:n2"), Ok(Shape::MuteToClients("n2".into())));
        let g = grudge(&Shape::RefuseClients("n2".into()), &names(3), 1);
        assert_eq!(g, Grudge::from([("n2".to_string(), BTreeSet::from(["reset:control".to_string()]))]));
        assert_eq!(parse_shape("refuse:n2"), Ok(Shape::RefuseClients("n2".into())));
    }

    #[test]
    fn halves_split_into_a_minority_and_a_majority() {
        let g = grudge(&Shape::Halves, &names(5), 7);
        let n = names(5);
        let cut_off: Vec<&String> = n.iter().filter(|x| n.iter().any(|y| !connected(&g, x, y))).collect();
        assert_eq!(cut_off.len(), 5, "everyone loses someone");
        let sizes: BTreeSet<usize> = n.iter().map(|x| n.iter().filter(|y| connected(&g, x, y)).count()).collect();
        assert_eq!(sizes, BTreeSet::from([2, 3]), "components of 2 and 3");
    }

    #[test]
    fn majorities_ring_gives_every_node_a_distinct_majority() {
        let n = names(5);
        let g = grudge(&Shape::MajoritiesRing, &n, 3);
        let views: BTreeSet<BTreeSet<&String>> =
            n.iter().map(|x| n.iter().filter(|y| connected(&g, x, y)).collect()).collect();
        assert_eq!(views.len(), 5, "no two nodes see the same set");
        assert!(views.iter().all(|v| v.len() == 3), "each sees a majority of 5: {views:?}");
    }

    #[test]
    fn bridge_joins_two_halves_through_one_node() {
        let n = names(5);
        let g = grudge(&Shape::Bridge, &n, 5);
        let bridge: Vec<&String> = n.iter().filter(|x| n.iter().all(|y| connected(&g, x, y))).collect();
        assert_eq!(bridge.len(), 1, "exactly one node sees everyone");
    }

    #[test]
    fn the_same_seed_gives_the_same_partition() {
        assert_eq!(grudge(&Shape::Halves, &names(5), 42), grudge(&Shape::Halves, &names(5), 42));
        assert_eq!(parse_shape("isolate:n3"), Ok(Shape::IsolateWithClients("n3".into())));
        assert!(parse_shape("triangle").unwrap_err().contains("majorities-ring"));
    }
}
