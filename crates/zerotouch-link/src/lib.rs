//! zerotouch-link: real links for zerotouch frames.
//!
//! - [`espnow`]: the ESP-NOW 802.11 vendor-specific action frame codec (zero-copy view,
//!   builder, FCS, retry de-duplication), checked against real captures and tshark.
//! - `monitor` (Linux): ESP-NOW over a Wi-Fi interface in monitor mode (AF_PACKET, BPF).
//! - [`pcap`]: pcapng captures (radiotap + 802.11) of what a link sends and hears (`--pcap`).
//! - [`radiotap`]: the minimal radiotap header that monitor-mode captures and injection use.
//! - [`bridge_emulator`]: a bridge without hardware (its core on a PTY, the UDP link as radio).
//! - [`serial`]: the host side of an ESP32-C3 radio bridge on a serial port (zerotouch-bridge).
//! - [`udp`]: a UDP multicast link that carries the same ESP-NOW frames between processes
//!   on one host or LAN segment, with ESP-NOW addressing and channel semantics.
//! - [`derive_mac`]: stable locally administered MAC addresses for Linux processes.

pub mod bridge_emulator;
pub mod espnow;
#[cfg(target_os = "linux")]
pub mod monitor;
pub mod pcap;
pub mod radiotap;
pub mod serial;
pub mod udp;

use sha2::{Digest, Sha256};
use zerotouch_proto::Addr;

/// Derives a stable, locally administered, unicast MAC address from `seed` (for example
/// the hash of a device key), so a Linux process keeps its link address across restarts
/// without colliding with real hardware (whose addresses are universally administered).
///
/// The first six bytes of SHA-256(`"zerotouch-link mac" || seed`) with bit 1 of the first
/// byte set (locally administered) and bit 0 cleared (unicast).
pub fn derive_mac(seed: &[u8]) -> Addr {
    let digest = Sha256::new()
        .chain_update(b"zerotouch-link mac")
        .chain_update(seed)
        .finalize();
    let mut mac = [0u8; 6];
    mac.copy_from_slice(&digest[..6]);
    mac[0] = (mac[0] | 0x02) & !0x01;
    Addr(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_macs_are_stable_local_unicast_and_distinct() {
        let a = derive_mac(b"device-a");
        assert_eq!(a, derive_mac(b"device-a"));
        assert_ne!(a, derive_mac(b"device-b"));
        for seed in 0u32..256 {
            let mac = derive_mac(&seed.to_le_bytes());
            assert_eq!(mac.0[0] & 0x03, 0x02, "{mac}");
        }
    }
}
