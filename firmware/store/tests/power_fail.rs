//! The store on a simulated NOR flash (RAM with NOR semantics: writes only clear bits, erase
//! sets a page to 0xFF) that loses power after a chosen number of word writes or page
//! erases. After every possible cut the device "reboots" (a new store over what the flash
//! holds) and must find the identity unchanged and either the old or the new commit,
//! complete, never a mix and never nothing once something was committed.

use embedded_storage_async::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use futures_executor::block_on;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use zerotouch_firmware_store::{Committed, StorageError, Store};
use zerotouch_proto::enrollee::Provisioned;
use zerotouch_proto::{PublicKey, SigningIdentity, SuiteId};

const PAGE: usize = 4096;
const PAGES: usize = 16;
const WORD: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlashError {
    PowerCut,
    Misaligned,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Self::PowerCut => NorFlashErrorKind::Other,
            Self::Misaligned => NorFlashErrorKind::NotAligned,
        }
    }
}

/// NOR flash in RAM. `budget`: word writes and page erases left before the power fails
/// (`None` = power stays on); `operations` counts them.
#[derive(Clone)]
struct RamFlash {
    memory: Vec<u8>,
    budget: Option<usize>,
    operations: usize,
}

impl RamFlash {
    fn new() -> Self {
        Self {
            memory: vec![0xff; PAGE * PAGES],
            budget: None,
            operations: 0,
        }
    }

    fn spend(&mut self) -> Result<(), FlashError> {
        match &mut self.budget {
            Some(0) => Err(FlashError::PowerCut),
            Some(left) => {
                *left -= 1;
                self.operations += 1;
                Ok(())
            }
            None => {
                self.operations += 1;
                Ok(())
            }
        }
    }

    fn range(&self) -> core::ops::Range<u32> {
        0..self.memory.len() as u32
    }
}

impl ErrorType for RamFlash {
    type Error = FlashError;
}

impl ReadNorFlash for RamFlash {
    const READ_SIZE: usize = WORD;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        if self.budget == Some(0) {
            return Err(FlashError::PowerCut);
        }
        let start = offset as usize;
        if !start.is_multiple_of(WORD) || !bytes.len().is_multiple_of(WORD) {
            return Err(FlashError::Misaligned);
        }
        bytes.copy_from_slice(&self.memory[start..start + bytes.len()]);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.memory.len()
    }
}

impl NorFlash for RamFlash {
    const WRITE_SIZE: usize = WORD;
    const ERASE_SIZE: usize = PAGE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(PAGE) || !to.is_multiple_of(PAGE) {
            return Err(FlashError::Misaligned);
        }
        for page in (from..to).step_by(PAGE) {
            self.spend()?;
            self.memory[page..page + PAGE].fill(0xff);
        }
        Ok(())
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let start = offset as usize;
        if !start.is_multiple_of(WORD) || !bytes.len().is_multiple_of(WORD) {
            return Err(FlashError::Misaligned);
        }
        for (i, word) in bytes.chunks_exact(WORD).enumerate() {
            self.spend()?;
            let at = start + i * WORD;
            for (cell, byte) in self.memory[at..at + WORD].iter_mut().zip(word) {
                // NOR programming can only clear bits.
                *cell &= *byte;
            }
        }
        Ok(())
    }
}

impl MultiwriteNorFlash for RamFlash {}

fn open(flash: RamFlash) -> Store<RamFlash> {
    let range = flash.range();
    Store::new(flash, range).expect("the test range is page aligned")
}

fn owner_key(seed: u64) -> PublicKey {
    SigningIdentity::generate(SuiteId::Ed25519, &mut ChaCha20Rng::seed_from_u64(seed)).public_key()
}

fn provisioned(seed: u64, channel: u8, unix_time: u32) -> Provisioned {
    Provisioned {
        owner: owner_key(seed),
        configurator: owner_key(seed + 100),
        channel,
        unix_time,
    }
}

/// A configuration-sized byte pattern (the store does not interpret it).
fn config_bytes(len: usize, tag: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31) ^ tag).collect()
}

fn read_config(store: &mut Store<RamFlash>, committed: &Committed) -> Vec<u8> {
    let mut buf = vec![0u8; 8192];
    block_on(store.committed_config(committed, &mut buf))
        .expect("committed configuration reads")
        .to_vec()
}

