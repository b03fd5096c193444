//! A radio bridge without hardware: the bridge firmware's own core ([`BridgeCore`]) on the
//! master side of a pseudo-terminal, with the UDP multicast link as its radio.
//!
//! The slave side is published at a stable path (a symlink, like udev's
//! `/dev/serial/by-id/...`), so `--link serial:PATH` opens it like a USB bridge. Tests
//! and `zerotouch radio emulate` use it; [`Control`] injects the faults a real serial
//! line has: a reboot (boot ROM text, then a fresh boot Hello), an unplug (the port
//! vanishes and comes back as a new tty behind the same path), and byte faults (garbage,
//! dropped, duplicated and corrupted bytes) on what the bridge writes.

use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::pty::OpenptFlags;
use rustix::termios::{self, OptionalActions};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;
use zerotouch_bridge::frame::MAX_WIRE_LEN;
use zerotouch_bridge::message::FirmwareVersion;
use zerotouch_bridge::{BridgeConfig, BridgeCore, RadioCommand, RadioEvent, TxOutcome};
use zerotouch_proto::Addr;

use crate::udp::{UdpLink, UdpLinkConfig};

/// What the ESP32-C3 boot ROM prints on reset; a bridge's host must skip it.
pub const BOOT_ROM_TEXT: &[u8] = b"ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\nrst:0x15 (USB_UART_CHIP_RESET),boot:0xd (SPI_FAST_FLASH_BOOT)\r\nSaved PC:0x40380000\r\nload:0x3fcd5820,len:0x1714\r\nentry 0x403cc710\r\n";

/// Byte faults on the bridge-to-host direction, per byte written (probabilities 0..=1).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ByteFaults {
    /// A byte is dropped.
    pub drop: f64,
    /// A byte is written twice.
    pub duplicate: f64,
    /// A byte is replaced by a random one.
    pub corrupt: f64,
    /// A run of random garbage (1..64 bytes) is written before the byte.
    pub garbage: f64,
}

/// How the emulator starts.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Where the slave tty is published (a symlink, replaced atomically).
    pub link_path: PathBuf,
    /// The radio: the UDP link (its `mac` is the bridge's MAC).
    pub radio: UdpLinkConfig,
    /// Byte faults on what the bridge writes.
    pub faults: ByteFaults,
    /// Seed for the faults.
    pub seed: u64,
    /// Protocol version the bridge's Hello claims (another one tests the host's refusal).
    pub hello_version: u8,
}

/// Faults injected while the emulator runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Reboot: boot ROM text, a new core (its boot Hello), the radio back on its boot channel.
    Reboot,
    /// Unplug: the tty vanishes (the host reads EOF/EIO) and a new one appears behind the
    /// same path after `Duration`.
    Unplug(Duration),
}

/// The published pseudo-terminal (its master side).
pub struct Pty {
    master_rx: pipe::Receiver,
    master_tx: pipe::Sender,
    /// Kept open so the master never reads EIO while the host is between opens.
    _slave: OwnedFd,
}

impl Pty {
    fn open(link_path: &Path) -> io::Result<Pty> {
        let master =
            rustix::pty::openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
        rustix::pty::grantpt(&master)?;
        rustix::pty::unlockpt(&master)?;
        let slave_name = rustix::pty::ptsname(&master, Vec::new())?;
        let slave_path = PathBuf::from(slave_name.to_str().map_err(io::Error::other)?);
        let slave = rustix::fs::open(
            &slave_path,
            rustix::fs::OFlags::RDWR | rustix::fs::OFlags::NOCTTY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        // Raw at once: a cooked slave would echo the bridge's own frames back to it.
        let mut tio = termios::tcgetattr(&slave)?;
        tio.make_raw();
        termios::tcsetattr(&slave, OptionalActions::Now, &tio)?;
        rustix::io::ioctl_fionbio(&master, true)?;
        publish(&slave_path, link_path)?;
        let write_master = master.try_clone()?;
        Ok(Pty {
            master_rx: pipe::Receiver::from_owned_fd_unchecked(master)?,
            master_tx: pipe::Sender::from_owned_fd_unchecked(write_master)?,
            _slave: slave,
        })
    }

    async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            self.master_tx.writable().await?;
            match self.master_tx.try_write(bytes) {
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            self.master_rx.readable().await?;
            match self.master_rx.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }
}

/// Points `link_path` at `target`, atomically.
fn publish(target: &Path, link_path: &Path) -> io::Result<()> {
    let tmp = link_path.with_extension("new");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link_path)
}

/// A small deterministic generator for the faults (not for anything secret).
struct FaultRng(u64);

impl FaultRng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

fn apply_faults(bytes: &[u8], faults: &ByteFaults, rng: &mut FaultRng) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len() + 8);
    for &byte in bytes {
        if rng.chance(faults.garbage) {
            let len = 1 + rng.next() % 63;
            out.extend((0..len).map(|_| rng.next() as u8));
        }
        if rng.chance(faults.drop) {
            continue;
        }
        let byte = if rng.chance(faults.corrupt) {
            rng.next() as u8
        } else {
            byte
        };
        out.push(byte);
        if rng.chance(faults.duplicate) {
            out.push(byte);
        }
    }
    out
}

