//! `--link` for the daemon and the agent: which real link carries the frames.
//!
//! `udp` is the UDP multicast link of `zerotouch-link` with its defaults (group
//! 239.255.90.1, port 47470, on loopback); `udp:GROUP:PORT` picks another group (or a
//! broadcast address) and port, so several independent test fleets can share a host.
//! `monitor:IFACE` (Linux) sends and hears real ESP-NOW frames through a Wi-Fi interface
//! in monitor mode; `monitor:IFACE?no-nl80211` skips the Wi-Fi checks so the raw socket
//! runs on any interface (veth pairs in tests). See docs/monitor-mode.md.
//!
//! `serial:PATH` is an ESP32-C3 radio bridge on a serial port (see BRIDGE.md): our
//! address on the air is then the bridge's MAC.
//!
//! `--pcap FILE` ([`open_capture`]) records what the link sends and delivers as pcapng
//! (radiotap + the 802.11 frames), whatever the link.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use zerotouch_link::espnow::{self, EspNowRepr};
#[cfg(target_os = "linux")]
use zerotouch_link::monitor::{MonitorConfig, MonitorLink};
use zerotouch_link::pcap::Capture;
use zerotouch_link::serial::{SerialConfig, SerialError, SerialLink};
use zerotouch_link::udp::{DEFAULT_GROUP, DEFAULT_PORT, UdpLink, UdpLinkConfig};
use zerotouch_proto::{Addr, Transmit};

use crate::error::AppError;

/// A parsed `--link` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LinkSpec {
    /// UDP multicast (or broadcast) datagrams.
    Udp {
        /// Group (or broadcast address) and port.
        group: SocketAddrV4,
    },
    /// A Wi-Fi interface in monitor mode (Linux).
    Monitor {
        /// Interface name.
        iface: String,
        /// `?no-nl80211`: no Wi-Fi checks, any interface.
        raw: bool,
    },
    /// An ESP32-C3 radio bridge on a serial port.
    Serial {
        /// The port, e.g. /dev/ttyACM0.
        path: PathBuf,
    },
}

/// Parses the `IFACE[?no-nl80211]` of `monitor:`.
fn parse_monitor(rest: &str) -> Result<LinkSpec, String> {
    let (iface, raw) = match rest.split_once('?') {
        None => (rest, false),
        Some((iface, "no-nl80211")) => (iface, true),
        Some((_, option)) => {
            return Err(format!(
                "unknown monitor link option `{option}`: the only one is `no-nl80211`"
            ));
        }
    };
    if iface.is_empty() || iface.len() > 15 || iface.contains(['/', ' ', ':']) {
        return Err(format!(
            "`{iface}` is not an interface name (at most 15 characters, e.g. monitor:wlan1)"
        ));
    }
    Ok(LinkSpec::Monitor {
        iface: iface.to_owned(),
        raw,
    })
}

impl Default for LinkSpec {
    fn default() -> Self {
        Self::Udp {
            group: SocketAddrV4::new(DEFAULT_GROUP, DEFAULT_PORT),
        }
    }
}

impl FromStr for LinkSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "udp" => Ok(Self::default()),
            Some(("udp", rest)) => {
                let group: SocketAddrV4 = rest
                    .parse()
                    .map_err(|_| format!("`{rest}` is not GROUP:PORT (e.g. 239.255.90.1:47470)"))?;
                if group.port() == 0 {
                    return Err(
                        "the link port must not be 0: every endpoint must use the same port".into(),
                    );
                }
                let ip = group.ip();
                // A subnet broadcast address cannot be told from the netmask here; the
                // common x.y.z.255 form is accepted as one.
                if !ip.is_multicast() && !ip.is_broadcast() && ip.octets()[3] != 255 {
                    return Err(format!(
                        "`udp:{group}` is a unicast address: the UDP link is multicast (or broadcast) so that every configurator and device hears every frame, like a radio; use a multicast group such as udp:239.255.90.1:{}",
                        group.port()
                    ));
                }
                Ok(Self::Udp { group })
            }
            Some(("monitor", rest)) => parse_monitor(rest),
            Some(("serial", "")) | None if s == "serial" || s == "serial:" => {
                Err("`serial` needs the port: serial:/dev/ttyACM0 (`zerotouch radio list` shows the ports)".into())
            }
            Some(("serial", path)) => Ok(Self::Serial { path: path.into() }),
            _ if s == "sim" || s.starts_with("sim:") => Err(
                "the simulated radio runs inside one process: use `zerotouch demo` for it".into(),
            ),
            _ => Err(format!(
                "`{s}` is not a link: use udp, udp:GROUP:PORT monitor:IFACE or serial:PATH"
            )),
        }
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp { group } => write!(f, "udp:{group}"),
            Self::Monitor { iface, raw: false } => write!(f, "monitor:{iface}"),
            Self::Monitor { iface, raw: true } => write!(f, "monitor:{iface}?no-nl80211"),
            Self::Serial { path } => write!(f, "serial:{}", path.display()),
        }
    }
}

