#!/usr/bin/env bash
# Provisions one faultline VM (run by Vagrant as root on each VM):
#   - installs iptables (the nemesis's partitions) and iproute2 (ss);
#   - authorises the control key for root, when one is given ($1);
#   - sets the sysctls and limits the nodes need.
# Safe to run again.
set -euo pipefail

control_key=${1:-}

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq iptables iproute2 procps coreutils

if [ -n "$control_key" ]; then
    install -d -m 0700 /root/.ssh
    touch /root/.ssh/authorized_keys
    chmod 0600 /root/.ssh/authorized_keys
    grep -qxF "$control_key" /root/.ssh/authorized_keys || printf '%s\n' "$control_key" >>/root/.ssh/authorized_keys
fi

# Clients reconnect often during faults; nodes keep many files open.
cat >/etc/sysctl.d/90-faultline.conf <<'CONF'
net.core.somaxconn = 4096
net.ipv4.tcp_tw_reuse = 1
net.ipv4.ip_local_port_range = 10240 65000
fs.file-max = 1048576
CONF
sysctl --quiet --system
cat >/etc/security/limits.d/90-faultline.conf <<'CONF'
*    soft nofile 65536
*    hard nofile 65536
root soft nofile 65536
root hard nofile 65536
CONF
