#!/bin/sh
# Turns a fresh mount+UTS namespace (held by the node's long-lived holder process and entered
# with nsenter) into a Pi: its own hostname, its own /etc, /var/log and /var/lib as overlays
# whose upper layers live in the lab work dir (the host's files stay untouched), a private
# /run and /home, and the lab systemctl/journalctl first on every PATH and on the paths sudo
# and production sudoers name. Then it starts the node's units.
# usage: node-init.sh NODE NODE_DIR
set -eu
node=$1
dir=$2
hostname "$node"
for d in etc var/log var/lib; do
  name=$(echo "$d" | tr / -)
  mount -t overlay "okl-$node-$name" -o "lowerdir=/$d,upperdir=$dir/upper/$name,workdir=$dir/work/$name" "/$d"
done
mount -t tmpfs -o mode=0755,size=16m "okl-$node-run" /run
mount -t tmpfs -o mode=0755,size=16m "okl-$node-home" /home
mount --bind "$dir/bin" /usr/local/bin
# Over the production paths too, so sudoers rules naming /usr/bin/systemctl match (sudo compares
# inodes). A bind mount needs an existing target: without systemd installed, only the
# /usr/local/bin copy exists and such rules will not match (the sudo tests then say so).
for tool in systemctl journalctl; do
  if [ -e "/usr/bin/$tool" ]; then
    mount --bind "$dir/bin/$tool" "/usr/bin/$tool"
  else
    echo "node-init: /usr/bin/$tool missing; lab $tool only on /usr/local/bin" >&2
  fi
done
mkdir -p /run/sshd /run/lab /run/redis /home/okome /var/log/okome-lab/journal
chmod 0755 /run/sshd
chown okome: /home/okome
chmod 0755 /var/log/okome-lab /var/log/okome-lab/journal
. /etc/okome-lab/node.env
for unit in $UNITS; do
  systemctl start "$unit"
done
