#!/usr/bin/env python3
"""Prints the memory footprint of a firmware ELF: section totals (flash and RAM) and the
code+constant bytes attributed to each crate group by symbol name.

Attribution follows the first crate path in each demangled symbol (`<p256::... as ...>` counts
for p256). With LTO, inlined code is counted in its caller, so the per-group figures are
estimates; the section totals are exact. Uses binutils `nm` and `size` (they read RISC-V ELF).

Usage: size_report.py ELF
"""
import re
import subprocess
import sys
from collections import defaultdict

GROUPS = {
    "zerotouch-proto (protocol core)": {"zerotouch_proto"},
    "crypto (dalek, p256, AEADs, SHA-2, HKDF)": {
        "ed25519_dalek", "curve25519_dalek", "x25519_dalek", "p256", "primeorder",
        "elliptic_curve", "ecdsa", "rfc6979", "crypto_bigint", "chacha20poly1305", "chacha20",
        "poly1305", "aes_gcm", "aes", "ghash", "polyval", "hkdf", "hmac", "sha2", "subtle",
        "ctr", "universal_hash", "aead", "cipher", "digest", "crypto_common", "base64ct",
        "der", "spki", "signature", "ff", "group", "sec1", "block_buffer", "zeroize",
        "hybrid_array", "ctutils", "cpubits",
    },
    "zerotouch-bridge (bridge protocol, framing)": {"zerotouch_bridge", "cobs", "crc", "crc_catalog"},
    "firmware driver + flash store": {
        "zerotouch_esp32c3_enrollee", "zerotouch_esp32c3_bridge", "zerotouch_firmware_store",
    },
    "esp-radio (Rust side)": {"esp_radio", "esp_wifi_sys", "esp_phy", "esp_radio_rtos_driver"},
    "esp-hal, esp-rtos, embassy, storage": {
        "esp_hal", "esp_rtos", "esp_alloc", "esp_storage", "esp_bootloader_esp_idf",
        "sequential_storage", "embassy_executor", "embassy_time", "embassy_sync",
        "embassy_futures", "embassy_embedded_hal", "embassy_time_queue_utils", "esp_sync",
        "esp_println", "esp_backtrace", "esp_riscv_rt", "esp_rom_sys", "linked_list_allocator",
        "esp_config", "heapless", "log", "portable_atomic", "critical_section", "allocator_api2",
        "rlsf", "embedded_storage", "embedded_storage_async",
    },
    "core, alloc, compiler-builtins": {"core", "alloc", "compiler_builtins"},
}
OTHER = "other (Wi-Fi blobs in C, ROM glue, unnamed)"


def group_of(name):
    match = re.search(r"([A-Za-z_][A-Za-z0-9_]*)::", name)
    if match:
        crate = match.group(1)
        for group, crates in GROUPS.items():
            if crate in crates:
                return group
    return OTHER


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    elf = sys.argv[1]
    sections = {}
    for line in subprocess.run(["size", "-A", elf], check=True, capture_output=True, text=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit():
            sections[parts[0]] = int(parts[1])

    def total(prefixes):
        return sum(v for k, v in sections.items() if any(k == p or k.startswith(p + ".") for p in prefixes))

    text = total([".text", ".trap", ".rwtext"])
    rodata = total([".rodata", ".flash.appdesc"])
    data = total([".data"])
    bss = total([".bss"])
    print(f"{'section':<36}{'bytes':>10}")
    for name, value in [
        (".text (+.trap, .rwtext: code)", text),
        (".rodata (constants)", rodata),
        (".data (initialised RAM)", data),
        (".bss (zeroed RAM)", bss),
        ("flash image (text+rodata+data)", text + rodata + data),
        ("static RAM (data+bss+rwtext)", data + bss + total([".rwtext", ".trap"])),
    ]:
        print(f"{name:<36}{value:>10}")

    by_group = defaultdict(int)
    out = subprocess.run(
        ["nm", "--print-size", "--demangle", "--size-sort", elf], check=True, capture_output=True, text=True
    ).stdout
    for line in out.splitlines():
        parts = line.split(maxsplit=3)
        if len(parts) < 4 or parts[2] not in "TtRrWw":
            continue
        by_group[group_of(parts[3])] += int(parts[1], 16)
    print()
    print(f"{'code + constants by crate group (estimate)':<48}{'bytes':>10}")
    for group in list(GROUPS) + [OTHER]:
        print(f"{group:<48}{by_group[group]:>10}")


if __name__ == "__main__":
    main()