#[test]
fn identity_is_generated_once_and_survives_reboots() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut store = open(RamFlash::new());
    let (first, generated) =
        block_on(store.identity_or_generate(SuiteId::Ed25519, &mut rng)).unwrap();
    assert!(generated);
    for _ in 0..3 {
        let mut rebooted = open(store.into_flash());
        let (again, generated) =
            block_on(rebooted.identity_or_generate(SuiteId::Ed25519, &mut rng)).unwrap();
        assert!(!generated, "an existing identity must never be regenerated");
        assert_eq!(again.public_key(), first.public_key());
        store = rebooted;
    }
}

#[test]
fn p256_identity_round_trips() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut store = open(RamFlash::new());
    let (first, _) = block_on(store.identity_or_generate(SuiteId::P256, &mut rng)).unwrap();
    let mut rebooted = open(store.into_flash());
    let again = block_on(rebooted.identity())
        .unwrap()
        .expect("identity stored");
    assert_eq!(again.suite(), SuiteId::P256);
    assert_eq!(again.public_key(), first.public_key());
}

#[test]
fn commits_alternate_slots_and_survive_many_rewrites() {
    let mut store = open(RamFlash::new());
    assert_eq!(block_on(store.committed()).unwrap(), None);
    // 40 commits of up to 8 KiB in a 64 KiB partition: garbage collection must keep up.
    for round in 0..40u32 {
        let len = [1, 2047, 2048, 2049, 5000, 8192][round as usize % 6];
        let config = config_bytes(len, round as u8);
        let committed = block_on(store.commit(
            &provisioned(u64::from(round % 3), 6, 1_700_000_000 + round),
            &config,
        ))
        .unwrap_or_else(|e| panic!("commit {round} failed: {e}"));
        let mut rebooted = open(store.into_flash());
        let found = block_on(rebooted.committed())
            .unwrap()
            .expect("commit record present");
        assert_eq!(found, committed);
        assert_eq!(found.owner, owner_key(u64::from(round % 3)));
        assert_eq!(found.unix_time, 1_700_000_000 + round);
        assert_eq!(read_config(&mut rebooted, &found), config);
        store = rebooted;
    }
}

#[test]
fn oversized_and_empty_configurations_are_refused() {
    let mut store = open(RamFlash::new());
    let p = provisioned(1, 1, 0);
    assert_eq!(
        block_on(store.commit(&p, &[])),
        Err(StorageError::ConfigSize)
    );
    assert_eq!(
        block_on(store.commit(&p, &vec![0u8; 8193])),
        Err(StorageError::ConfigSize)
    );
    assert_eq!(block_on(store.committed()).unwrap(), None);
}

