//! Persistent device state on flash, in a power-fail-safe key/value map
//! (sequential-storage over esp-storage) inside a dedicated data partition.
//!
//! What is stored, each as one map item (an item is written atomically: after a power cut the
//! map holds either the old or the new value, never a mix):
//! - the identity key: generated once on first boot from the TRNG and never regenerated
//!   (a read error halts the device instead: a new identity would orphan its allowlist entry);
//! - the commit record: the pinned owner key, the channel the session ran on, the
//!   configurator's authenticated time and the length and slot of the committed configuration.
//!   Its presence is the "provisioned" flag;
//! - the configuration object, in chunks, in one of two slots (A/B).
//!
//! A commit writes the new configuration into the slot the current record does not point
//! at, reads it back, and only then writes the commit record: a power cut at any moment leaves
//! either the previous commit or the new one, both complete. Nothing is written before the
//! protocol's `Provisioned` event (the configurator has persisted the join report), so a
//! configuration that never joined is never stored.

use alloc::{boxed::Box, vec};

use embassy_embedded_hal::adapter::BlockingAsync;
use esp_bootloader_esp_idf::partitions::{self, PARTITION_TABLE_MAX_LEN};
use esp_storage::{FlashStorage, FlashStorageError};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};
use zeroize::Zeroize;
use zerotouch_proto::config::MAX_CONFIG_LEN;
use zerotouch_proto::enrollee::Provisioned;
use zerotouch_proto::{PublicKey, SigningIdentity, SuiteId};

/// Label of the data partition that holds the store (see `partitions.csv`).
pub const PARTITION_LABEL: &[u8] = b"zerotouch";

/// Partition type "data" and its subtype "nvs" in the ESP-IDF partition table.
const RAW_TYPE_DATA: u8 = 1;
const RAW_SUBTYPE_NVS: u8 = 2;

/// Configuration bytes per map item: a map item must fit in one 4 KiB flash page.
const CHUNK_LEN: usize = 2048;
/// Chunks of the largest configuration object.
const MAX_CHUNKS: usize = MAX_CONFIG_LEN.div_ceil(CHUNK_LEN);
/// Work buffer of the map: the largest item (key + chunk), rounded up, with headroom.
const BUFFER_LEN: usize = CHUNK_LEN + 64;

/// Version byte at the start of every record; a record of another version is rejected.
const RECORD_VERSION: u8 = 1;

/// Map keys.
mod key {
    /// The identity record.
    pub const IDENTITY: u16 = 0x0001;
    /// The commit record.
    pub const COMMIT: u16 = 0x0002;

    /// Chunk `index` of the configuration in `slot` (0 or 1).
    pub const fn config_chunk(slot: u8, index: u8) -> u16 {
        0x1000 | ((slot as u16) << 8) | index as u16
    }
}

type Flash = BlockingAsync<FlashStorage<'static>>;
type Map = MapStorage<u16, Flash, Cache<Uncached, Uncached, Uncached, u16>>;

/// What went wrong with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageError {
    /// The partition table could not be read: flash the bootloader and partition table
    /// (`espflash flash --partition-table partitions.csv`).
    PartitionTable,
    /// Neither a `zerotouch` nor an `nvs` data partition exists: flash `partitions.csv`.
    NoPartition,
    /// The partition is not aligned to flash pages or smaller than two pages.
    BadPartition,
    /// The flash driver failed (the chip may be worn out or the SPI bus disturbed).
    Flash(FlashStorageError),
    /// The partition is full: enlarge it in `partitions.csv`.
    Full,
    /// The store is corrupted beyond the automatic repair: erase the partition to recover
    /// (the device identity is lost and must be registered again).
    Corrupted,
    /// A stored record does not decode (unknown version, bad length, invalid key): it was
    /// written by an incompatible firmware.
    BadRecord(&'static str),
    /// The configuration object is larger than the protocol allows.
    ConfigTooLarge,
    /// A value read back after writing differs from what was written.
    VerifyFailed,
}

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::PartitionTable => f.write_str(
                "cannot read the partition table: flash it with `espflash flash --partition-table partitions.csv`",
            ),
            Self::NoPartition => f.write_str(
                "no `zerotouch` (or `nvs`) data partition: flash `partitions.csv` from the firmware directory",
            ),
            Self::BadPartition => f.write_str(
                "the storage partition must be 4 KiB aligned and at least 8 KiB long: fix `partitions.csv`",
            ),
            Self::Flash(e) => write!(f, "flash driver error: {e:?}"),
            Self::Full => f.write_str("the storage partition is full: enlarge it in `partitions.csv`"),
            Self::Corrupted => f.write_str(
                "the store is corrupted beyond repair: erase the `zerotouch` partition (the identity is lost)",
            ),
            Self::BadRecord(what) => write!(f, "stored {what} does not decode: written by an incompatible firmware"),
            Self::ConfigTooLarge => write!(f, "configuration larger than {MAX_CONFIG_LEN} bytes"),
            Self::VerifyFailed => f.write_str("read-back after write differs: the flash may be failing"),
        }
    }
}

