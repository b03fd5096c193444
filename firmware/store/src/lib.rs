//! Persistent enrollee state on NOR flash for the zerotouch firmware, in a power-fail-safe
//! key/value map (sequential-storage). Generic over the flash, so the same code runs on the
//! ESP32-C3 (esp-storage) and in the host tests, which cut the power at every write.
//!
//! What is stored, each as one map item (an item is written atomically: after a power cut the
//! map holds either the old or the new value, never a mix):
//! - the identity key: generated once on first boot and never regenerated (a read error is
//!   returned, never answered with a new key: a new identity would orphan its allowlist entry);
//! - the commit record: the pinned owner key, the channel the session ran on, the
//!   configurator's authenticated time and the length and slot of the committed configuration.
//!   Its presence is the "provisioned" flag;
//! - the configuration object, in chunks, in one of two slots (A/B);
//! - the boot counter: the high half of the signed announcement counter (PROTOCOL.md §4.1),
//!   raised by [`Store::next_boot`] once per `Enrollee` and never lowered or wrapped.
//!
//! A commit writes the new configuration into the slot the current record does not point
//! at, reads it back, and only then writes the commit record: a power cut at any moment leaves
//! either the previous commit or the new one, both complete. The firmware commits only after
//! the protocol's `Provisioned` event (the configurator has persisted the join report), so a
//! configuration that never joined is never stored.
//!
//! [`owner_trust`] derives the enrollee's [`Trust`](zerotouch_proto::enrollee::Trust) from
//! the manufacturing owner keys and the owner the commit record pinned.
//!
//! `no_std`, no allocator.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod trust;

pub use trust::{TrustSetError, owner_trust};

use core::ops::Range;

use embedded_storage_async::nor_flash::MultiwriteNorFlash;
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};
use zeroize::{Zeroize, Zeroizing};
use zerotouch_proto::config::MAX_CONFIG_LEN;
use zerotouch_proto::enrollee::Provisioned;
use zerotouch_proto::{PublicKey, SigningIdentity, SuiteId};

/// Configuration bytes per map item: a map item must fit in one 4 KiB flash page.
pub const CHUNK_LEN: usize = 2048;
/// Chunks of the largest configuration object.
const MAX_CHUNKS: usize = MAX_CONFIG_LEN.div_ceil(CHUNK_LEN);
/// Work buffer of the map: the largest item (key + chunk), rounded up, with headroom.
const BUFFER_LEN: usize = CHUNK_LEN + 64;
/// Version byte at the start of every record; a record of another version is rejected.
const RECORD_VERSION: u8 = 1;
/// Identity record: version, suite, 32-byte secret.
const IDENTITY_RECORD_LEN: usize = 34;
/// Commit record: version, slot, config length (2), channel, Unix time (4), owner suite, key.
const COMMIT_HEADER_LEN: usize = 10;
const COMMIT_RECORD_MAX: usize = COMMIT_HEADER_LEN + 33;
/// Boot counter record: version, counter (4, big-endian).
const BOOT_RECORD_LEN: usize = 5;

/// Map keys.
mod key {
    /// The identity record.
    pub const IDENTITY: u16 = 0x0001;
    /// The commit record.
    pub const COMMIT: u16 = 0x0002;
    /// The boot counter record.
    pub const BOOT: u16 = 0x0003;

    /// Chunk `index` of the configuration in `slot` (0 or 1).
    pub const fn config_chunk(slot: u8, index: u8) -> u16 {
        0x1000 | ((slot as u16) << 8) | index as u16
    }
}

/// What went wrong with the store. `E` is the flash driver's error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageError<E> {
    /// The flash range is not aligned to erase pages or shorter than two pages.
    BadRange,
    /// The flash driver failed (the chip may be worn out, or the power failed).
    Flash(E),
    /// The storage range is full: enlarge the partition.
    Full,
    /// The store is corrupted beyond the automatic repair: erase the partition to recover
    /// (the device identity is lost and must be registered again).
    Corrupted,
    /// A stored record does not decode (unknown version, bad length, invalid key): it was
    /// written by an incompatible firmware.
    BadRecord(&'static str),
    /// The configuration object is empty or larger than the protocol allows.
    ConfigSize,
    /// A value read back after writing differs from what was written.
    VerifyFailed,
    /// The boot counter is at `u32::MAX`: another boot would repeat announcement counters
    /// (configurators would take them for replays), so none is started.
    BootCounterExhausted,
}

