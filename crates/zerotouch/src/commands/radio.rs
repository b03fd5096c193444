//! `zerotouch radio list|check|emulate`: find a radio bridge, check it hears the air, or
//! run an emulated one (the bridge's core on a pseudo-terminal, the UDP link as radio).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use zerotouch_link::bridge_emulator::{ByteFaults, Control, Emulator, EmulatorConfig};
use zerotouch_link::serial::{SerialConfig, SerialLink};
use zerotouch_link::udp::UdpLinkConfig;
use zerotouch_proto::Addr;

use crate::cli::Context;
use crate::daemon::link::{LinkSpec, serial_error};
use crate::error::AppError;

/// Espressif's USB vendor id (ESP32-C3/S3 USB-Serial-JTAG is 303a:1001).
const ESPRESSIF_VID: &str = "303a";

/// `zerotouch radio ...`
#[derive(Subcommand, Debug)]
pub enum RadioCommand {
    /// List serial ports with their USB vendor:product ids (Espressif's 303a marked).
    List,
    /// Open a radio bridge, print its Hello, set a channel and report frames heard per second.
    Check(CheckArgs),
    /// Run an emulated radio bridge on a pseudo-terminal, with the UDP link as its radio
    /// (for trying `--link serial:PATH` without hardware, and for tests).
    Emulate(EmulateArgs),
}

/// `zerotouch radio check`
#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The bridge: `serial:PATH`.
    #[arg(long, value_name = "LINK")]
    pub link: LinkSpec,
    /// Channel to listen on.
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u8).range(1..=14), value_name = "N")]
    pub channel: u8,
    /// How long to listen, in seconds (0: until Ctrl-C).
    #[arg(long, default_value_t = 10, value_name = "S")]
    pub seconds: u64,
}

/// `zerotouch radio emulate`
#[derive(Args, Debug)]
pub struct EmulateArgs {
    /// Where to publish the bridge's tty (a symlink to the pseudo-terminal).
    #[arg(long, value_name = "PATH")]
    pub pty: PathBuf,
    /// The radio: `udp` or `udp:GROUP:PORT`.
    #[arg(long, default_value = "udp", value_name = "LINK")]
    pub link: LinkSpec,
    /// Channel the bridge boots on.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=14), value_name = "N")]
    pub channel: u8,
    /// Byte faults on what the bridge writes: probability per byte of a drop, a duplicate,
    /// a corruption, and a garbage run, e.g. `0.001,0.001,0.001,0.002`.
    #[arg(long, value_name = "D,U,C,G", value_parser = parse_faults)]
    pub faults: Option<ByteFaults>,
    /// Protocol version the Hello claims (to test a host's refusal).
    #[arg(long, default_value_t = zerotouch_bridge::PROTOCOL_VERSION, hide = true)]
    pub hello_version: u8,
}

fn parse_faults(s: &str) -> Result<ByteFaults, String> {
    let values: Vec<f64> = s
        .split(',')
        .map(|v| {
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("`{v}` is not a probability"))
        })
        .collect::<Result<_, _>>()?;
    let [drop, duplicate, corrupt, garbage] = values[..] else {
        return Err("give four probabilities: drop,duplicate,corrupt,garbage".into());
    };
    if values.iter().any(|p| !(0.0..=1.0).contains(p)) {
        return Err("probabilities are between 0 and 1".into());
    }
    Ok(ByteFaults {
        drop,
        duplicate,
        corrupt,
        garbage,
    })
}

/// Runs a `radio` command.
pub async fn run(command: RadioCommand, ctx: &Context) -> Result<(), AppError> {
    match command {
        RadioCommand::List => list(ctx, Path::new("/sys/class/tty")),
        RadioCommand::Check(args) => check(args, ctx).await,
        RadioCommand::Emulate(args) => emulate(args).await,
    }
}

/// One serial port found in sysfs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Port {
    /// `/dev/NAME`.
    pub path: String,
    /// USB vendor id, 4 hex digits.
    pub vid: Option<String>,
    /// USB product id.
    pub pid: Option<String>,
    /// USB product string.
    pub product: Option<String>,
    /// USB serial number.
    pub serial: Option<String>,
    /// Espressif's vendor id.
    pub espressif: bool,
}

