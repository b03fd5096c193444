//! `--link` for the daemon and the agent: which real link carries the frames.
//!
//! `udp` is the UDP multicast link of `zerotouch-link` with its defaults (group
//! 239.255.90.1, port 47470, on loopback); `udp:GROUP:PORT` picks another group (or a
//! broadcast address) and port, so several independent test fleets can share a host.
//!
//! `--pcap FILE` ([`open_capture`]) records what the link sends and delivers as pcapng
//! (radiotap + the 802.11 frames), whatever the link.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::Path;
use std::str::FromStr;

use zerotouch_link::pcap::Capture;
use zerotouch_link::udp::{DEFAULT_GROUP, DEFAULT_PORT, UdpLink, UdpLinkConfig};
use zerotouch_proto::{Addr, Transmit};

use crate::error::AppError;

/// A parsed `--link` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkSpec {
    /// UDP multicast (or broadcast) datagrams.
    Udp {
        /// Group (or broadcast address) and port.
        group: SocketAddrV4,
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
            _ if s == "sim" || s.starts_with("sim:") => Err(
                "the simulated radio runs inside one process: use `zerotouch demo` for it".into(),
            ),
            _ => Err(format!("`{s}` is not a link: use udp or udp:GROUP:PORT")),
        }
    }
}

impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Udp { group } => write!(f, "udp:{group}"),
        }
    }
}

/// An open link endpoint.
pub struct Link {
    udp: UdpLink,
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
    let LinkSpec::Udp { group } = *spec;
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
    let udp = match capture {
        Some(capture) => udp.with_capture(capture),
        None => udp,
    };
    Ok(Link { udp })
}

impl Link {
    /// Sends one frame.
    pub async fn send(&self, transmit: &Transmit) -> std::io::Result<()> {
        self.udp.send(transmit).await
    }

    /// The next frame for us: `(source, bytes)`.
    pub async fn recv(
        &self,
    ) -> std::io::Result<(Addr, heapless::Vec<u8, { zerotouch_proto::MAX_FRAME }>)> {
        let received = self.udp.recv().await?;
        Ok((received.src, received.frame))
    }

    /// Retunes to `channel` (a bad channel is logged and ignored: the protocol never asks for one).
    pub fn set_channel(&self, channel: u8) {
        if let Err(err) = self.udp.set_channel(channel) {
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
        assert_eq!(LinkSpec::default().to_string(), "udp:239.255.90.1:47470");
    }
}