impl<E: core::fmt::Debug> core::fmt::Display for StorageError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadRange => f.write_str(
                "the storage partition must be aligned to 4 KiB pages and at least 8 KiB long: fix the partition table",
            ),
            Self::Flash(e) => write!(f, "flash driver error: {e:?}"),
            Self::Full => f.write_str("the storage partition is full: enlarge it in the partition table"),
            Self::Corrupted => f.write_str(
                "the store is corrupted beyond repair: erase the storage partition (the identity is lost)",
            ),
            Self::BadRecord(what) => {
                write!(f, "stored {what} does not decode: written by an incompatible firmware")
            }
            Self::ConfigSize => write!(f, "configuration empty or larger than {MAX_CONFIG_LEN} bytes"),
            Self::VerifyFailed => f.write_str("read-back after write differs: the flash may be failing"),
            Self::BootCounterExhausted => f.write_str(
                "the boot counter is at its maximum (4294967295): erase the storage partition and register the device again (new identity)",
            ),
        }
    }
}

impl<E> From<sequential_storage::Error<E>> for StorageError<E> {
    fn from(e: sequential_storage::Error<E>) -> Self {
        use sequential_storage::Error as S;
        match e {
            S::Storage { value, .. } => Self::Flash(value),
            S::FullStorage | S::ItemTooBig => Self::Full,
            // Buffer sizes are constants sized for the largest item, so the remaining errors
            // mean stored item headers lie: corruption.
            _ => Self::Corrupted,
        }
    }
}

/// The committed provisioning result: the device's "provisioned" state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The owner key pinned by this provisioning (trust on first use, or confirmed pin).
    pub owner: PublicKey,
    /// The channel the session ran on: announced on first when re-provisioning.
    pub channel: u8,
    /// The configurator's authenticated Unix time: the best known time.
    pub unix_time: u32,
    slot: u8,
    config_len: u16,
}

impl Committed {
    /// Length of the committed configuration object in bytes.
    pub fn config_len(&self) -> usize {
        usize::from(self.config_len)
    }

    fn encode(&self) -> ([u8; COMMIT_RECORD_MAX], usize) {
        let mut out = [0u8; COMMIT_RECORD_MAX];
        out[0] = RECORD_VERSION;
        out[1] = self.slot;
        out[2..4].copy_from_slice(&self.config_len.to_be_bytes());
        out[4] = self.channel;
        out[5..9].copy_from_slice(&self.unix_time.to_be_bytes());
        out[9] = self.owner.suite() as u8;
        let owner = self.owner.as_wire();
        out[COMMIT_HEADER_LEN..COMMIT_HEADER_LEN + owner.len()].copy_from_slice(owner);
        (out, COMMIT_HEADER_LEN + owner.len())
    }

    fn decode<E>(bytes: &[u8]) -> Result<Self, StorageError<E>> {
        const BAD: &str = "commit record";
        if bytes.len() < COMMIT_HEADER_LEN || bytes[0] != RECORD_VERSION || bytes[1] > 1 {
            return Err(StorageError::BadRecord(BAD));
        }
        let suite = SuiteId::from_u8(bytes[9]).ok_or(StorageError::BadRecord(BAD))?;
        let owner_bytes = &bytes[COMMIT_HEADER_LEN..];
        if owner_bytes.len() != suite.public_key_len() {
            return Err(StorageError::BadRecord(BAD));
        }
        let config_len = u16::from_be_bytes([bytes[2], bytes[3]]);
        if config_len == 0 || usize::from(config_len) > MAX_CONFIG_LEN {
            return Err(StorageError::BadRecord(BAD));
        }
        Ok(Self {
            owner: PublicKey::from_wire(suite, owner_bytes)
                .map_err(|_| StorageError::BadRecord(BAD))?,
            channel: bytes[4],
            unix_time: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]),
            slot: bytes[1],
            config_len,
        })
    }
}

/// The store: a sequential-storage map over a flash range.
pub struct Store<F: MultiwriteNorFlash> {
    map: MapStorage<u16, F, Cache<Uncached, Uncached, Uncached, u16>>,
    buffer: [u8; BUFFER_LEN],
}

