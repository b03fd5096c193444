//! pcapng capture of what a link sends and hears, for Wireshark and tshark.
//!
//! Every packet is radiotap (link type 127, `LINKTYPE_IEEE802_11_RADIOTAP`) with the
//! channel frequency, the 1 Mbps rate ESP-NOW uses by default, the signal in dBm when the
//! link knows it, and the FCS flag when the frame carries one, followed by the 802.11
//! vendor action frame exactly as an ESP32 sends it (built by [`crate::espnow`]).
//!
//! Each block goes to the file in one `write` call as soon as it is complete, so a process
//! killed at any moment leaves a file that every reader opens (at worst without the frame
//! that was being written). [`Capture`] is the shared handle links hold: a write error
//! (disk full, file removed) stops the capture with one warning and never stops the link.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use pcap_file::DataLink;
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
use pcap_file::pcapng::blocks::interface_description::{
    InterfaceDescriptionBlock, InterfaceDescriptionOption,
};

use crate::espnow::{EspNowFrame, EspNowRepr, Fcs, MAX_FRAME_LEN};
use crate::radiotap::{self, Radiotap};

/// ESP-NOW's default PHY rate, 1 Mbps, in radiotap's units of 500 kbps.
const RATE_1_MBPS: u8 = 2;
/// pcapng `if_tsresol` for nanoseconds (what pcap-file writes timestamps in).
const NANOSECONDS: u8 = 9;
/// Longest radiotap header [`radiotap_for`] writes.
const MAX_RADIOTAP_LEN: usize = 16;

/// Writes a pcapng file of radiotap + 802.11 frames.
pub struct PcapWriter {
    file: File,
    blocks: PcapNgWriter<Vec<u8>>,
}

impl std::fmt::Debug for PcapWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcapWriter").finish_non_exhaustive()
    }
}

fn pcap_error(error: pcap_file::PcapError) -> io::Error {
    io::Error::other(format!("pcapng encoding failed: {error}"))
}

impl PcapWriter {
    /// Creates (or truncates) `path` and writes the section and interface headers.
    pub fn create(path: impl AsRef<Path>) -> io::Result<PcapWriter> {
        let file = File::create(path)?;
        let blocks = PcapNgWriter::new(Vec::new()).map_err(pcap_error)?;
        let mut writer = PcapWriter { file, blocks };
        let interface = InterfaceDescriptionBlock {
            linktype: DataLink::IEEE802_11_RADIOTAP,
            snaplen: 0,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Borrowed("zerotouch")),
                InterfaceDescriptionOption::IfTsResol(NANOSECONDS),
            ],
        };
        writer
            .blocks
            .write_pcapng_block(interface)
            .map_err(pcap_error)?;
        writer.drain()?;
        Ok(writer)
    }

    /// Appends one frame heard or sent at `timestamp` (since the Unix epoch) on 2.4 GHz
    /// `channel`, with the signal `rssi` in dBm if known. `ieee80211` is the whole 802.11
    /// frame; an ESP-NOW frame whose last four bytes are its valid FCS is marked as such.
    pub fn write_frame(
        &mut self,
        timestamp: Duration,
        channel: u8,
        rssi: Option<i8>,
        ieee80211: &[u8],
    ) -> io::Result<()> {
        let header = radiotap_for(channel, rssi, has_valid_fcs(ieee80211));
        let mut data = [0u8; MAX_RADIOTAP_LEN + MAX_FRAME_LEN];
        let header_len = header
            .emit(&mut data)
            .map_err(|e| io::Error::other(e.to_string()))?;
        let mut packet = data[..header_len].to_vec();
        packet.extend_from_slice(ieee80211);
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp,
            original_len: u32::try_from(packet.len()).unwrap_or(u32::MAX),
            data: Cow::Owned(packet),
            options: Vec::new(),
        };
        self.blocks.write_pcapng_block(block).map_err(pcap_error)?;
        self.drain()
    }

    /// Appends the ESP-NOW frame `repr` describes, with its FCS, as [`Self::write_frame`].
    pub fn write_espnow(
        &mut self,
        timestamp: Duration,
        channel: u8,
        rssi: Option<i8>,
        repr: &EspNowRepr<'_>,
    ) -> io::Result<()> {
        let mut frame = [0u8; MAX_FRAME_LEN];
        let len = repr
            .emit(&mut frame, true)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        self.write_frame(timestamp, channel, rssi, &frame[..len])
    }

    /// Moves the encoded blocks to the file in one write.
    fn drain(&mut self) -> io::Result<()> {
        let pending = self.blocks.get_mut();
        let result = self.file.write_all(pending);
        pending.clear();
        result
    }
}