/// Serial ports under `sysfs_tty` (normally `/sys/class/tty`) that have a device behind
/// them; USB ids from the nearest USB device up the tree.
pub fn serial_ports(sysfs_tty: &Path) -> Vec<Port> {
    let Ok(entries) = std::fs::read_dir(sysfs_tty) else {
        return Vec::new();
    };
    let mut ports: Vec<Port> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            // Real ports have a device; virtual consoles and ptys do not.
            let device = std::fs::canonicalize(entry.path().join("device")).ok()?;
            let usb = device
                .ancestors()
                .find(|dir| dir.join("idVendor").is_file());
            let read = |file: &str| {
                usb.and_then(|dir| std::fs::read_to_string(dir.join(file)).ok())
                    .map(|v| v.trim().to_string())
            };
            let vid = read("idVendor");
            Some(Port {
                path: format!("/dev/{name}"),
                espressif: vid.as_deref() == Some(ESPRESSIF_VID),
                pid: read("idProduct"),
                product: read("product"),
                serial: read("serial"),
                vid,
            })
        })
        // Legacy 8250 ports without a USB device are almost never a bridge; keep USB ones.
        .filter(|port| port.vid.is_some())
        .collect();
    ports.sort_by(|a, b| a.path.cmp(&b.path));
    ports
}

fn list(ctx: &Context, sysfs_tty: &Path) -> Result<(), AppError> {
    let ports = serial_ports(sysfs_tty);
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&ports).unwrap_or_default()
        );
        return Ok(());
    }
    if ports.is_empty() {
        println!(
            "no USB serial ports found: plug the bridge in (a data cable, not a charge-only one)"
        );
        return Ok(());
    }
    for port in ports {
        let ids = format!(
            "{}:{}",
            port.vid.as_deref().unwrap_or("????"),
            port.pid.as_deref().unwrap_or("????")
        );
        let mark = if port.espressif { "  <- Espressif" } else { "" };
        println!(
            "{:<16} {ids}  {}{}{mark}",
            port.path,
            port.product.as_deref().unwrap_or("-"),
            port.serial.map(|s| format!(" ({s})")).unwrap_or_default()
        );
    }
    Ok(())
}

async fn check(args: CheckArgs, ctx: &Context) -> Result<(), AppError> {
    let LinkSpec::Serial { path } = &args.link else {
        return Err(AppError::Usage(
            "`radio check` checks a radio bridge: give --link serial:PATH".into(),
        ));
    };
    let link = SerialLink::open(SerialConfig::new(path, args.channel))
        .await
        .map_err(serial_error)?;
    let hello = *link.hello();
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"event": "hello", "port": path, "mac": Addr(hello.mac).to_string(),
                "firmware": hello.firmware.to_string(), "protocol": hello.protocol_version,
                "max_payload": hello.max_payload, "channel": args.channel})
        );
    } else {
        println!(
            "bridge {} on {}: firmware {}, bridge protocol v{}, payloads up to {} bytes; listening on channel {}",
            Addr(hello.mac),
            path.display(),
            hello.firmware,
            hello.protocol_version,
            hello.max_payload,
            args.channel
        );
    }
    let end =
        (args.seconds > 0).then(|| tokio::time::Instant::now() + Duration::from_secs(args.seconds));
    let mut second = tokio::time::interval(Duration::from_secs(1));
    second.tick().await;
    let mut heard: BTreeMap<Addr, Vec<i8>> = BTreeMap::new();
    loop {
        tokio::select! {
            frame = link.recv() => {
                let frame = frame.map_err(|e| AppError::io("the bridge link stopped", e))?;
                heard.entry(frame.src).or_default().push(frame.rssi);
            }
            _ = second.tick() => {
                report_second(&heard, ctx.json);
                heard.clear();
                if end.is_some_and(|end| tokio::time::Instant::now() >= end) {
                    break;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
        }
    }
    let stats = link.stats();
    if !ctx.json {
        println!(
            "line: {} bad runs ({} bytes of garbage), {} bridge reboots, {} reopens",
            stats.bad_frames, stats.garbage_bytes, stats.bridge_reboots, stats.reopens
        );
    }
    Ok(())
}

fn report_second(heard: &BTreeMap<Addr, Vec<i8>>, json: bool) {
    let total: usize = heard.values().map(Vec::len).sum();
    if json {
        let sources: Vec<_> = heard
            .iter()
            .map(|(src, rssi)| {
                serde_json::json!({"src": src.to_string(), "frames": rssi.len(),
                "rssi_min": rssi.iter().min(), "rssi_max": rssi.iter().max()})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"event": "second", "frames": total, "sources": sources})
        );
        return;
    }
    let mut line = format!("{total:>4} frames/s");
    for (src, rssi) in heard {
        let mean = rssi.iter().map(|&r| i32::from(r)).sum::<i32>() / rssi.len().max(1) as i32;
        line.push_str(&format!("  {src}: {} (RSSI {mean} dBm)", rssi.len()));
    }
    println!("{line}");
}