impl From<sequential_storage::Error<FlashStorageError>> for StorageError {
    fn from(e: sequential_storage::Error<FlashStorageError>) -> Self {
        use sequential_storage::Error as E;
        match e {
            E::Storage { value, .. } => Self::Flash(value),
            E::FullStorage | E::ItemTooBig => Self::Full,
            // The buffer sizes are constants sized for the largest item, so these mean the
            // stored item headers lie: treat as corruption.
            E::BufferTooBig | E::BufferTooSmall(_) | E::SerializationError(_) => Self::Corrupted,
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

    fn encode(&self) -> ([u8; 10 + 33], usize) {
        let mut out = [0u8; 10 + 33];
        out[0] = RECORD_VERSION;
        out[1] = self.slot;
        out[2..4].copy_from_slice(&self.config_len.to_be_bytes());
        out[4] = self.channel;
        out[5..9].copy_from_slice(&self.unix_time.to_be_bytes());
        out[9] = self.owner.suite() as u8;
        let owner = self.owner.as_wire();
        out[10..10 + owner.len()].copy_from_slice(owner);
        (out, 10 + owner.len())
    }

    fn decode(bytes: &[u8]) -> Result<Self, StorageError> {
        let bad = StorageError::BadRecord("commit record");
        if bytes.len() < 10 || bytes[0] != RECORD_VERSION || bytes[1] > 1 {
            return Err(bad);
        }
        let suite = SuiteId::from_u8(bytes[9]).ok_or(bad)?;
        let owner_bytes = &bytes[10..];
        if owner_bytes.len() != suite.public_key_len() {
            return Err(bad);
        }
        let config_len = u16::from_be_bytes([bytes[2], bytes[3]]);
        if config_len == 0 || usize::from(config_len) > MAX_CONFIG_LEN {
            return Err(bad);
        }
        Ok(Self {
            owner: PublicKey::from_wire(suite, owner_bytes).map_err(|_| bad)?,
            channel: bytes[4],
            unix_time: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]),
            slot: bytes[1],
            config_len,
        })
    }
}

/// The store: a sequential-storage map over the storage partition.
pub struct Store {
    map: Map,
    buffer: Box<[u8]>,
}

impl Store {
    /// Finds the storage partition and opens the map over it. Prefers the `zerotouch`
    /// partition; falls back to the `nvs` data partition of the default partition table.
    pub fn open(mut flash: FlashStorage<'static>) -> Result<Self, StorageError> {
        let range = {
            let mut table_buf = vec![0u8; PARTITION_TABLE_MAX_LEN];
            let table = partitions::read_partition_table(&mut flash, &mut table_buf)
                .map_err(|_| StorageError::PartitionTable)?;
            // Raw type/subtype checks: `partition_type()` panics on custom (sub)types.
            let is_data = |entry: &partitions::PartitionEntry| entry.raw_type() == RAW_TYPE_DATA;
            let label_of = |entry: &partitions::PartitionEntry| {
                let label = entry.label();
                let end = label
                    .iter()
                    .position(|b| *b == 0 || *b == 0xff)
                    .unwrap_or(label.len());
                label[..end] == *PARTITION_LABEL
            };
            let chosen = table
                .iter()
                .find(|e| is_data(e) && label_of(e))
                .or_else(|| {
                    table
                        .iter()
                        .find(|e| is_data(e) && e.raw_subtype() == RAW_SUBTYPE_NVS)
                })
                .ok_or(StorageError::NoPartition)?;
            if !label_of(&chosen) {
                log::warn!(
                    "no `zerotouch` partition; using the `nvs` partition at {:#x} ({} bytes)",
                    chosen.offset(),
                    chosen.len()
                );
            }
            chosen.offset()..chosen.offset() + chosen.len()
        };
        let config = MapConfig::try_new(range).map_err(|_| StorageError::BadPartition)?;
        Ok(Self {
            map: MapStorage::new(BlockingAsync::new(flash), config, Cache::new_uncached()),
            buffer: vec![0u8; BUFFER_LEN].into_boxed_slice(),
        })
    }

