//! The device's persistent state: the `zerotouch-firmware-store` map (identity key, commit
//! record, A/B configuration; power-fail safe, tested on the host with power cuts at every
//! flash write) placed on the ESP32-C3's SPI flash inside the `zerotouch` data partition.

use alloc::boxed::Box;
use alloc::vec;

use embassy_embedded_hal::adapter::BlockingAsync;
use esp_bootloader_esp_idf::partitions::{self, PARTITION_TABLE_MAX_LEN, PartitionEntry};
use esp_storage::{FlashStorage, FlashStorageError};

pub use zerotouch_firmware_store::Committed;

/// Label of the data partition that holds the store (see `partitions.csv`).
pub const PARTITION_LABEL: &[u8] = b"zerotouch";
/// Partition type "data" in the ESP-IDF partition table.
const RAW_TYPE_DATA: u8 = 1;

/// The store on the chip's flash (esp-storage is blocking; the map wants async).
pub type Store = zerotouch_firmware_store::Store<BlockingAsync<FlashStorage<'static>>>;

/// What went wrong with the flash store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageError {
    /// The partition table could not be read: flash it
    /// (`espflash flash --partition-table partitions.csv`).
    PartitionTable,
    /// No `zerotouch` data partition exists: flash `partitions.csv`.
    NoPartition,
    /// The store itself failed.
    Store(zerotouch_firmware_store::StorageError<FlashStorageError>),
}

impl From<zerotouch_firmware_store::StorageError<FlashStorageError>> for StorageError {
    fn from(e: zerotouch_firmware_store::StorageError<FlashStorageError>) -> Self {
        Self::Store(e)
    }
}

impl core::fmt::Display for StorageError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::PartitionTable => f.write_str(
                "cannot read the partition table: flash it with `espflash flash --partition-table partitions.csv`",
            ),
            Self::NoPartition => f.write_str(
                "no `zerotouch` data partition: flash `partitions.csv` from the firmware directory (first flash: `espflash flash --erase-parts zerotouch ...`, see firmware/README.md)",
            ),
            Self::Store(e) => write!(f, "{e}"),
        }
    }
}

/// Finds the `zerotouch` partition and opens the store over it. There is no fallback: the
/// `nvs` partition may hold ESP-IDF data, and a store found there once and in `zerotouch`
/// after a re-flash would be a second identity, orphaning the device's allowlist entry.
pub fn open(mut flash: FlashStorage<'static>) -> Result<Box<Store>, StorageError> {
    let range = {
        let mut table_buf = vec![0u8; PARTITION_TABLE_MAX_LEN];
        let table = partitions::read_partition_table(&mut flash, &mut table_buf)
            .map_err(|_| StorageError::PartitionTable)?;
        // Raw type/subtype checks: `partition_type()` panics on custom (sub)types.
        let is_data = |entry: &PartitionEntry| entry.raw_type() == RAW_TYPE_DATA;
        let labelled = |entry: &PartitionEntry| {
            let label = entry.label();
            let end = label
                .iter()
                .position(|b| *b == 0 || *b == 0xff)
                .unwrap_or(label.len());
            label[..end] == *PARTITION_LABEL
        };
        let chosen = table
            .iter()
            .find(|e| is_data(e) && labelled(e))
            .ok_or(StorageError::NoPartition)?;
        chosen.offset()..chosen.offset() + chosen.len()
    };
    Ok(Box::new(Store::new(BlockingAsync::new(flash), range)?))
}