/// The emulated bridge; runs until its control channel closes.
pub struct Emulator {
    config: EmulatorConfig,
    radio: UdpLink,
    core: BridgeCore,
    rng: FaultRng,
    boot: tokio::time::Instant,
}

impl Emulator {
    /// Creates the PTY at `config.link_path` and joins the radio link.
    pub fn new(config: EmulatorConfig) -> io::Result<(Emulator, Pty)> {
        let radio = UdpLink::bind(config.radio)?;
        let pty = Pty::open(&config.link_path)?;
        let core = new_core(&config);
        let rng = FaultRng(config.seed);
        let emulator = Emulator {
            config,
            radio,
            core,
            rng,
            boot: tokio::time::Instant::now(),
        };
        Ok((emulator, pty))
    }

    /// The radio link's group and port (for peers to join).
    pub fn radio_group(&self) -> std::net::SocketAddrV4 {
        self.radio.group_addr()
    }

    /// Relays until `control` closes.
    pub async fn run(
        mut self,
        mut pty: Pty,
        mut control: mpsc::Receiver<Control>,
    ) -> io::Result<()> {
        let mut buf = [0u8; 512];
        loop {
            self.drive().await?;
            self.flush(&pty).await?;
            tokio::select! {
                read = pty.read(&mut buf) => {
                    let n = read?;
                    self.core.handle_host_bytes(&buf[..n]);
                }
                received = self.radio.recv() => {
                    let received = received?;
                    let rx_time_us = u64::try_from(self.boot.elapsed().as_micros()).unwrap_or(u64::MAX);
                    self.core.handle_radio(RadioEvent::Received {
                        src: received.src.0,
                        dst: received.dst.0,
                        channel: received.channel,
                        rssi: -40,
                        rx_time_us,
                        payload: &received.frame,
                    });
                }
                command = control.recv() => match command {
                    None => return Ok(()),
                    Some(Control::Reboot) => {
                        pty.write_all(BOOT_ROM_TEXT).await?;
                        self.reboot()?;
                    }
                    Some(Control::Unplug(gone)) => {
                        drop(pty);
                        let _ = std::fs::remove_file(&self.config.link_path);
                        tokio::time::sleep(gone).await;
                        pty = Pty::open(&self.config.link_path)?;
                        // Plugging in powers the chip up: it boots.
                        self.reboot()?;
                    }
                },
            }
        }
    }

    fn reboot(&mut self) -> io::Result<()> {
        self.core = new_core(&self.config);
        self.boot = tokio::time::Instant::now();
        self.radio.set_channel(self.config.radio.channel)
    }

    /// Runs the core's radio commands on the UDP link.
    async fn drive(&mut self) -> io::Result<()> {
        while let Some(command) = self.core.poll_radio() {
            match command {
                RadioCommand::SetChannel(channel) => {
                    let result = self
                        .radio
                        .set_channel(channel)
                        .map(|()| channel)
                        .map_err(|_| ());
                    self.core.handle_radio(RadioEvent::ChannelSet(result));
                }
                RadioCommand::AddPeer(_) | RadioCommand::RemovePeer(_) => {}
                RadioCommand::Send { dest, payload } => {
                    let channel = self.core.channel();
                    let outcome = match self.radio.send_to(Addr(dest), channel, &payload).await {
                        // UDP carries no ACK: a sent frame counts as delivered.
                        Ok(()) => TxOutcome::Delivered,
                        Err(_) => TxOutcome::Failed(zerotouch_bridge::ErrorCode::Radio),
                    };
                    self.core.handle_radio(RadioEvent::SendDone(outcome));
                }
            }
        }
        Ok(())
    }

    /// Writes the core's frames to the host, through the byte faults.
    async fn flush(&mut self, pty: &Pty) -> io::Result<()> {
        let mut wire = [0u8; MAX_WIRE_LEN];
        while let Some(len) = self.core.poll_host(&mut wire) {
            let mut frame = wire[..len].to_vec();
            if self.config.hello_version != zerotouch_bridge::PROTOCOL_VERSION {
                frame = hello_with_version(&frame, self.config.hello_version);
            }
            let bytes = apply_faults(&frame, &self.config.faults, &mut self.rng);
            pty.write_all(&bytes).await?;
        }
        Ok(())
    }
}

fn new_core(config: &EmulatorConfig) -> BridgeCore {
    BridgeCore::new(BridgeConfig {
        mac: config.radio.mac.0,
        firmware: FirmwareVersion {
            major: 0,
            minor: 1,
            patch: 0,
        },
        channel: config.radio.channel,
    })
}

/// Re-frames a Hello claiming `version` (the core always speaks its own).
fn hello_with_version(frame: &[u8], version: u8) -> Vec<u8> {
    let mut decoder: zerotouch_bridge::FrameDecoder = zerotouch_bridge::FrameDecoder::new();
    let mut decoded = None;
    for &byte in frame {
        if let Some(Ok(message)) = decoder.push(byte) {
            decoded = Some(message.to_vec());
        }
    }
    let Some(mut message) = decoded.filter(|m| m[1] == zerotouch_bridge::message::kind::HELLO)
    else {
        return frame.to_vec();
    };
    message[0] = version;
    let mut wire = [0u8; MAX_WIRE_LEN];
    match zerotouch_bridge::encode_frame(&message, &mut wire) {
        Ok(len) => wire[..len].to_vec(),
        Err(_) => frame.to_vec(),
    }
}
