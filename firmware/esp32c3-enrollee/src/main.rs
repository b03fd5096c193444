//! zerotouch enrollee firmware for the ESP32-C3.
//!
//! The device runs the `zerotouch-proto` [`Enrollee`] state machine (the same code the host
//! tests and the simulator exercise) over ESP-NOW. This file is the sans-IO driver: it feeds
//! the core received frames, the time and timer expiries, carries out what the core asks
//! (send a frame, change channel, try a Wi-Fi network, commit to flash) and nothing else.
//!
//! Lifecycle:
//! 1. First boot: generate the identity key from the TRNG, store it, print its key hash
//!    and DPP bootstrap URI (the allowlist entry).
//!    Every boot: decide whom to trust (the manufacturing owner keys plus the owner pinned
//!    by the last commit; none = trust on first use; a key that cannot match the identity
//!    stops the device) and, before every `Enrollee`, raise the boot counter in flash (the
//!    high half of the signed announcement counter, PROTOCOL.md §4.1).
//! 2. Not provisioned: announce (mode New) until a configurator of the owner delivers a
//!    configuration; try its first network; report the result; on `Provisioned` (the
//!    configurator persisted the report) commit the configuration to flash.
//! 3. Provisioned: join the committed networks. When none can be joined any more (e.g. the
//!    passphrase was rotated), announce again in mode Reconfigure with the reason, while
//!    retrying the committed networks every few minutes.

#![no_std]
#![no_main]

extern crate alloc;

mod manufacturing;
mod radio;
mod rng;
mod storage;
mod wifi;

use alloc::boxed::Box;
use alloc::vec;

use embassy_executor::Spawner;
use embassy_futures::select::{Either3, select3};
use embassy_time::{Duration, Instant, Timer};
use esp_backtrace as _;
use esp_hal::clock::CpuClock;
use esp_hal::efuse::{self, InterfaceMacAddress};
use esp_hal::peripherals::{FLASH, WIFI};
use esp_hal::rtc_cntl::{Rtc, RwdtStage};
use esp_hal::timer::timg::TimerGroup;
use esp_radio::esp_now::EspNowError;
use esp_radio::wifi::{ControllerConfig, CountryInfo, WifiController, WifiError};
use esp_storage::FlashStorage;
use zerotouch_firmware_policy::{TimerCheck, stored_channel};
use zerotouch_firmware_store::{TrustSetError, owner_trust};
use zerotouch_proto::config::{ConfigView, MAX_CONFIG_LEN};
use zerotouch_proto::enrollee::{
    AttemptFailure, Enrollee, EnrolleeEvent, EnrolleeSettings, EnrolleeState, EnrolleeTiming, Trust,
};
use zerotouch_proto::uri::BootstrapUri;
use zerotouch_proto::{Addr, AnnounceMode, FailureReason, PublicKey, SuiteId};

use crate::manufacturing::ManufacturingError;
use crate::radio::EspNowRadio;
use crate::rng::{HardwareRng, RngError};
use crate::storage::{Committed, StorageError, Store};

esp_bootloader_esp_idf::esp_app_desc!();

/// Channel to start announcing on when nothing better is known.
const DEFAULT_CHANNEL: u8 = 1;
/// Join rounds over the committed networks before announcing for reconfiguration.
const JOIN_ROUNDS_BEFORE_RECONFIGURE: u32 = 3;
/// Pause between two join rounds of a provisioned device.
const JOIN_ROUND_PAUSE: Duration = Duration::from_secs(10);
/// While announcing for reconfiguration, how often the committed networks are tried again
/// (the access point may only have been down).
const RETRY_COMMITTED_EVERY: Duration = Duration::from_secs(300);
/// Upper bound of one wait when the core has no deadline (it always has one in practice).
const IDLE_WAIT: Duration = Duration::from_secs(20);
/// The RTC watchdog resets the chip when not fed for this long.
const WATCHDOG_TIMEOUT_S: u64 = 30;
/// How often the watchdog task feeds it.
const WATCHDOG_FEED_EVERY: Duration = Duration::from_secs(5);
/// Transient start-up failures (radio, RNG) reset the chip after this pause.
const RESET_AFTER: Duration = Duration::from_secs(5);