/// An open link endpoint.
pub enum Link {
    /// UDP multicast.
    Udp(UdpLink),
    /// Monitor-mode Wi-Fi.
    #[cfg(target_os = "linux")]
    Monitor(MonitorLink),
    /// An ESP32-C3 radio bridge, with the `--pcap` capture (the bridge hands us payloads,
    /// so the capture is written here rather than in the link).
    Serial(SerialLink, Option<Capture>),
}

/// Creates the `--pcap` capture file, if one was asked for.
pub fn open_capture(path: Option<&Path>) -> Result<Option<Capture>, AppError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let capture = Capture::create(path).map_err(|e| {
        AppError::io(
            format!(
                "cannot create the capture file {} (does its directory exist and is it writable?)",
                path.display()
            ),
            e,
        )
    })?;
    tracing::info!(path = %path.display(), "capturing the link's frames (pcapng, radiotap + 802.11)");
    Ok(Some(capture))
}

/// Joins the link as `mac`, listening on `channel`, through the interface `iface`
/// (loopback by default), recording its frames into `capture` if given.
pub async fn open_link(
    spec: &LinkSpec,
    mac: Addr,
    channel: u8,
    iface: Option<Ipv4Addr>,
    capture: Option<Capture>,
) -> Result<Link, AppError> {
    match spec {
        LinkSpec::Udp { group } => open_udp(*group, mac, channel, iface, capture),
        LinkSpec::Monitor { iface, raw } => open_monitor(iface, *raw, mac, channel, capture),
        LinkSpec::Serial { path } => open_serial(path, channel, capture).await,
    }
}

fn open_udp(
    group: SocketAddrV4,
    mac: Addr,
    channel: u8,
    iface: Option<Ipv4Addr>,
    capture: Option<Capture>,
) -> Result<Link, AppError> {
    let mut config = UdpLinkConfig::new(mac, channel);
    config.group = group;
    if let Some(iface) = iface {
        config.interface = iface;
    }
    let udp = UdpLink::bind(config).map_err(|e| {
        AppError::io(
            format!(
                "cannot join the UDP link {group} (is the interface up and multicast-capable?)"
            ),
            e,
        )
    })?;
    Ok(Link::Udp(match capture {
        Some(capture) => udp.with_capture(capture),
        None => udp,
    }))
}

#[cfg(target_os = "linux")]
fn open_monitor(
    iface: &str,
    raw: bool,
    mac: Addr,
    channel: u8,
    capture: Option<Capture>,
) -> Result<Link, AppError> {
    let config = MonitorConfig {
        iface: iface.to_owned(),
        mac,
        channel,
        raw,
    };
    let link = MonitorLink::open(&config)
        .map_err(|e| AppError::io(format!("cannot open the monitor link on {iface}"), e))?;
    if !raw {
        tracing::warn!(
            iface,
            "channel and active monitor mode are not set by zerotouch: tune the card with `iw dev {iface} set channel N` and enable `iw dev {iface} set monitor active` (docs/monitor-mode.md), or unicast frames from ESP32s report failure"
        );
    }
    Ok(Link::Monitor(match capture {
        Some(capture) => link.with_capture(capture),
        None => link,
    }))
}

#[cfg(not(target_os = "linux"))]
fn open_monitor(
    _iface: &str,
    _raw: bool,
    _mac: Addr,
    _channel: u8,
    _capture: Option<Capture>,
) -> Result<Link, AppError> {
    Err(AppError::Usage(
        "the monitor link needs Linux (AF_PACKET); use --link udp here".into(),
    ))
}

/// Opens a radio bridge: waits for its Hello, checks its version, sets the channel.
async fn open_serial(path: &Path, channel: u8, capture: Option<Capture>) -> Result<Link, AppError> {
    let serial = SerialLink::open(SerialConfig::new(path, channel))
        .await
        .map_err(serial_error)?;
    let hello = serial.hello();
    tracing::info!(
        port = %path.display(),
        bridge = %Addr(hello.mac),
        firmware = %hello.firmware,
        protocol = hello.protocol_version,
        channel,
        "radio bridge ready"
    );
    Ok(Link::Serial(serial, capture))
}

/// Maps a bridge error to its exit code: a wrong port is bad input (2), a missing one not
/// found (3), a port in use busy (5).
pub fn serial_error(err: SerialError) -> AppError {
    let message = err.to_string();
    match err {
        SerialError::NotFound(_) => AppError::NotFound(message),
        SerialError::NotATty(_) | SerialError::NoHello(..) => AppError::Usage(message),
        SerialError::Busy(_) => AppError::Busy(message),
        SerialError::PermissionDenied(_) | SerialError::WrongVersion(..) | SerialError::Io(..) => {
            AppError::Failed(message)
        }
    }
}

