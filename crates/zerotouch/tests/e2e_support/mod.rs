//! Helpers for the end-to-end tests: a registry in a temporary directory, the real
//! `zerotouch` binary as daemon and agents, a private UDP link per test, and an in-process
//! fleet of real enrollee state machines on that link (one socket for hundreds of devices).

#![allow(dead_code)] // Each test file uses a different subset.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;
use zerotouch_link::espnow::{ESPNOW_VERSION_1, EspNowRepr};
use zerotouch_link::udp::{DATAGRAM_HEADER_LEN, MAGIC, MAX_DATAGRAM, parse_datagram};
use zerotouch_proto::enrollee::{Enrollee, EnrolleeEvent, EnrolleeSettings, EnrolleeTiming, Trust};
use zerotouch_proto::uri::BootstrapUri;
use zerotouch_proto::{Addr, AnnounceMode, SigningIdentity, SuiteId};

#[path = "../cli_support/mod.rs"]
mod cli_support;

/// A test environment: the CLI tests' registry environment (temporary directory, registry,
/// `cmd`/`run`/`ok`, reached through `Deref`) plus a private link.
pub struct Env {
    /// The registry environment, logging at info level.
    pub base: cli_support::Env,
    /// `--link` value of this test's private UDP link.
    pub link: String,
    /// The link's group and port.
    pub group: SocketAddrV4,
}

impl std::ops::Deref for Env {
    type Target = cli_support::Env;

    fn deref(&self) -> &cli_support::Env {
        &self.base
    }
}

static NEXT_GROUP: AtomicU16 = AtomicU16::new(1);

/// A UDP port that is free now (the OS picks it), for a private multicast link.
fn free_port() -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind an ephemeral port");
    socket.local_addr().expect("local addr").port()
}

impl Env {
    /// A fresh environment with its own multicast group and port.
    pub fn new() -> Self {
        let base = cli_support::Env {
            log_level: "info",
            ..cli_support::Env::new()
        };
        let n = NEXT_GROUP.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id() as u16;
        let group = SocketAddrV4::new(
            Ipv4Addr::new(239, 255, (pid % 200) as u8 + 20, n as u8),
            free_port(),
        );
        Self {
            link: format!("udp:{group}"),
            group,
            base,
        }
    }

    /// `fleet init` and a default profile whose network has a per-device PSK.
    pub fn init_fleet(&self) {
        self.ok(&["fleet", "init"]);
        self.ok(&[
            "profile",
            "set",
            "default",
            "--ssid",
            "plant-floor",
            "--per-device",
            "--channel",
            "6",
            "--setting",
            "mqtt.url=mqtts://broker.example:8883",
        ]);
    }

    /// Starts the configurator daemon on this test's link; its log goes to `daemon-N.log`.
    pub fn start_daemon(&self, name: &str) -> Daemon {
        let log = std::fs::File::create(self.path(&format!("{name}.log"))).expect("daemon log");
        let child = self
            .cmd()
            .args(["configurator", "run", "--link", &self.link])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the daemon");
        Daemon {
            child: Some(child),
            log: self.path(&format!("{name}.log")),
        }
    }

    /// Opens the registry directly (same key file as the CLI).
    pub async fn open_registry(&self) -> zerotouch_store::Registry {
        let path = self.registry();
        let key = zerotouch_store::Registry::default_key_file(&path);
        zerotouch_store::Registry::open(
            &path.to_string_lossy(),
            zerotouch_store::SecretKeySource::File(key),
        )
        .await
        .expect("open the registry")
    }
}

/// A running daemon process; killed on drop.
pub struct Daemon {
    child: Option<Child>,
    /// Its log file.
    pub log: PathBuf,
}

impl Daemon {
    /// A daemon started by the caller (with its own flags), logging to `log`.
    pub fn from_child(child: Child, log: PathBuf) -> Self {
        Self {
            child: Some(child),
            log,
        }
    }

