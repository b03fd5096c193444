#!/usr/bin/env bash
# Builds the ESP32-C3 firmwares (release): the enrollee (suite 1 only, then both suites)
# and the radio bridge, prints each footprint, and runs the host tests of the enrollee's
# flash store (power cuts at every flash operation) and of its policy (radio error backoff,
# market channels, timer fairness, watchdog feeding).
# Needs: rustup (stable), python3 and binutils (`nm`, `size`: they read RISC-V ELF).
# Honours CARGO_TARGET_DIR (default: the enrollee's target dir, for both firmwares; the store
# and policy tests use "$CARGO_TARGET_DIR-store" and "$CARGO_TARGET_DIR-policy").
# SKIP_STORE_TESTS=1 skips the host tests; LINT=1 also runs clippy (warnings are errors) on
# every crate. Extra arguments go to each firmware's `cargo build`.
set -euo pipefail
cd "$(dirname "$0")"

target=riscv32imc-unknown-none-elf
if ! rustup target list --installed | grep -qx "$target"; then
  echo "==> installing the rustup target $target"
  rustup target add "$target"
fi

firmwares=(esp32c3-enrollee esp32c3-bridge)

# One target dir for both firmwares: they share most crates (same versions, same features),
# and cargo keeps the few differing builds side by side.
fw_target="${CARGO_TARGET_DIR:-$PWD/esp32c3-enrollee/target}"

echo "==> cargo fmt --check (firmwares, store, policy)"
for fw in "${firmwares[@]}"; do (cd "$fw" && cargo fmt -- --check); done
(cd store && cargo fmt -- --check)
(cd policy && cargo fmt -- --check)

store_target="${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR-store}"
policy_target="${CARGO_TARGET_DIR:+$CARGO_TARGET_DIR-policy}"
if [ "${LINT:-0}" = 1 ]; then
  echo "==> cargo clippy (firmwares, store, policy; warnings are errors)"
  for fw in "${firmwares[@]}"; do
    (cd "$fw" && CARGO_TARGET_DIR="$fw_target" cargo clippy --release -- -D warnings)
  done
  (cd store && CARGO_TARGET_DIR="${store_target:-$PWD/target}" cargo clippy --all-targets -- -D warnings)
  (cd policy && CARGO_TARGET_DIR="${policy_target:-$PWD/target}" cargo clippy --all-targets -- -D warnings)
fi

# Builds $1 with the remaining arguments and prints its footprint.
build_and_size() {
  local fw="$1"
  shift
  (cd "$fw" && CARGO_TARGET_DIR="$fw_target" cargo build --release "$@")
  local elf="$fw_target/$target/release/zerotouch-$fw"
  echo "==> footprint of $elf"
  python3 tools/size_report.py "$elf"
}

echo "==> cargo build --release (esp32c3-enrollee, suite 1 only: --no-default-features)"
build_and_size esp32c3-enrollee --no-default-features "$@"
for fw in "${firmwares[@]}"; do
  echo "==> cargo build --release ($fw, $target)"
  build_and_size "$fw" "$@"
done

if [ "${SKIP_STORE_TESTS:-0}" != 1 ]; then
  echo "==> flash store: host tests with power cuts (firmware/store)"
  (cd store && CARGO_TARGET_DIR="${store_target:-$PWD/target}" cargo test)
  echo "==> firmware policy: host tests (firmware/policy)"
  (cd policy && CARGO_TARGET_DIR="${policy_target:-$PWD/target}" cargo test)
fi