/// The radiotap header of a captured frame.
fn radiotap_for(channel: u8, rssi: Option<i8>, fcs: bool) -> Radiotap {
    Radiotap {
        flags: Some(if fcs { radiotap::FLAG_FCS } else { 0 }),
        rate: Some(RATE_1_MBPS),
        channel: radiotap::channel_frequency(channel)
            .map(|freq| (freq, radiotap::CHANNEL_FLAGS_2GHZ_CCK)),
        antenna_signal_dbm: rssi,
        tx_flags: None,
    }
}

fn has_valid_fcs(frame: &[u8]) -> bool {
    EspNowFrame::new_checked(frame).is_ok_and(|f| matches!(f.fcs(), Fcs::Valid(_)))
}

/// Time since the Unix epoch (zero if the clock is before 1970).
pub fn now() -> Duration {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
}

/// A capture shared by the tasks of a link (cheap to clone). Frames are stamped with the
/// wall clock. The first write error closes the capture and is logged once.
#[derive(Clone, Debug)]
pub struct Capture {
    path: Arc<PathBuf>,
    writer: Arc<Mutex<Option<PcapWriter>>>,
}

impl Capture {
    /// Creates the capture file `path`.
    pub fn create(path: impl Into<PathBuf>) -> io::Result<Capture> {
        let path = path.into();
        let writer = PcapWriter::create(&path)?;
        Ok(Capture {
            path: Arc::new(path),
            writer: Arc::new(Mutex::new(Some(writer))),
        })
    }

    /// The capture file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records a whole 802.11 frame (see [`PcapWriter::write_frame`]).
    pub fn frame(&self, channel: u8, rssi: Option<i8>, ieee80211: &[u8]) {
        self.with_writer(|w| w.write_frame(now(), channel, rssi, ieee80211));
    }

    /// Records the ESP-NOW frame `repr` describes (see [`PcapWriter::write_espnow`]), for
    /// links that never see the 802.11 bytes themselves (a serial radio bridge).
    pub fn espnow(&self, channel: u8, rssi: Option<i8>, repr: &EspNowRepr<'_>) {
        self.with_writer(|w| w.write_espnow(now(), channel, rssi, repr));
    }

    /// True until a write failed.
    pub fn is_open(&self) -> bool {
        self.writer.lock().is_ok_and(|w| w.is_some())
    }

    fn with_writer(&self, write: impl FnOnce(&mut PcapWriter) -> io::Result<()>) {
        let Ok(mut guard) = self.writer.lock() else {
            return;
        };
        let Some(writer) = guard.as_mut() else {
            return;
        };
        if let Err(error) = write(writer) {
            tracing::warn!(
                path = %self.path.display(),
                %error,
                "cannot write the capture file; capture stopped, the link keeps running"
            );
            *guard = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::espnow::ESPNOW_VERSION_1;
    use zerotouch_proto::Addr;

    #[test]
    fn radiotap_carries_channel_rate_signal_and_fcs_flag() {
        let header = radiotap_for(6, Some(-42), true);
        let mut buf = [0u8; MAX_RADIOTAP_LEN];
        let len = header.emit(&mut buf).expect("fits");
        let parsed = Radiotap::parse(&buf[..len]).expect("parse");
        assert_eq!(parsed.header.channel, Some((2437, 0x00a0)));
        assert_eq!(parsed.header.antenna_signal_dbm, Some(-42));
        assert_eq!(parsed.header.rate, Some(2));
        assert!(parsed.header.has_fcs());
        assert!(!radiotap_for(6, None, false).has_fcs());
    }

    #[test]
    fn fcs_flag_follows_the_frame() {
        let repr = EspNowRepr {
            retry: false,
            duration: 0,
            dst: Addr::BROADCAST,
            src: Addr([2, 0, 0, 0, 0, 1]),
            addr3: Addr::BROADCAST,
            sequence_number: 1,
            random: [1, 2, 3, 4],
            version: ESPNOW_VERSION_1,
            body: b"z",
        };
        let mut frame = [0u8; MAX_FRAME_LEN];
        let with = repr.emit(&mut frame, true).expect("emit");
        assert!(has_valid_fcs(&frame[..with]));
        let without = repr.emit(&mut frame, false).expect("emit");
        assert!(!has_valid_fcs(&frame[..without]));
    }
}