/// A panic resets the chip (esp-backtrace's `custom-halt`, after it printed the backtrace):
/// a device in the field must come back by itself.
#[unsafe(no_mangle)]
fn custom_halt() -> ! {
    esp_hal::system::software_reset()
}

/// Feeds the RTC watchdog. The main loop's waits are all bounded (receive/timer selects,
/// the 15 s join, the store), so a hang anywhere in the executor stops the feeding and the
/// watchdog resets the chip.
#[embassy_executor::task]
async fn feed_watchdog(mut rtc: Rtc<'static>) {
    loop {
        rtc.rwdt.feed();
        Timer::after(WATCHDOG_FEED_EVERY).await;
    }
}

/// A condition the firmware cannot run past. Each says what to do about it.
#[derive(Debug)]
enum Fatal {
    /// The Wi-Fi driver did not start.
    Wifi(WifiError),
    /// ESP-NOW could not be set up.
    EspNow(EspNowError),
    /// No true random numbers (the radio is not running).
    Rng(RngError),
    /// The flash store failed.
    Storage(StorageError),
    /// The image was built with unusable manufacturing settings.
    Manufacturing(ManufacturingError),
    /// The owner keys cannot be pinned for this identity (never answered with trust on
    /// first use).
    Trust(TrustSetError),
    /// The identity disappeared from flash after boot.
    IdentityLost,
}

impl Fatal {
    /// Whether a reset may cure it (the radio or the RNG did not start), unlike a bad
    /// store or bad manufacturing settings, which a reset loop would only hide.
    fn transient(&self) -> bool {
        matches!(self, Self::Wifi(_) | Self::EspNow(_) | Self::Rng(_))
    }
}

impl core::fmt::Display for Fatal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Wifi(e) => write!(
                f,
                "Wi-Fi driver failed to start: {e:?} (check the heap size and the radio blobs)"
            ),
            Self::EspNow(e) => write!(f, "ESP-NOW failed: {e:?}"),
            Self::Rng(e) => write!(f, "{e}"),
            Self::Storage(e) => write!(f, "storage: {e}"),
            Self::Manufacturing(e) => write!(f, "manufacturing settings: {e}"),
            Self::Trust(e @ TrustSetError::FactoryKeySuite { identity, .. }) => write!(
                f,
                "manufacturing settings: {e}; rebuild with {} owner keys in ZEROTOUCH_OWNER_KEYS (a stored identity keeps its suite whatever ZEROTOUCH_SUITE says)",
                identity.name()
            ),
            Self::Trust(e @ TrustSetError::CommittedOwnerSuite { .. }) => write!(
                f,
                "storage: {e}; erase the storage partition to recover (the identity is lost)"
            ),
            Self::Trust(e) => write!(f, "manufacturing settings: {e}"),
            Self::IdentityLost => {
                f.write_str("the identity key vanished from flash: the flash is failing")
            }
        }
    }
}