async fn emulate(args: EmulateArgs) -> Result<(), AppError> {
    let LinkSpec::Udp { group } = args.link else {
        return Err(AppError::Usage(
            "the emulated bridge's radio is the UDP link: give --link udp or udp:GROUP:PORT".into(),
        ));
    };
    let mut seed = [0u8; 8];
    getrandom::fill(&mut seed).map_err(|e| AppError::Failed(format!("no OS randomness: {e}")))?;
    let mac = zerotouch_link::derive_mac(&seed);
    let mut radio = UdpLinkConfig::new(mac, args.channel);
    radio.group = group;
    let (emulator, pty) = Emulator::new(EmulatorConfig {
        link_path: args.pty.clone(),
        radio,
        faults: args.faults.unwrap_or_default(),
        seed: u64::from_le_bytes(seed),
        hello_version: args.hello_version,
    })
    .map_err(|e| {
        AppError::io(
            format!("cannot start the emulated bridge at {}", args.pty.display()),
            e,
        )
    })?;
    tracing::info!(pty = %args.pty.display(), %mac, channel = args.channel, "emulated radio bridge running (SIGUSR1: reboot, SIGUSR2: unplug for 0.5 s)");
    let (control, control_rx) = tokio::sync::mpsc::channel(4);
    let signals = tokio::spawn(forward_signals(control));
    let result = emulator.run(pty, control_rx).await;
    signals.abort();
    let _ = std::fs::remove_file(&args.pty);
    result.map_err(|e| AppError::io("the emulated bridge stopped", e))
}

/// SIGUSR1 reboots the emulated bridge, SIGUSR2 unplugs it; SIGINT/SIGTERM end it.
async fn forward_signals(control: tokio::sync::mpsc::Sender<Control>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut usr1), Ok(mut usr2), Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    loop {
        let command = tokio::select! {
            _ = usr1.recv() => Control::Reboot,
            _ = usr2.recv() => Control::Unplug(Duration::from_millis(500)),
            _ = term.recv() => return,
            _ = int.recv() => return,
        };
        tracing::info!(?command, "emulated bridge fault");
        if control.send(command).await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sysfs tree as Linux lays it out for a USB-Serial-JTAG ESP32-C3, a CP2102 and a
    /// legacy 8250 port (no USB device), plus a pty-like entry with no device at all.
    #[test]
    fn serial_ports_read_usb_ids_and_mark_espressif() {
        let root = tempfile::tempdir().unwrap();
        let usb = |dir: &str, vid: &str, pid: &str, product: &str| {
            let device = root.path().join("devices").join(dir);
            let interface = device.join("1-1:1.0");
            std::fs::create_dir_all(&interface).unwrap();
            for (file, value) in [("idVendor", vid), ("idProduct", pid), ("product", product)] {
                std::fs::write(device.join(file), format!("{value}\n")).unwrap();
            }
            interface
        };
        let tty = root.path().join("class/tty");
        std::fs::create_dir_all(&tty).unwrap();
        let add = |name: &str, device: Option<PathBuf>| {
            let dir = tty.join(name);
            std::fs::create_dir_all(&dir).unwrap();
            if let Some(device) = device {
                std::os::unix::fs::symlink(device, dir.join("device")).unwrap();
            }
        };
        add(
            "ttyACM0",
            Some(usb(
                "usb1/1-1",
                "303a",
                "1001",
                "USB JTAG/serial debug unit",
            )),
        );
        add(
            "ttyUSB0",
            Some(usb("usb1/1-2", "10c4", "ea60", "CP2102 USB to UART")),
        );
        let legacy = root.path().join("devices/platform/serial8250");
        std::fs::create_dir_all(&legacy).unwrap();
        add("ttyS0", Some(legacy));
        add("tty1", None);

        let ports = serial_ports(&tty);
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert_eq!(ports[0].path, "/dev/ttyACM0");
        assert_eq!(
            (ports[0].vid.as_deref(), ports[0].pid.as_deref()),
            (Some("303a"), Some("1001"))
        );
        assert!(ports[0].espressif);
        assert_eq!(ports[1].path, "/dev/ttyUSB0");
        assert!(!ports[1].espressif);
        assert!(serial_ports(&root.path().join("missing")).is_empty());
    }

    #[test]
    fn faults_parse_or_say_what_is_wrong() {
        let faults = parse_faults("0.1,0,0.2,1").unwrap();
        assert_eq!(
            (faults.drop, faults.corrupt, faults.garbage),
            (0.1, 0.2, 1.0)
        );
        assert!(parse_faults("0.1,0").unwrap_err().contains("four"));
        assert!(parse_faults("2,0,0,0").unwrap_err().contains("between"));
        assert!(parse_faults("x,0,0,0").unwrap_err().contains("`x`"));
    }
}