impl<F: MultiwriteNorFlash> Store<F> {
    /// Opens the map over `range` of `flash` (page aligned, at least two pages). Touches no
    /// flash outside `range`.
    pub fn new(flash: F, range: Range<u32>) -> Result<Self, StorageError<F::Error>> {
        let config = MapConfig::try_new(range).map_err(|_| StorageError::BadRange)?;
        Ok(Self {
            map: MapStorage::new(flash, config, Cache::new_uncached()),
            buffer: [0; BUFFER_LEN],
        })
    }

    /// Gives the flash back.
    pub fn into_flash(self) -> F {
        self.map.destroy().0
    }

    /// Copies the value of `key` into `out`; returns its length, or `None` if absent.
    async fn fetch(
        &mut self,
        key: u16,
        out: &mut [u8],
    ) -> Result<Option<usize>, StorageError<F::Error>> {
        let value: Option<&[u8]> = self.map.fetch_item(&mut self.buffer, &key).await?;
        let Some(bytes) = value else { return Ok(None) };
        let dst = out
            .get_mut(..bytes.len())
            .ok_or(StorageError::BadRecord("item length"))?;
        dst.copy_from_slice(bytes);
        Ok(Some(bytes.len()))
    }

    async fn store(&mut self, key: u16, value: &[u8]) -> Result<(), StorageError<F::Error>> {
        self.map.store_item(&mut self.buffer, &key, &value).await?;
        Ok(())
    }

    /// Loads the identity key, or generates, stores and verifies one if none was ever stored.
    /// Returns whether it was generated now. A read error is returned, never answered with a
    /// new key.
    pub async fn identity_or_generate<R: rand_core::CryptoRng>(
        &mut self,
        suite: SuiteId,
        rng: &mut R,
    ) -> Result<(SigningIdentity, bool), StorageError<F::Error>> {
        if let Some(identity) = self.identity().await? {
            return Ok((identity, false));
        }
        let identity = SigningIdentity::generate(suite, rng);
        let mut record = Zeroizing::new([0u8; IDENTITY_RECORD_LEN]);
        record[0] = RECORD_VERSION;
        record[1] = identity.suite() as u8;
        record[2..].copy_from_slice(&identity.secret_bytes()[..]);
        let stored = self.store(key::IDENTITY, &record[..]).await;
        self.buffer.zeroize();
        stored?;
        // Read back: the device must never run with an identity that did not persist.
        let reread = self.identity().await?.ok_or(StorageError::VerifyFailed)?;
        if reread.public_key() != identity.public_key() {
            return Err(StorageError::VerifyFailed);
        }
        Ok((identity, true))
    }

    /// Loads the stored identity key, if any.
    pub async fn identity(&mut self) -> Result<Option<SigningIdentity>, StorageError<F::Error>> {
        let mut record = Zeroizing::new([0u8; IDENTITY_RECORD_LEN]);
        let found = self.fetch(key::IDENTITY, &mut record[..]).await;
        // The work buffer held the secret.
        self.buffer.zeroize();
        let bad = || StorageError::BadRecord("identity");
        match found? {
            None => Ok(None),
            Some(IDENTITY_RECORD_LEN) if record[0] == RECORD_VERSION => {
                let suite = SuiteId::from_u8(record[1]).ok_or_else(bad)?;
                SigningIdentity::from_secret_bytes(suite, &record[2..])
                    .map(Some)
                    .map_err(|_| bad())
            }
            Some(_) => Err(bad()),
        }
    }

    /// The commit record, if the device was ever provisioned.
    pub async fn committed(&mut self) -> Result<Option<Committed>, StorageError<F::Error>> {
        let mut record = [0u8; COMMIT_RECORD_MAX];
        match self.fetch(key::COMMIT, &mut record).await? {
            None => Ok(None),
            Some(len) => Committed::decode(&record[..len]).map(Some),
        }
    }