/// Cuts the power at every flash operation of a commit of `new` over `base`, reboots, and
/// checks the outcome is exactly the old state or exactly the new one.
fn cut_at_every_operation(base: RamFlash, old: Option<(&Committed, &[u8])>, new: &[u8]) {
    let new_provisioning = provisioned(9, 11, 1_800_000_000);
    let identity_before = block_on(open(base.clone()).identity())
        .unwrap()
        .map(|i| i.public_key());

    let mut dry_run = open(base.clone());
    let before = dry_run_operations(&mut dry_run);
    block_on(dry_run.commit(&new_provisioning, new)).expect("uninterrupted commit succeeds");
    let total = dry_run_operations(&mut dry_run) - before;
    assert!(
        total > new.len() / WORD,
        "the commit wrote the configuration"
    );

    let (mut saw_old, mut saw_new) = (0, 0);
    for cut in 0..total {
        let mut flash = base.clone();
        flash.budget = Some(cut);
        let mut store = open(flash);
        // A cut after the commit record is durable only skips the best-effort cleanup of
        // the old slot, so the commit may still report success.
        let reported_ok = block_on(store.commit(&new_provisioning, new)).is_ok();

        // Power comes back: reboot.
        let mut flash = store.into_flash();
        flash.budget = None;
        let mut rebooted = open(flash);
        let identity_after = block_on(rebooted.identity())
            .unwrap()
            .map(|i| i.public_key());
        assert_eq!(
            identity_after, identity_before,
            "cut at {cut}: the identity changed"
        );
        match block_on(rebooted.committed()).unwrap_or_else(|e| panic!("cut at {cut}: {e}")) {
            Some(found) if found.owner == new_provisioning.owner => {
                assert_eq!(
                    read_config(&mut rebooted, &found),
                    new,
                    "cut at {cut}: new commit incomplete"
                );
                saw_new += 1;
            }
            _ if reported_ok => panic!("cut at {cut}: a commit reported durable is missing"),
            Some(found) => {
                let (old_commit, old_config) =
                    old.unwrap_or_else(|| panic!("cut at {cut}: a commit appeared from nowhere"));
                assert_eq!(&found, old_commit, "cut at {cut}: old commit changed");
                assert_eq!(
                    read_config(&mut rebooted, &found),
                    old_config,
                    "cut at {cut}: old config damaged"
                );
                saw_old += 1;
            }
            None => {
                assert!(old.is_none(), "cut at {cut}: the previous commit was lost");
                saw_old += 1;
            }
        }
        // The store stays usable: the next commit goes through.
        let again = config_bytes(3000, 0x5a);
        let committed = block_on(rebooted.commit(&provisioned(4, 3, 1), &again))
            .unwrap_or_else(|e| panic!("cut at {cut}: commit after recovery failed: {e}"));
        assert_eq!(read_config(&mut rebooted, &committed), again);
    }
    assert!(saw_old > 0, "no cut landed before the switch-over");
    // With a previous commit, its slot is cleaned up after the switch-over, so some cuts
    // must land after it; a first commit ends with the switch-over itself.
    assert_eq!(
        saw_new > 0,
        old.is_some(),
        "cuts after the switch-over: {saw_new}"
    );
}

fn dry_run_operations(store: &mut Store<RamFlash>) -> usize {
    // Peek at the counter without disturbing the store: move the flash out and back.
    let flash = std::mem::replace(store, open(RamFlash::new())).into_flash();
    let operations = flash.operations;
    *store = open(flash);
    operations
}

#[test]
fn power_cut_during_first_commit_leaves_nothing_or_everything() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut store = open(RamFlash::new());
    block_on(store.identity_or_generate(SuiteId::Ed25519, &mut rng)).unwrap();
    cut_at_every_operation(store.into_flash(), None, &config_bytes(5000, 1));
}

#[test]
fn power_cut_during_recommit_keeps_old_or_new() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut store = open(RamFlash::new());
    block_on(store.identity_or_generate(SuiteId::Ed25519, &mut rng)).unwrap();
    let old_config = config_bytes(8192, 2);
    let old = block_on(store.commit(&provisioned(1, 6, 1_700_000_000), &old_config)).unwrap();
    cut_at_every_operation(
        store.into_flash(),
        Some((&old, &old_config)),
        &config_bytes(6000, 3),
    );
}

#[test]
fn power_cut_during_identity_generation_never_leaves_a_partial_key() {
    let mut dry = open(RamFlash::new());
    let (key, _) =
        block_on(dry.identity_or_generate(SuiteId::Ed25519, &mut ChaCha20Rng::seed_from_u64(5)))
            .unwrap();
    let total = dry.into_flash().operations;
    for cut in 0..total {
        let mut flash = RamFlash::new();
        flash.budget = Some(cut);
        let mut store = open(flash);
        let _ = block_on(
            store.identity_or_generate(SuiteId::Ed25519, &mut ChaCha20Rng::seed_from_u64(5)),
        );
        let mut flash = store.into_flash();
        flash.budget = None;
        let mut rebooted = open(flash);
        match block_on(rebooted.identity()).unwrap_or_else(|e| panic!("cut at {cut}: {e}")) {
            Some(found) => assert_eq!(found.public_key(), key.public_key(), "cut at {cut}"),
            None => {
                // Nothing persisted: the next boot generates one and keeps it.
                let (fresh, generated) = block_on(
                    rebooted
                        .identity_or_generate(SuiteId::Ed25519, &mut ChaCha20Rng::seed_from_u64(6)),
                )
                .unwrap();
                assert!(generated);
                let again = block_on(open(rebooted.into_flash()).identity())
                    .unwrap()
                    .expect("persisted");
                assert_eq!(again.public_key(), fresh.public_key());
            }
        }
    }
}
