#!/usr/bin/env bash
# Runs every check zerotouch has, on a fresh machine: installs what the tests need
# (Debian packages, the ESP32-C3 Rust target), then formatting, lints, the no_std build of
# the protocol core for riscv32imc, and the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
# wpa_supplicant and hostapd live in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

step() { printf '\n==> %s\n' "$*"; }
# A clean CI clone never reuses incremental state: skip writing it (faster cold builds).
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL=0; fi
# Every test runner's output is also kept here, for the closing count.
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# --- system packages the tests use for real: wpa_supplicant, hostapd, tshark, PostgreSQL, sqlite3, iproute2 ---
need_pkgs=()
command -v wpa_supplicant >/dev/null || need_pkgs+=(wpasupplicant)
command -v tshark >/dev/null || need_pkgs+=(tshark)
command -v sqlite3 >/dev/null || need_pkgs+=(sqlite3)
command -v hostapd >/dev/null || need_pkgs+=(hostapd)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_pkgs+=(postgresql-15)
command -v nm >/dev/null || need_pkgs+=(binutils)
command -v ip >/dev/null || need_pkgs+=(iproute2)   # netns + veth for the monitor link tests
# The HTTP API tests: curl as an HTTPS client, openssl to make their certificate.
command -v curl >/dev/null || need_pkgs+=(curl)
command -v openssl >/dev/null || need_pkgs+=(openssl)
if [ ${#need_pkgs[@]} -gt 0 ]; then
  step "installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi

step "python cryptography package (for the independent spec check)"
# tools/spec-check uses deterministic ECDSA signing (cryptography >= 44).
cryptography_ok() {
  python3 -c 'import sys, cryptography; sys.exit(int(cryptography.__version__.split(".")[0]) < 44)' 2>/dev/null
}
if ! cryptography_ok; then
  python3 -m pip --version >/dev/null 2>&1 || {
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  }
  # --break-system-packages: Debian's Python refuses user installs without it (PEP 668).
  python3 -m pip install --quiet --user --break-system-packages 'cryptography>=44' \
    || python3 -m pip install --quiet --user 'cryptography>=44'
  cryptography_ok
fi

step "rust targets"
rustup target list --installed | grep -q riscv32imc-unknown-none-elf \
  || rustup target add riscv32imc-unknown-none-elf

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "protocol core builds alone for riscv32imc-unknown-none-elf (ESP32-C3), no std"
# Built on its own so that no host feature unified by the workspace can leak in.
cargo build -p zerotouch-proto --target riscv32imc-unknown-none-elf --release --locked

step "radio-bridge protocol builds alone for riscv32imc-unknown-none-elf (ESP32-C3), no std"
cargo build -p zerotouch-bridge --target riscv32imc-unknown-none-elf --release --locked

step "PROTOCOL.md §10 vectors against an independent Python implementation of the spec"
python3 tools/spec-check/spec_check.py PROTOCOL.md

step "tests"
cargo test --workspace --locked 2>&1 | tee -a "$results"

step "ESP32-C3 firmwares (enrollee, radio bridge): release builds, sizes, host tests of the flash store"
# No ESP32-C3 here: this proves the firmware builds against the core tested above.
LINT=1 bash firmware/build.sh 2>&1 | tee -a "$results"

# One closing line over every test binary above (cargo prints one result line per binary).
# (awk, not grep: a grep that matches nothing would end the script under pipefail.)
passed=$(awk '/^test result: / {n += $4} END {print n + 0}' "$results")
failed=$(awk '/^test result: / {n += $6} END {print n + 0}' "$results")
printf '\nzerotouch: %d passed, %d failed\n' "$passed" "$failed"