/// Records a frame that crossed a serial bridge, as the ESP32 sends it on the air.
fn capture_espnow(
    capture: &Capture,
    src: Addr,
    dst: Addr,
    channel: u8,
    rssi: Option<i8>,
    body: &[u8],
) {
    capture.espnow(
        channel,
        rssi,
        &EspNowRepr {
            retry: false,
            duration: 0,
            dst,
            src,
            addr3: Addr::BROADCAST,
            sequence_number: 0,
            random: [0; 4],
            version: espnow::ESPNOW_VERSION_1,
            body,
        },
    );
}

impl Link {
    /// Sends one frame.
    pub async fn send(&self, transmit: &Transmit) -> std::io::Result<()> {
        match self {
            Link::Udp(udp) => udp.send(transmit).await,
            #[cfg(target_os = "linux")]
            Link::Monitor(monitor) => monitor.send(transmit).await,
            // Never waits for the bridge: a frame it cannot take is a loss, retransmitted.
            Link::Serial(serial, capture) => {
                if let Some(capture) = capture {
                    let src = serial.local_addr();
                    capture_espnow(
                        capture,
                        src,
                        transmit.dst,
                        transmit.channel,
                        None,
                        &transmit.frame,
                    );
                }
                serial.send(transmit)
            }
        }
    }

    /// The next frame for us: `(source, bytes)`.
    pub async fn recv(
        &self,
    ) -> std::io::Result<(Addr, heapless::Vec<u8, { zerotouch_proto::MAX_FRAME }>)> {
        let received = match self {
            Link::Udp(udp) => udp.recv().await?,
            #[cfg(target_os = "linux")]
            Link::Monitor(monitor) => monitor.recv().await?,
            Link::Serial(serial, capture) => {
                let heard = serial.recv().await?;
                if let Some(capture) = capture {
                    capture_espnow(
                        capture,
                        heard.src,
                        heard.dst,
                        heard.channel,
                        Some(heard.rssi),
                        &heard.frame,
                    );
                }
                return Ok((heard.src, heard.frame));
            }
        };
        Ok((received.src, received.frame))
    }

    /// Retunes to `channel` (a bad channel is logged and ignored: the protocol never asks for one).
    pub fn set_channel(&self, channel: u8) {
        let result = match self {
            Link::Udp(udp) => udp.set_channel(channel),
            #[cfg(target_os = "linux")]
            Link::Monitor(monitor) => monitor.set_channel(channel),
            Link::Serial(serial, _) => serial.set_channel(channel),
        };
        if let Err(err) = result {
            tracing::warn!(channel, %err, "cannot switch the link channel");
        }
    }
}

/// Sleeps until `at`, or forever when there is no deadline.
pub async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_specs_parse() {
        assert_eq!("udp".parse::<LinkSpec>(), Ok(LinkSpec::default()));
        assert_eq!(
            "udp:239.1.2.3:4000".parse::<LinkSpec>(),
            Ok(LinkSpec::Udp {
                group: SocketAddrV4::new(Ipv4Addr::new(239, 1, 2, 3), 4000)
            })
        );
        assert!("udp:239.1.2.3".parse::<LinkSpec>().is_err());
        assert!("udp:239.1.2.3:0".parse::<LinkSpec>().is_err());
        assert!("sim".parse::<LinkSpec>().unwrap_err().contains("demo"));
        assert!("tcp".parse::<LinkSpec>().is_err());
        assert_eq!(
            "monitor:wlan1".parse::<LinkSpec>(),
            Ok(LinkSpec::Monitor {
                iface: "wlan1".into(),
                raw: false
            })
        );
        let raw = "monitor:veth0?no-nl80211".parse::<LinkSpec>();
        assert_eq!(
            raw.as_ref().map(ToString::to_string),
            Ok("monitor:veth0?no-nl80211".to_owned())
        );
        assert!(
            "monitor:wlan1?fast"
                .parse::<LinkSpec>()
                .unwrap_err()
                .contains("no-nl80211")
        );
        assert!("monitor:".parse::<LinkSpec>().is_err());
        assert_eq!(
            "serial:/dev/ttyACM0".parse::<LinkSpec>(),
            Ok(LinkSpec::Serial {
                path: "/dev/ttyACM0".into()
            })
        );
        assert!(
            "serial"
                .parse::<LinkSpec>()
                .unwrap_err()
                .contains("radio list")
        );
        assert!(
            "serial:"
                .parse::<LinkSpec>()
                .unwrap_err()
                .contains("radio list")
        );
        assert_eq!(
            "serial:/dev/ttyACM0"
                .parse::<LinkSpec>()
                .unwrap()
                .to_string(),
            "serial:/dev/ttyACM0"
        );
        assert_eq!(LinkSpec::default().to_string(), "udp:239.255.90.1:47470");
    }
}
