#!/usr/bin/env bash
# Builds the ESP32-C3 enrollee firmware (release) and prints its footprint.
# Needs: rustup (stable), python3 and binutils (`nm`, `size`: they read RISC-V ELF).
# Honours CARGO_TARGET_DIR. Extra arguments go to `cargo build`.
set -euo pipefail
cd "$(dirname "$0")/esp32c3-enrollee"

target=riscv32imc-unknown-none-elf
if ! rustup target list --installed | grep -qx "$target"; then
  echo "==> installing the rustup target $target"
  rustup target add "$target"
fi

echo "==> cargo build --release (firmware, $target)"
cargo build --release "$@"

target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
elf="$target_dir/$target/release/zerotouch-esp32c3-enrollee"
echo "==> footprint of $elf"
python3 ../tools/size_report.py "$elf"