    /// SIGKILL, and reap.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL the daemon");
            let _ = child.wait();
        }
    }

    /// SIGTERM; waits for the exit and returns its code.
    pub fn terminate(&mut self) -> Option<i32> {
        self.signal("TERM");
        self.wait_exit(Duration::from_secs(20))
    }

    /// Sends the signal `name` (`TERM`, `INT`, `HUP`, `USR1`, ...) with kill(1).
    pub fn signal(&self, name: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("the daemon runs")
            .id()
            .to_string();
        let status = Command::new("kill")
            .args([format!("-{name}"), pid.clone()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} {pid}");
    }

    /// Waits for the daemon to exit and returns its code (`None`: killed by a signal);
    /// panics after `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take()?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("wait for the daemon") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop within {timeout:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// True while the process runs (not exited, not reaped).
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| child.try_wait().expect("poll the daemon").is_none())
    }

    /// Waits until the log holds `count` lines containing `needle` (colours stripped);
    /// panics after `timeout` or if the daemon exits first. Returns the log.
    pub fn wait_for_lines(&mut self, needle: &str, count: usize, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let text = strip_ansi(&self.log_text());
            if text.lines().filter(|line| line.contains(needle)).count() >= count {
                return text;
            }
            assert!(
                self.is_running(),
                "the daemon exited before logging {needle:?}:\n{text}"
            );
            assert!(
                Instant::now() < deadline,
                "the daemon did not log {needle:?} {count} time(s) within {timeout:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the log contains `needle`; see [`Daemon::wait_for_lines`].
    pub fn wait_for_log(&mut self, needle: &str, timeout: Duration) -> String {
        self.wait_for_lines(needle, 1, timeout)
    }

    /// CPU time (user + system) the daemon process used so far, in seconds (Linux /proc).
    pub fn cpu_seconds(&self) -> Option<f64> {
        let pid = self.child.as_ref()?.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
        let rest = stat.rsplit_once(')')?.1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        let out = Command::new("getconf").arg("CLK_TCK").output().ok()?;
        let per_second: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        Some(ticks / per_second)
    }

    /// Asks for a status line (SIGUSR1) and returns the value of its field `name`, once the
    /// new line is logged.
    pub fn status_field(&mut self, name: &str) -> u64 {
        let before = strip_ansi(&self.log_text())
            .lines()
            .filter(|line| line.contains(" status "))
            .count();
        self.signal("USR1");
        let log = self.wait_for_lines(" status ", before + 1, Duration::from_secs(20));
        let line = log
            .lines()
            .filter(|line| line.contains(" status "))
            .nth(before)
            .expect("the new status line")
            .to_string();
        let value = line
            .split(&format!(" {name}="))
            .nth(1)
            .unwrap_or_else(|| panic!("no {name}= in {line}"));
        value
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .expect("a number")
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the daemon logs that it loaded an allowlist snapshot of registry change
    /// `counter` or later (its "allowlist reloaded" line), or panics after `timeout`.
    pub fn wait_for_allowlist(&self, counter: i64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self
            .reloaded_counter()
            .is_none_or(|loaded| loaded < counter)
        {
            assert!(
                Instant::now() < deadline,
                "the daemon did not load registry change {counter} within {timeout:?}:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The change counter of the last "allowlist reloaded" line of the log, if any.
    fn reloaded_counter(&self) -> Option<i64> {
        let text = strip_ansi(&self.log_text());
        let line = text
            .lines()
            .rev()
            .find(|line| line.contains("allowlist reloaded"))?;
        let value = line.split("counter=").nth(1)?;
        let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }
}

/// `text` without ANSI colour sequences (`ESC [ ... m`), which the log may carry.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            chars.by_ref().find(|&c| c == 'm');
        } else {
            out.push(c);
        }
    }
    out
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The DPP URI of a device key (as `zerotouch enrollee uri` prints it).
pub fn dpp_uri(identity: &SigningIdentity, mac: Addr) -> String {
    let mut uri = String::new();
    BootstrapUri {
        key: identity.public_key(),
        mac: Some(mac),
        info: None,
        version: None,
        channels: None,
    }
    .write(&mut uri)
    .expect("format URI");
    uri
}

/// Timers for test enrollees: the protocol's, with shorter pauses so that a device that lost
/// its configurator comes back within seconds.
pub fn fast_timing() -> EnrolleeTiming {
    EnrolleeTiming {
        dwell_ms: 100,
        round_pause_initial_ms: 300,
        round_pause_max_ms: 2_000,
        rto_initial_ms: 200,
        rto_max_ms: 800,
        max_retries: 5,
    }
}

/// What the in-process fleet knows about one device.
pub struct Device {
    /// Its identity (a copy of the secret, to list its URI).
    pub identity: SigningIdentity,
    /// Link address.
    pub addr: Addr,
    enrollee: Enrollee<ChaCha8Rng>,
    /// Times it committed a provisioning (must end at exactly 1).
    pub commits: u32,
    /// Configurations it received.
    pub configs: u32,
}

/// Shared view of the fleet for the test thread.
#[derive(Default)]
pub struct FleetStatus {
    /// Commits per device index.
    pub commits: Vec<u32>,
    /// Configurations received per device index.
    pub configs: Vec<u32>,
}

/// N real enrollees behind one UDP socket on the test's link. Runs on its own thread.
pub struct UdpFleet {
    /// Device identities (public part used by the test), by index.
    pub keys: Vec<zerotouch_proto::PublicKey>,
    /// Link addresses, by index.
    pub addrs: Vec<Addr>,
    status: Arc<Mutex<FleetStatus>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl UdpFleet {
    /// Generates `n` device identities (deterministic from `seed`).
    pub fn identities(n: usize, seed: u64, suite: SuiteId) -> Vec<SigningIdentity> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n)
            .map(|_| SigningIdentity::generate(suite, &mut rng))
            .collect()
    }

    /// Link address of a device.
    pub fn addr_of(identity: &SigningIdentity) -> Addr {
        zerotouch_link::derive_mac(&identity.public_key().key_hash().0)
    }

    /// Starts the fleet on `group`: every device announces at once.
    pub fn start(group: SocketAddrV4, identities: Vec<SigningIdentity>, seed: u64) -> Self {
        let socket = join_group(group);
        let status = Arc::new(Mutex::new(FleetStatus {
            commits: vec![0; identities.len()],
            configs: vec![0; identities.len()],
        }));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let keys = identities.iter().map(SigningIdentity::public_key).collect();
        let addrs: Vec<Addr> = identities.iter().map(Self::addr_of).collect();
        let start = Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xf1ee7);
        let mut devices: Vec<Device> = identities
            .into_iter()
            .map(|identity| {
                let copy = SigningIdentity::from_secret_bytes(
                    identity.suite(),
                    identity.secret_bytes().as_slice(),
                )
                .expect("copy identity");
                let addr = Self::addr_of(&identity);
                let settings = EnrolleeSettings {
                    identity,
                    trust: Trust::FirstUse,
                    mode: AnnounceMode::New,
                    last_failure: None,
                    last_channel: Some(6),
                    known_unix_time: 0,
                    timing: fast_timing(),
                    boot_counter: 1,
                };
                let enrollee = Enrollee::new(settings, ChaCha8Rng::from_rng(&mut rng), 0);
                Device {
                    identity: copy,
                    addr,
                    enrollee,
                    commits: 0,
                    configs: 0,
                }
            })
            .collect();
        let thread_status = status.clone();
        let thread_stop = stop.clone();
        let thread = std::thread::spawn(move || {
            run_fleet(
                &socket,
                group,
                &mut devices,
                start,
                &thread_status,
                &thread_stop,
            );
        });
        Self {
            keys,
            addrs,
            status,
            stop,
            thread: Some(thread),
        }
    }

    /// Devices that committed at least once.
    pub fn committed(&self) -> usize {
        self.status
            .lock()
            .expect("status")
            .commits
            .iter()
            .filter(|&&c| c > 0)
            .count()
    }

    /// Commits per device.
    pub fn commits(&self) -> Vec<u32> {
        self.status.lock().expect("status").commits.clone()
    }

    /// Configurations received per device.
    pub fn configs(&self) -> Vec<u32> {
        self.status.lock().expect("status").configs.clone()
    }

    /// Waits until `predicate(committed count)` holds, or panics after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, predicate: impl Fn(usize) -> bool) {
        let deadline = Instant::now() + timeout;
        while !predicate(self.committed()) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {} committed",
                self.committed()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for UdpFleet {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn join_group(group: SocketAddrV4) -> UdpSocket {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("socket");
    socket.set_reuse_address(true).expect("reuse addr");
    socket.set_reuse_port(true).expect("reuse port");
    socket
        .bind(&std::net::SocketAddr::V4(group).into())
        .expect("bind group");
    socket
        .join_multicast_v4(group.ip(), &Ipv4Addr::LOCALHOST)
        .expect("join group");
    socket
        .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
        .expect("multicast if");
    socket.set_multicast_loop_v4(true).expect("multicast loop");
    socket.set_multicast_ttl_v4(1).expect("ttl");
    socket.set_recv_buffer_size(8 << 20).ok();
    let socket: UdpSocket = socket.into();
    socket
        .set_read_timeout(Some(Duration::from_millis(5)))
        .expect("read timeout");
    socket
}

/// Sends frames onto a test's link with any source address (an attacker, a replayer).
pub struct Injector {
    socket: UdpSocket,
    group: SocketAddrV4,
    sequence: u16,
}

impl Injector {
    /// An injector on `group`.
    pub fn new(group: SocketAddrV4) -> Self {
        Self {
            socket: join_group(group),
            group,
            sequence: 0x800,
        }
    }

    /// Sends `transmit` as if from `src`.
    pub fn send(&mut self, src: Addr, transmit: &zerotouch_proto::Transmit) {
        send(&self.socket, self.group, src, transmit, &mut self.sequence);
    }

    /// Waits until a frame addressed to `dst` is on the link (e.g. the configurator's
    /// Challenge to a spoofed address); panics after `timeout`.
    pub fn wait_for_frame_to(&self, dst: Addr, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut buffer = [0u8; 2048];
        loop {
            if let Ok((len, _)) = self.socket.recv_from(&mut buffer)
                && parse_datagram(&buffer[..len]).is_some_and(|frame| frame.dst == dst)
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no frame to {dst} within {timeout:?}"
            );
        }
    }
}

/// The first Announce a fresh enrollee with `identity` (boot counter `boot_counter`) sends
/// on channel 6, as a captured frame.
pub fn captured_announce(
    identity: SigningIdentity,
    boot_counter: u32,
) -> zerotouch_proto::Transmit {
    let settings = EnrolleeSettings {
        identity,
        trust: Trust::FirstUse,
        mode: AnnounceMode::New,
        last_failure: None,
        last_channel: Some(6),
        known_unix_time: 0,
        timing: fast_timing(),
        boot_counter,
    };
    let mut enrollee = Enrollee::new(settings, ChaCha8Rng::seed_from_u64(7), 0);
    enrollee.poll_transmit().expect("an Announce")
}

fn send(
    socket: &UdpSocket,
    group: SocketAddrV4,
    src: Addr,
    transmit: &zerotouch_proto::Transmit,
    sequence: &mut u16,
) {
    let mut datagram = [0u8; MAX_DATAGRAM];
    *sequence = sequence.wrapping_add(1);
    let repr = EspNowRepr {
        retry: false,
        duration: 0,
        dst: transmit.dst,
        src,
        addr3: Addr::BROADCAST,
        sequence_number: *sequence & 0x0fff,
        random: sequence
            .to_le_bytes()
            .repeat(2)
            .try_into()
            .unwrap_or([0; 4]),
        version: ESPNOW_VERSION_1,
        body: &transmit.frame,
    };
    datagram[..4].copy_from_slice(&MAGIC);
    datagram[4] = transmit.channel;
    let len = repr
        .emit(&mut datagram[DATAGRAM_HEADER_LEN..], true)
        .expect("emit frame");
    let _ = socket.send_to(&datagram[..DATAGRAM_HEADER_LEN + len], group);
}

fn run_fleet(
    socket: &UdpSocket,
    group: SocketAddrV4,
    devices: &mut [Device],
    start: Instant,
    status: &Mutex<FleetStatus>,
    stop: &std::sync::atomic::AtomicBool,
) {
    let by_addr: HashMap<Addr, usize> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| (d.addr, i))
        .collect();
    let now = || u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut sequence = 0u16;
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        // Frames for our devices (unicast only: enrollees get no broadcasts).
        while let Ok((len, _)) = socket.recv_from(&mut buffer) {
            let Some(frame) = parse_datagram(&buffer[..len]) else {
                continue;
            };
            let Some(&index) = by_addr.get(&frame.dst) else {
                continue;
            };
            let device = &mut devices[index];
            if device.enrollee.channel() == frame.channel {
                device.enrollee.handle_frame(now(), frame.src, &frame.frame);
                pump(socket, group, device, index, status, &mut sequence, now());
            }
        }
        let t = now();
        for (index, device) in devices.iter_mut().enumerate() {
            if device
                .enrollee
                .poll_timeout()
                .is_some_and(|deadline| deadline <= t)
            {
                device.enrollee.handle_timeout(t);
            }
            pump(socket, group, device, index, status, &mut sequence, t);
        }
    }
}

fn pump(
    socket: &UdpSocket,
    group: SocketAddrV4,
    device: &mut Device,
    index: usize,
    status: &Mutex<FleetStatus>,
    sequence: &mut u16,
    now: u64,
) {
    loop {
        let mut progressed = false;
        while let Some(transmit) = device.enrollee.poll_transmit() {
            send(socket, group, device.addr, &transmit, sequence);
            progressed = true;
        }
        while let Some(event) = device.enrollee.poll_event() {
            progressed = true;
            match event {
                EnrolleeEvent::ConfigReceived => {
                    device.configs += 1;
                    status.lock().expect("status").configs[index] += 1;
                    let _ = device.enrollee.report_join(now, Ok(()));
                }
                EnrolleeEvent::Provisioned(_) => {
                    device.commits += 1;
                    status.lock().expect("status").commits[index] += 1;
                }
                _ => {}
            }
        }
        if !progressed {
            break;
        }
    }
}

/// Writes `uris` one per line into a file for `allow import`.
pub fn write_uri_file(path: &Path, uris: &[String]) {
    std::fs::write(path, uris.join("\n") + "\n").expect("write URI list");
}