    /// Copies the value of `key` into `out`; returns its length, or `None` if absent.
    async fn fetch(&mut self, key: u16, out: &mut [u8]) -> Result<Option<usize>, StorageError> {
        let value: Option<&[u8]> = self.map.fetch_item(&mut self.buffer, &key).await?;
        let result = match value {
            None => None,
            Some(bytes) => {
                let dst = out
                    .get_mut(..bytes.len())
                    .ok_or(StorageError::BadRecord("item length"))?;
                dst.copy_from_slice(bytes);
                Some(bytes.len())
            }
        };
        Ok(result)
    }

    async fn store(&mut self, key: u16, value: &[u8]) -> Result<(), StorageError> {
        self.map.store_item(&mut self.buffer, &key, &value).await?;
        Ok(())
    }

    /// Scrubs the work buffer (it may hold the identity secret).
    fn scrub(&mut self) {
        self.buffer.zeroize();
    }

    /// Loads the identity key, or generates, stores and verifies one if none was ever stored.
    /// A read error is returned, never answered with a new key.
    pub async fn identity_or_generate<R: rand_core::CryptoRng>(
        &mut self,
        suite: SuiteId,
        rng: &mut R,
    ) -> Result<(SigningIdentity, bool), StorageError> {
        if let Some(identity) = self.identity().await? {
            return Ok((identity, false));
        }
        let identity = SigningIdentity::generate(suite, rng);
        let mut record = zeroize::Zeroizing::new([0u8; 34]);
        record[0] = RECORD_VERSION;
        record[1] = identity.suite() as u8;
        record[2..].copy_from_slice(&identity.secret_bytes()[..]);
        let stored = self.store(key::IDENTITY, &record[..]).await;
        self.scrub();
        stored?;
        // Read back: the device must never run with an identity that did not persist.
        let reread = self.identity().await?.ok_or(StorageError::VerifyFailed)?;
        if reread.public_key() != identity.public_key() {
            return Err(StorageError::VerifyFailed);
        }
        Ok((identity, true))
    }

    /// Loads the stored identity key, if any.
    pub async fn identity(&mut self) -> Result<Option<SigningIdentity>, StorageError> {
        let mut record = zeroize::Zeroizing::new([0u8; 34]);
        let found = self.fetch(key::IDENTITY, &mut record[..]).await;
        self.scrub();
        let bad = StorageError::BadRecord("identity");
        match found? {
            None => Ok(None),
            Some(34) if record[0] == RECORD_VERSION => {
                let suite = SuiteId::from_u8(record[1]).ok_or(bad)?;
                SigningIdentity::from_secret_bytes(suite, &record[2..])
                    .map(Some)
                    .map_err(|_| bad)
            }
            Some(_) => Err(bad),
        }
    }

    /// The commit record, if the device was ever provisioned.
    pub async fn committed(&mut self) -> Result<Option<Committed>, StorageError> {
        let mut record = [0u8; 10 + 33];
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
    ) -> Result<&'o [u8], StorageError> {
        let len = committed.config_len();
        let out = out.get_mut(..len).ok_or(StorageError::ConfigTooLarge)?;
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
    ) -> Result<Committed, StorageError> {
        if config.is_empty() || config.len() > MAX_CONFIG_LEN {
            return Err(StorageError::ConfigTooLarge);
        }
        let previous = self.committed().await.ok().flatten();
        let slot = match previous {
            Some(p) => 1 - p.slot,
            None => 0,
        };
        for (index, chunk) in config.chunks(CHUNK_LEN).enumerate() {
            self.store(key::config_chunk(slot, index as u8), chunk)
                .await?;
        }
        let record = Committed {
            owner: provisioned.owner,
            channel: provisioned.channel,
            unix_time: provisioned.unix_time,
            slot,
            config_len: config.len() as u16,
        };
        // Verify before switching over: a bad read-back keeps the previous commit current.
        let mut readback = vec![0u8; config.len()];
        if self.committed_config(&record, &mut readback).await? != config {
            return Err(StorageError::VerifyFailed);
        }
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
}