impl From<StorageError> for Fatal {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl From<zerotouch_firmware_store::StorageError<esp_storage::FlashStorageError>> for Fatal {
    fn from(e: zerotouch_firmware_store::StorageError<esp_storage::FlashStorageError>) -> Self {
        Self::Storage(StorageError::Store(e))
    }
}

impl From<EspNowError> for Fatal {
    fn from(e: EspNowError) -> Self {
        Self::EspNow(e)
    }
}

#[esp_rtos::main]
async fn main(spawner: Spawner) -> ! {
    esp_println::logger::init_logger_from_env();
    let peripherals = esp_hal::init(esp_hal::Config::default().with_cpu_clock(CpuClock::max()));
    // The Wi-Fi blobs allocate their buffers on this heap; the zerotouch core needs none.
    esp_alloc::heap_allocator!(#[esp_hal::ram(reclaimed)] size: 64 * 1024);
    esp_alloc::heap_allocator!(size: 48 * 1024);
    let timg0 = TimerGroup::new(peripherals.TIMG0);
    esp_rtos::start(timg0.timer0, peripherals.FROM_CPU_INTR0);
    // esp_hal::init leaves the watchdogs off: arm the RTC one (stage 0 resets the system).
    let mut rtc = Rtc::new(peripherals.RTC_TIMER);
    rtc.rwdt.set_timeout(
        RwdtStage::Stage0,
        esp_hal::time::Duration::from_secs(WATCHDOG_TIMEOUT_S),
    );
    rtc.rwdt.enable();
    spawner.spawn(feed_watchdog(rtc).unwrap());

    let Err(fatal) = run(peripherals.WIFI, peripherals.FLASH).await;
    if fatal.transient() {
        log::error!("{fatal}; resetting in {} s", RESET_AFTER.as_secs());
        Timer::after(RESET_AFTER).await;
        esp_hal::system::software_reset();
    }
    // Rebooting would not fix a bad store or bad settings, only hide them: stay up (the
    // watchdog is still fed) and keep saying what is wrong on the console.
    loop {
        log::error!("halted: {fatal}");
        Timer::after(Duration::from_secs(10)).await;
    }
}

/// Milliseconds since boot: the core's clock.
fn now_ms() -> u64 {
    Instant::now().as_millis()
}

async fn run(
    wifi: WIFI<'static>,
    flash: FLASH<'static>,
) -> Result<core::convert::Infallible, Fatal> {
    // The radio must run before the RNG is taken: it is the TRNG's entropy source.
    let country = CountryInfo::from(manufacturing::MARKET.country_code());
    let mut controller =
        WifiController::new(wifi, ControllerConfig::default().with_country_info(country))
            .map_err(Fatal::Wifi)?;
    if let Err(e) = controller.set_max_tx_power(manufacturing::TX_POWER_QDBM) {
        log::warn!("cannot set the TX power: {e:?}; the driver's default (5 dBm) applies");
    }
    let esp_now = controller.esp_now();
    let mut store = storage::open(FlashStorage::new(flash))?;
    let manufacturing_owners = manufacturing::pinned_owners().map_err(Fatal::Manufacturing)?;
    let suite = manufacturing::identity_suite().map_err(Fatal::Manufacturing)?;

    let mut rng = HardwareRng::new().map_err(Fatal::Rng)?;
    let (identity, generated) = store.identity_or_generate(suite, &mut rng).await?;
    print_identity(&identity.public_key(), generated);
    let identity_suite = identity.suite();
    drop(identity);

    let mut committed = store.committed().await?;
    // Checked at boot, before anything goes on the air: an owner key that can never match
    // stops the device here rather than leaving it to trust on first use.
    let trust = trust_for(identity_suite, &manufacturing_owners, committed.as_ref())?;
    log::info!("trust mode: {}", trust.describe());
    // A bad stored channel must not stop every boot: fall back to the default.
    let (channel, problem) = stored_channel(
        committed.map(|c| c.channel),
        manufacturing::MARKET,
        DEFAULT_CHANNEL,
    );
    if let Some(problem) = problem {
        log::warn!("stored channel unusable ({problem:?}); starting on {channel}");
    }
    if let Some(c) = committed.as_mut() {
        c.channel = channel;
    }
    let mut radio = EspNowRadio::new(esp_now, channel)?;
    // Heap, not stack: the largest configuration object is 8 KiB.
    let mut config_buf: Box<[u8]> = vec![0u8; MAX_CONFIG_LEN].into_boxed_slice();
    let mut last_failure = None;

    loop {
        if let Some(current) = committed {
            let reason = operate(&mut controller, &mut store, &current, &mut config_buf).await?;
            log::warn!(
                "committed networks unusable ({}); announcing for reconfiguration",
                reason.name()
            );
            last_failure = Some(reason);
        }
        let identity = store.identity().await?.ok_or(Fatal::IdentityLost)?;
        // Recomputed: a provisioning since boot pinned its owner.
        let trust = trust_for(identity.suite(), &manufacturing_owners, committed.as_ref())?;
        let mode = if committed.is_some() {
            AnnounceMode::Reconfigure
        } else {
            AnnounceMode::New
        };
        // One flash write per Enrollee, before its first announcement: its announcement
        // counters (boot << 32 | round) are then above every earlier one (PROTOCOL.md §4.1).
        let boot_counter = store.next_boot().await?;
        log::info!(
            "announcing in mode {}, {}, boot counter {boot_counter}",
            mode.name(),
            trust.describe()
        );
        let settings = EnrolleeSettings {
            identity,
            trust,
            mode,
            last_failure,
            last_channel: committed.map(|c| c.channel),
            known_unix_time: committed.map_or(0, |c| c.unix_time),
            // PROTOCOL.md §9.3 values; the configurator waits 30 s for the join report,
            // which covers `wifi::JOIN_TIMEOUT` plus leaving the network.
            timing: EnrolleeTiming::default(),
            boot_counter,
        };
        let rng = HardwareRng::new().map_err(Fatal::Rng)?;
        let mut enrollee = Enrollee::new(settings, rng, now_ms());
        match drive(
            &mut enrollee,
            &mut radio,
            &mut controller,
            &mut store,
            &mut config_buf,
            committed.is_some(),
        )
        .await?
        {
            Outcome::Provisioned(new) => {
                log::info!("provisioned and committed; channel {}", new.channel);
                committed = Some(new);
                last_failure = None;
            }
            Outcome::RetryCommitted => log::info!("retrying the committed networks"),
        }
    }
}

/// The trust of the next `Enrollee`: the manufacturing owner keys plus the owner pinned by
/// the last commit, or trust on first use when there are none. A key of another suite than
/// the identity is fatal (`Fatal::Trust`), never dropped (which could leave no key, i.e.
/// trust on first use).
fn trust_for(
    identity_suite: SuiteId,
    manufacturing_owners: &[PublicKey],
    committed: Option<&Committed>,
) -> Result<Trust, Fatal> {
    let committed_owner = committed.map(|c| c.owner);
    let trust =
        owner_trust(identity_suite, manufacturing_owners, committed_owner).map_err(Fatal::Trust)?;
    if let Some(owner) = committed_owner
        && !trust.owners().contains(&owner)
    {
        log::warn!(
            "the owner pinned by the last provisioning ({}) is not pinned: the manufacturing owner keys fill the list",
            owner.key_hash()
        );
    }
    Ok(trust)
}

/// Prints the identity: the allowlist key hash and the DPP bootstrap URI (for a label/QR).
fn print_identity(key: &PublicKey, generated: bool) {
    if generated {
        log::info!("generated a new identity key on first boot");
    }
    let mac = efuse::interface_mac_address(InterfaceMacAddress::Station);
    let mut mac_bytes = [0u8; 6];
    mac_bytes.copy_from_slice(mac.as_bytes());
    let uri = BootstrapUri {
        key: *key,
        mac: Some(Addr(mac_bytes)),
        info: None,
        version: None,
        channels: None,
    };
    let mut text: heapless::String<192> = heapless::String::new();
    if uri.write(&mut text).is_err() {
        text.clear();
    }
    log::info!(
        "identity ({}) key hash {}",
        key.suite().name(),
        key.key_hash()
    );
    log::info!("bootstrap URI {}", text.as_str());
}

/// Joins the committed networks and stays connected; returns the reason once they could
/// not be joined for [`JOIN_ROUNDS_BEFORE_RECONFIGURE`] rounds.
async fn operate(
    controller: &mut WifiController<'static>,
    store: &mut Store,
    committed: &Committed,
    config_buf: &mut [u8],
) -> Result<FailureReason, Fatal> {
    let config = store.committed_config(committed, config_buf).await?;
    let view = match ConfigView::parse(config) {
        Ok(view) if view.networks().next().is_some() => view,
        _ => {
            log::error!("the committed configuration does not parse or names no network");
            return Ok(FailureReason::ConfigRejected);
        }
    };
    let mut failed_rounds = 0;
    loop {
        let mut first_reason = None;
        for network in view.networks() {
            match wifi::join(controller, &network).await {
                Ok(()) => {
                    failed_rounds = 0;
                    first_reason = None;
                    // The application would run here; this firmware only keeps the link up.
                    if let Ok(info) = controller.wait_for_disconnect_async().await {
                        log::warn!("disconnected: {:?}", info.reason);
                    }
                    break;
                }
                Err(reason) => {
                    first_reason.get_or_insert(reason);
                }
            }
        }
        if let Some(reason) = first_reason {
            failed_rounds += 1;
            if failed_rounds >= JOIN_ROUNDS_BEFORE_RECONFIGURE {
                return Ok(reason);
            }
            Timer::after(JOIN_ROUND_PAUSE).await;
        }
    }
}

/// How an enrollment run ended.
enum Outcome {
    /// Provisioned and committed.
    Provisioned(Committed),
    /// Time to try the committed networks again (reconfiguration only).
    RetryCommitted,
}

/// The driver loop: select(frame, core deadline, retry) → core; then drain events and
/// frames.
async fn drive(
    enrollee: &mut Enrollee<HardwareRng>,
    radio: &mut EspNowRadio,
    controller: &mut WifiController<'static>,
    store: &mut Store,
    config_buf: &mut [u8],
    has_committed: bool,
) -> Result<Outcome, Fatal> {
    // A previous Wi-Fi join may have moved the radio; go back to the enrollee's channel.
    retune(radio, enrollee.channel());
    let mut pending_config: Option<usize> = None;
    let mut retry_at = Instant::now() + RETRY_COMMITTED_EVERY;
    loop {
        // Carry out everything the core asked for: frames first, so that the Config's Ack
        // is on the air before `ConfigReceived` (which the core only releases once that Ack
        // was polled) takes the radio away for the join.
        loop {
            if let Some(transmit) = enrollee.poll_transmit() {
                if let Err(e) = radio.send(&transmit).await {
                    log::debug!("send to {} failed: {e:?}", transmit.dst);
                }
                continue;
            }
            if let Some(event) = enrollee.poll_event() {
                if let Some(committed) = handle_event(
                    event,
                    enrollee,
                    radio,
                    controller,
                    store,
                    config_buf,
                    &mut pending_config,
                )
                .await?
                {
                    return Ok(Outcome::Provisioned(committed));
                }
                continue;
            }
            break;
        }

        let deadline = enrollee
            .poll_timeout()
            .map_or_else(|| Instant::now() + IDLE_WAIT, Instant::from_millis);
        let retry = async {
            if has_committed {
                Timer::at(retry_at).await
            } else {
                core::future::pending::<()>().await
            }
        };
        // A receive that is always ready wins every select: check the timers after each
        // frame too, so that constant traffic cannot starve them.
        if let Either3::First(frame) = select3(radio.receive(), Timer::at(deadline), retry).await {
            enrollee.handle_frame(now_ms(), radio::source(&frame), frame.data());
        }
        let timers = TimerCheck {
            core_deadline: enrollee.poll_timeout(),
            retry_at: has_committed.then(|| retry_at.as_millis()),
        };
        let due = timers.due(now_ms());
        if due.core {
            enrollee.handle_timeout(now_ms());
        }
        if due.retry {
            // Only between sessions: never abandon a configurator mid-exchange.
            if enrollee.state() == EnrolleeState::Announcing {
                return Ok(Outcome::RetryCommitted);
            }
            retry_at = Instant::now() + RETRY_COMMITTED_EVERY;
        }
    }
}

/// Handles one core event; returns the commit once provisioning is complete.
async fn handle_event(
    event: EnrolleeEvent,
    enrollee: &mut Enrollee<HardwareRng>,
    radio: &mut EspNowRadio,
    controller: &mut WifiController<'static>,
    store: &mut Store,
    config_buf: &mut [u8],
    pending_config: &mut Option<usize>,
) -> Result<Option<Committed>, Fatal> {
    match event {
        EnrolleeEvent::ChannelChanged(channel) => {
            if let Err(e) = radio.set_channel(channel) {
                log::warn!("cannot tune to channel {channel}: {e:?}");
            }
        }
        EnrolleeEvent::Authenticated {
            configurator,
            owner,
        } => {
            log::info!(
                "configurator {} (owner {}) authenticated",
                configurator.key_hash(),
                owner.key_hash()
            );
        }
        EnrolleeEvent::ConfiguratorRejected(reason) => {
            log::warn!("configurator rejected: {reason:?}")
        }
        EnrolleeEvent::ConfigReceived => {
            let result =
                try_delivered_config(enrollee, controller, config_buf, pending_config).await;
            // Joining moved the radio to the access point's channel; report on the session's.
            retune(radio, enrollee.channel());
            if let Err(reason) = result {
                log::warn!("delivered configuration failed: {}", reason.name());
                *pending_config = None;
            }
            if let Err(e) = enrollee.report_join(now_ms(), result) {
                log::warn!("join report refused by the core: {e}");
            }
        }
        EnrolleeEvent::Provisioned(provisioned) => {
            let Some(len) = pending_config.take() else {
                log::error!("provisioned without a tested configuration; not committing");
                return Ok(None);
            };
            let committed = store.commit(&provisioned, &config_buf[..len]).await?;
            return Ok(Some(committed));
        }
        EnrolleeEvent::AttemptFailed(failure) => {
            *pending_config = None;
            match failure {
                AttemptFailure::Join(reason) => {
                    log::warn!("attempt failed: join {}", reason.name())
                }
                AttemptFailure::Timeout => {
                    log::warn!("attempt failed: configurator stopped answering")
                }
                AttemptFailure::Aborted => log::warn!("attempt failed: configurator aborted"),
            }
        }
    }
    Ok(None)
}

/// Copies the delivered configuration aside and tries its first network, leaving it again
/// so the radio is free to report.
async fn try_delivered_config(
    enrollee: &Enrollee<HardwareRng>,
    controller: &mut WifiController<'static>,
    config_buf: &mut [u8],
    pending_config: &mut Option<usize>,
) -> Result<(), FailureReason> {
    let bytes = enrollee
        .config()
        .ok_or(FailureReason::ConfigRejected)?
        .as_bytes();
    let stash = config_buf
        .get_mut(..bytes.len())
        .ok_or(FailureReason::ConfigRejected)?;
    stash.copy_from_slice(bytes);
    *pending_config = Some(bytes.len());
    let view = ConfigView::parse(stash).map_err(|_| FailureReason::ConfigRejected)?;
    let network = view
        .networks()
        .next()
        .ok_or(FailureReason::ConfigRejected)?;
    let joined = wifi::join(controller, &network).await;
    wifi::leave(controller).await;
    joined
}

/// Puts the radio back on `channel`. A failure is logged, not fatal: the core's
/// retransmissions and channel hopping recover from a missed frame.
fn retune(radio: &mut EspNowRadio, channel: u8) {
    if let Err(e) = radio.set_channel(channel).and_then(|()| radio.retune()) {
        log::warn!("cannot tune ESP-NOW to channel {channel}: {e:?}");
    }
}
