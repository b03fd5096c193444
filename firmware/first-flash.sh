#!/usr/bin/env bash
# First flash of a board (new or used): writes the partition table and the release image
# and erases the `zerotouch` data partition, so that old bytes left there by an earlier
# firmware cannot make the store report Corrupted. Never use it to update a provisioned
# device: erasing `zerotouch` deletes its identity key (it must then be registered again).
# Needs espflash (`cargo install espflash`) and a board on USB; extra arguments go to
# espflash (e.g. `--port /dev/ttyACM0`).
set -euo pipefail
cd "$(dirname "$0")/esp32c3-enrollee"
cargo build --release
exec espflash flash --monitor --chip esp32c3 --partition-table partitions.csv \
  --erase-parts zerotouch "$@" \
  target/riscv32imc-unknown-none-elf/release/zerotouch-esp32c3-enrollee