    /// Reads the committed configuration object into `out`; returns its bytes.
    pub async fn committed_config<'o>(
        &mut self,
        committed: &Committed,
        out: &'o mut [u8],
    ) -> Result<&'o [u8], StorageError<F::Error>> {
        let out = out
            .get_mut(..committed.config_len())
            .ok_or(StorageError::ConfigSize)?;
        for (index, chunk) in out.chunks_mut(CHUNK_LEN).enumerate() {
            let chunk_key = key::config_chunk(committed.slot, index as u8);
            match self.fetch(chunk_key, chunk).await? {
                Some(n) if n == chunk.len() => {}
                _ => return Err(StorageError::BadRecord("configuration chunk")),
            }
        }
        Ok(out)
    }

    /// Commits a provisioning result: configuration first (into the free slot, verified),
    /// then the commit record that makes it current. Call only after the `Provisioned` event.
    pub async fn commit(
        &mut self,
        provisioned: &Provisioned,
        config: &[u8],
    ) -> Result<Committed, StorageError<F::Error>> {
        if config.is_empty() || config.len() > MAX_CONFIG_LEN {
            return Err(StorageError::ConfigSize);
        }
        // Write into the slot the current record does not name. An undecodable record names
        // nothing usable, so slot 0 is then as good as any; but a flash error must stop the
        // commit: guessing could overwrite the live slot.
        let slot = match self.committed().await {
            Ok(Some(previous)) => 1 - previous.slot,
            Ok(None) | Err(StorageError::BadRecord(_)) => 0,
            Err(e) => return Err(e),
        };
        for (index, chunk) in config.chunks(CHUNK_LEN).enumerate() {
            self.store(key::config_chunk(slot, index as u8), chunk)
                .await?;
        }
        // Verify before switching over: a bad read-back keeps the previous commit current.
        let mut readback = [0u8; CHUNK_LEN];
        for (index, chunk) in config.chunks(CHUNK_LEN).enumerate() {
            let read = self
                .fetch(key::config_chunk(slot, index as u8), &mut readback)
                .await?;
            if read != Some(chunk.len()) || readback[..chunk.len()] != *chunk {
                return Err(StorageError::VerifyFailed);
            }
        }
        let record = Committed {
            owner: provisioned.owner,
            channel: provisioned.channel,
            unix_time: provisioned.unix_time,
            slot,
            config_len: config.len() as u16,
        };
        let (bytes, len) = record.encode();
        self.store(key::COMMIT, &bytes[..len]).await?;
        if self.committed().await? != Some(record) {
            return Err(StorageError::VerifyFailed);
        }
        // The old slot is garbage now; removing it frees flash early (best effort: a stale
        // slot is never read, since the commit record names the current one).
        for index in 0..MAX_CHUNKS as u8 {
            let _ = self
                .map
                .remove_item(&mut self.buffer, &key::config_chunk(1 - slot, index))
                .await;
        }
        Ok(record)
    }

    /// The stored boot counter: 0 if [`next_boot`](Self::next_boot) never persisted one. At
    /// least the last value `next_boot` returned (a call cut short by a power failure may
    /// have persisted its value without returning it).
    pub async fn boot_counter(&mut self) -> Result<u32, StorageError<F::Error>> {
        // Room for a longer record, so that one reads as a bad boot counter record.
        let mut record = [0u8; BOOT_RECORD_LEN + 4];
        match self.fetch(key::BOOT, &mut record).await? {
            None => Ok(0),
            Some(BOOT_RECORD_LEN) if record[0] == RECORD_VERSION => Ok(u32::from_be_bytes([
                record[1], record[2], record[3], record[4],
            ])),
            Some(_) => Err(StorageError::BadRecord("boot counter")),
        }
    }

    /// Raises the boot counter by one and returns the new value, only once it is stored and
    /// read back: every value returned is strictly greater than every value returned before,
    /// across power cuts and reboots. Call it once per `Enrollee`, before its first
    /// announcement (`EnrolleeSettings::boot_counter`). One map item write per call.
    ///
    /// A counter at `u32::MAX` is never wrapped: [`StorageError::BootCounterExhausted`].
    pub async fn next_boot(&mut self) -> Result<u32, StorageError<F::Error>> {
        let next = self
            .boot_counter()
            .await?
            .checked_add(1)
            .ok_or(StorageError::BootCounterExhausted)?;
        let mut record = [0u8; BOOT_RECORD_LEN];
        record[0] = RECORD_VERSION;
        record[1..].copy_from_slice(&next.to_be_bytes());
        self.store(key::BOOT, &record).await?;
        if self.boot_counter().await? != next {
            return Err(StorageError::VerifyFailed);
        }
        Ok(next)
    }
}
