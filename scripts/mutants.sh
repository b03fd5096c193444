#!/usr/bin/env bash
# Mutation testing of zerotouch-proto's security-critical modules with cargo-mutants: every
# mutant (a removed check, an inverted comparison, a function returning a constant) must
# make some test fail. Installs cargo-mutants if it is missing. Results land in
# target/mutants/mutants.out/ (caught.txt, missed.txt, unviable.txt, timeout.txt); TESTING.md
# records the last full run and explains every missed mutant.
#
#   scripts/mutants.sh full            every module below (hours on 2 cores; not CI)
#   scripts/mutants.sh files F...      only these files, e.g. crates/zerotouch-proto/src/cert.rs
#   scripts/mutants.sh diff [BASE]     only mutants on lines changed since BASE (default
#                                      origin/main): the CI mode, minutes for a typical change
#   scripts/mutants.sh sample K/N      the fixed shard K of N (round-robin) of every module
#
# Extra cargo-mutants options can follow after `--`, e.g. `-- --timeout 300 --iterate`.
set -euo pipefail
cd "$(dirname "$0")/.."

MODULES=(crypto cert keys wire channel enrollee configurator)

command -v cargo-mutants >/dev/null || cargo install --locked cargo-mutants

mode=${1:-diff}
shift || true
selection=()
case "$mode" in
  full)
    for m in "${MODULES[@]}"; do selection+=(--file "crates/zerotouch-proto/src/$m.rs"); done
    ;;
  files)
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do selection+=(--file "$1"); shift; done
    ;;
  diff)
    base=origin/main
    if [ $# -gt 0 ] && [ "$1" != "--" ]; then base=$1; shift; fi
    diff_file=$(mktemp)
    trap 'rm -f "$diff_file"' EXIT
    paths=()
    for m in "${MODULES[@]}"; do paths+=("crates/zerotouch-proto/src/$m.rs"); done
    git diff "$base" -- "${paths[@]}" >"$diff_file"
    if [ ! -s "$diff_file" ]; then
      echo "mutants: no change to ${MODULES[*]} since $base; nothing to test"
      exit 0
    fi
    selection+=(--in-diff "$diff_file")
    for m in "${MODULES[@]}"; do selection+=(--file "crates/zerotouch-proto/src/$m.rs"); done
    ;;
  sample)
    shard=${1:?"sample needs K/N, e.g. sample 0/20"}
    shift
    for m in "${MODULES[@]}"; do selection+=(--file "crates/zerotouch-proto/src/$m.rs"); done
    selection+=(--shard "$shard" --sharding round-robin)
    ;;
  *)
    echo "usage: scripts/mutants.sh full | files F... | diff [BASE] | sample K/N [-- OPTS]" >&2
    exit 2
    ;;
esac
[ "${1:-}" = "--" ] && shift

# The proto tests alone judge the proto mutants; a generous timeout for the bit-flip test.
exec cargo mutants --package zerotouch-proto --test-package zerotouch-proto \
  --output target/mutants --timeout 300 "${selection[@]}" "$@"
