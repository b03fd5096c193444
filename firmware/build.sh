#!/usr/bin/env bash
# Builds the ESP32-C3 enrollee firmware (release), prints its footprint, and runs the host
# tests of its flash store (power cuts at every flash operation) and of its policy (radio
# error backoff, market channels, timer fairness, watchdog feeding).
# Needs: rustup (stable), python3 and binutils (`nm`, `size`: they read RISC-V ELF).
# Honours CARGO_TARGET_DIR (the store and policy tests then use "$CARGO_TARGET_DIR-store"
# and "$CARGO_TARGET_DIR-policy").
# SKIP_STORE_TESTS=1 skips the host tests; LINT=1 also runs clippy (warnings are errors) on
# both crates. Extra arguments go to the firmware's `cargo build`.
set -euo pipefail
cd "$(dirname "$0")"

target=riscv32imc-unknown-none-elf
if ! rustup target list --installed | grep -qx "$target"; then
  echo "==> installing the rustup target $target"
  rustup target add "$target"
fi

echo "==> cargo fmt --check (firmware, store, policy)"
(cd esp32c3-enrollee && cargo fmt -- --check)
(cd store && cargo fmt -- --check)
(cd policy && cargo fmt -- --check)

store_target="${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR-store}"
policy_target="${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR-policy}"
if [ "${LINT:-0}" = 1 ]; then
  echo "==> cargo clippy (firmware, store, policy; warnings are errors)"
  (cd esp32c3-enrollee && cargo clippy --release -- -D warnings)
  (cd store && CARGO_TARGET_DIR="${store_target:-$PWD/target}" cargo clippy --all-targets -- -D warnings)
  (cd policy && CARGO_TARGET_DIR="${policy_target:-$PWD/target}" cargo clippy --all-targets -- -D warnings)
fi

echo "==> cargo build --release (firmware, $target)"
(cd esp32c3-enrollee && cargo build --release "$@")

target_dir="${CARGO_TARGET_DIR:-$PWD/esp32c3-enrollee/target}"
elf="$target_dir/$target/release/zerotouch-esp32c3-enrollee"
echo "==> footprint of $elf"
python3 tools/size_report.py "$elf"

if [ "${SKIP_STORE_TESTS:-0}" != 1 ]; then
  echo "==> flash store: host tests with power cuts (firmware/store)"
  (cd store && CARGO_TARGET_DIR="${store_target:-$PWD/target}" cargo test)
  echo "==> firmware policy: host tests (firmware/policy)"
  (cd policy && CARGO_TARGET_DIR="${policy_target:-$PWD/target}" cargo test)
fi
