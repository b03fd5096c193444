//! `--link` for the daemon and the agent: which real link carries the frames.
//!
//! `udp` is the UDP multicast link of `zerotouch-link` with its defaults (group
//! 239.255.90.1, port 47470, on loopback); `udp:GROUP:PORT` picks another group (or a
//! broadcast address) and port, so several independent test fleets can share a host.
//! `serial:PATH` is an ESP32-C3 radio bridge on a serial port (see BRIDGE.md): our
//! address on the air is then the bridge's MAC.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::str::FromStr;

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
    /// An ESP32-C3 radio bridge on a serial port.
    Serial {
        /// The port, e.g. /dev/ttyACM0.
        path: PathBuf,
    },
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
                Ok(Self::Udp { group })
            }
            Some(("serial", "")) | None if s == "serial" || s == "serial:" => {
                Err("`serial` needs the port: serial:/dev/ttyACM0 (`zerotouch radio list` shows the ports)".into())
            }
            Some(("serial", path)) => Ok(Self::Serial { path: path.into() }),
            _ if s == "sim" || s.starts_with("sim:") => Err(
                "the simulated radio runs inside one process: use `zerotouch demo` for it".into(),
            ),
            _ => Err(format!(
                "`{s}` is not a link: use udp, udp:GROUP:PORT or serial:PATH"
            )),
        }
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp { group } => write!(f, "udp:{group}"),
            Self::Serial { path } => write!(f, "serial:{}", path.display()),
        }
    }
}

/// An open link endpoint.
pub struct Link {
    backend: Backend,
}

/// The link behind a [`Link`].
enum Backend {
    Udp(UdpLink),
    Serial(SerialLink),
}

/// Joins the link as `mac`, listening on `channel`, through the interface `iface`
/// (loopback by default).
pub async fn open_link(
    spec: &LinkSpec,
    mac: Addr,
    channel: u8,
    iface: Option<Ipv4Addr>,
) -> Result<Link, AppError> {
    let group = match spec {
        LinkSpec::Udp { group } => *group,
        LinkSpec::Serial { path } => return open_serial(path, channel).await,
    };
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
    Ok(Link {
        backend: Backend::Udp(udp),
    })
}

/// Opens a radio bridge: waits for its Hello, checks its version, sets the channel.
async fn open_serial(path: &std::path::Path, channel: u8) -> Result<Link, AppError> {
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
    Ok(Link {
        backend: Backend::Serial(serial),
    })
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

impl Link {
    /// Sends one frame.
    pub async fn send(&self, transmit: &Transmit) -> std::io::Result<()> {
        match &self.backend {
            Backend::Udp(udp) => udp.send(transmit).await,
            // Never waits for the bridge: a frame it cannot take is a loss, retransmitted.
            Backend::Serial(serial) => serial.send(transmit),
        }
    }

    /// The next frame for us: `(source, bytes)`.
    pub async fn recv(
        &self,
    ) -> std::io::Result<(Addr, heapless::Vec<u8, { zerotouch_proto::MAX_FRAME }>)> {
        match &self.backend {
            Backend::Udp(udp) => udp.recv().await.map(|r| (r.src, r.frame)),
            Backend::Serial(serial) => serial.recv().await.map(|h| (h.src, h.frame)),
        }
    }

    /// Retunes to `channel` (a bad channel is logged and ignored: the protocol never asks for one).
    pub fn set_channel(&self, channel: u8) {
        let result = match &self.backend {
            Backend::Udp(udp) => udp.set_channel(channel),
            Backend::Serial(serial) => serial.set_channel(channel),
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
