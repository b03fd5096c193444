//! The store on a simulated NOR flash (RAM with NOR semantics: writes only clear bits, erase
//! sets a page to 0xFF) that loses power after a chosen number of word writes or page
//! erases. After every possible cut the device "reboots" (a new store over what the flash
//! holds) and must find the identity unchanged and either the old or the new commit,
//! complete, never a mix and never nothing once something was committed; the boot counter
//! must never give out a value twice or go backwards, and commits and identity writes must
//! leave it as it was.

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
/// (`None` = power stays on); `operations` counts them, `erases` the page erases alone.
#[derive(Clone)]
struct RamFlash {
    memory: Vec<u8>,
    budget: Option<usize>,
    operations: usize,
    erases: usize,
}

impl RamFlash {
    fn new() -> Self {
        Self::with_pages(PAGES)
    }

    fn with_pages(pages: usize) -> Self {
        Self {
            memory: vec![0xff; PAGE * pages],
            budget: None,
            operations: 0,
            erases: 0,
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
            self.erases += 1;
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
    let boot_before = block_on(open(base.clone()).boot_counter()).unwrap();
    assert!(boot_before > 0, "the base has a boot counter to disturb");

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
        assert_eq!(
            block_on(rebooted.boot_counter()),
            Ok(boot_before),
            "cut at {cut}: the commit disturbed the boot counter"
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
        assert_eq!(block_on(rebooted.next_boot()), Ok(boot_before + 1));
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
    assert_eq!(block_on(store.next_boot()), Ok(1));
    cut_at_every_operation(store.into_flash(), None, &config_bytes(5000, 1));
}

#[test]
fn power_cut_during_recommit_keeps_old_or_new() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut store = open(RamFlash::new());
    block_on(store.identity_or_generate(SuiteId::Ed25519, &mut rng)).unwrap();
    let old_config = config_bytes(8192, 2);
    let old = block_on(store.commit(&provisioned(1, 6, 1_700_000_000), &old_config)).unwrap();
    for expected in 1..=3 {
        assert_eq!(block_on(store.next_boot()), Ok(expected));
    }
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

/// Writes `value` under the store's boot counter key (0x0003) directly with
/// sequential-storage, as a store of another firmware (or one near the end of its life)
/// would have left it.
fn plant_boot_record(flash: RamFlash, value: &[u8]) -> RamFlash {
    use sequential_storage::cache::Cache;
    use sequential_storage::map::{MapConfig, MapStorage};
    let config = MapConfig::try_new(flash.range()).unwrap();
    let mut map = MapStorage::new(flash, config, Cache::new_uncached());
    let mut buffer = [0u8; 256];
    block_on(map.store_item(&mut buffer, &0x0003u16, &value)).unwrap();
    map.destroy().0
}

#[test]
fn boot_counter_starts_at_one_and_grows_across_reboots() {
    let mut store = open(RamFlash::new());
    assert_eq!(block_on(store.boot_counter()), Ok(0), "absent counts as 0");
    for expected in 1..=5u32 {
        assert_eq!(block_on(store.next_boot()), Ok(expected));
        let mut rebooted = open(store.into_flash());
        assert_eq!(block_on(rebooted.boot_counter()), Ok(expected));
        store = rebooted;
    }
    // The record format: version 1, then the counter big-endian.
    let planted = plant_boot_record(RamFlash::new(), &[1, 0, 0, 1, 0]);
    assert_eq!(block_on(open(planted).next_boot()), Ok(257));
}

#[test]
fn boot_counter_at_u32_max_is_an_error_not_a_wrap() {
    let flash = plant_boot_record(RamFlash::new(), &[1, 0xff, 0xff, 0xff, 0xfe]);
    let mut store = open(flash);
    assert_eq!(block_on(store.next_boot()), Ok(u32::MAX));
    for _ in 0..2 {
        assert_eq!(
            block_on(store.next_boot()),
            Err(StorageError::BootCounterExhausted)
        );
        let mut rebooted = open(store.into_flash());
        assert_eq!(block_on(rebooted.boot_counter()), Ok(u32::MAX));
        store = rebooted;
    }
}

#[test]
fn boot_record_of_another_version_or_length_is_refused() {
    for record in [&[2u8, 0, 0, 0, 7][..], &[1, 0, 0, 7], &[1, 0, 0, 0, 7, 0]] {
        let mut store = open(plant_boot_record(RamFlash::new(), record));
        assert_eq!(
            block_on(store.next_boot()),
            Err(StorageError::BadRecord("boot counter")),
            "record {record:?}"
        );
        // Nothing was written over it.
        assert_eq!(
            block_on(store.boot_counter()),
            Err(StorageError::BadRecord("boot counter"))
        );
    }
}

#[test]
fn commits_and_identity_leave_the_boot_counter_alone() {
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let mut store = open(RamFlash::new());
    assert_eq!(block_on(store.next_boot()), Ok(1));
    block_on(store.identity_or_generate(SuiteId::P256, &mut rng)).unwrap();
    assert_eq!(block_on(store.boot_counter()), Ok(1));
    // Enough 8 KiB commits to wrap the 64 KiB map several times (garbage collection moves
    // the boot counter item along).
    let mut boots = 1;
    for round in 0..30u32 {
        block_on(store.commit(&provisioned(2, 1, round), &config_bytes(8192, round as u8)))
            .unwrap();
        let mut rebooted = open(store.into_flash());
        assert_eq!(
            block_on(rebooted.boot_counter()),
            Ok(boots),
            "round {round}"
        );
        if round % 4 == 0 {
            boots += 1;
            assert_eq!(block_on(rebooted.next_boot()), Ok(boots));
        }
        store = rebooted;
    }
    assert!(store.into_flash().erases > 16, "the map wrapped");
}

#[test]
fn power_cut_during_identity_generation_leaves_the_boot_counter_alone() {
    let mut base = open(RamFlash::new());
    for expected in 1..=4 {
        assert_eq!(block_on(base.next_boot()), Ok(expected));
    }
    let base = base.into_flash();
    let mut dry = open(base.clone());
    let before = dry_run_operations(&mut dry);
    block_on(dry.identity_or_generate(SuiteId::Ed25519, &mut ChaCha20Rng::seed_from_u64(11)))
        .unwrap();
    let total = dry_run_operations(&mut dry) - before;
    assert!(total > 0);
    for cut in 0..total {
        let mut flash = base.clone();
        flash.budget = Some(cut);
        let mut store = open(flash);
        let _ = block_on(
            store.identity_or_generate(SuiteId::Ed25519, &mut ChaCha20Rng::seed_from_u64(11)),
        );
        let mut flash = store.into_flash();
        flash.budget = None;
        let mut rebooted = open(flash);
        assert_eq!(block_on(rebooted.boot_counter()), Ok(4), "cut at {cut}");
        assert_eq!(block_on(rebooted.next_boot()), Ok(5), "cut at {cut}");
    }
}

/// A device's life in a small (3-page) partition, so that the boot counter's own writes make
/// the map collect garbage: identity, a commit, then boot after boot with a re-commit now
/// and then. At every boot the power is cut at each flash operation `next_boot` would do, in
/// turn; after each cut the device reboots and its next `next_boot` must succeed and return
/// more than every value returned before in that device's life (an interrupted call's return
/// included), with the identity and the commit intact. The life goes on from one of those
/// cut-and-recovered branches (a different cut each boot), so leftovers of interrupted writes
/// accumulate in the flash as they would on a real device.
#[test]
fn power_cut_at_every_operation_of_next_boot_never_repeats_a_counter() {
    const BOOTS: u32 = 1500;
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let mut store = open(RamFlash::with_pages(3));
    let identity = block_on(store.identity_or_generate(SuiteId::Ed25519, &mut rng))
        .unwrap()
        .0
        .public_key();
    let mut config = config_bytes(1000, 1);
    let mut committed = block_on(store.commit(&provisioned(1, 6, 1), &config)).unwrap();

    // The highest value next_boot returned in the life so far.
    let mut highest = 0u32;
    let (mut cuts, mut cuts_in_gc, mut returned_despite_cut) = (0usize, 0usize, 0usize);
    for boot in 0..BOOTS {
        if boot % 500 == 499 {
            config = config_bytes(800 + boot as usize % 400, boot as u8);
            committed = block_on(store.commit(&provisioned(1, 6, boot), &config)).unwrap();
        }
        let mut base = store.into_flash();
        base.operations = 0;
        base.erases = 0;
        let mut dry = open(base.clone());
        block_on(dry.next_boot()).expect("uninterrupted next_boot succeeds");
        let dry = dry.into_flash();
        let (total, collected) = (dry.operations, dry.erases > 0);
        assert!(total > 0, "boot {boot}: next_boot wrote nothing");

        let mut next_life = None;
        for cut in 0..total {
            cuts += 1;
            cuts_in_gc += usize::from(collected);
            let mut branch_highest = highest;
            let mut flash = base.clone();
            flash.budget = Some(cut);
            let mut store = open(flash);
            if let Ok(value) = block_on(store.next_boot()) {
                assert!(value > branch_highest, "boot {boot} cut at {cut}");
                branch_highest = value;
                returned_despite_cut += 1;
            }
            let mut flash = store.into_flash();
            flash.budget = None;
            let mut rebooted = open(flash);
            let value = block_on(rebooted.next_boot())
                .unwrap_or_else(|e| panic!("boot {boot} cut at {cut}: next boot failed: {e}"));
            assert!(
                value > branch_highest,
                "boot {boot} cut at {cut}: {value} after {branch_highest} was returned"
            );
            assert_eq!(
                block_on(rebooted.identity())
                    .unwrap()
                    .map(|i| i.public_key()),
                Some(identity),
                "boot {boot} cut at {cut}: identity"
            );
            let found = block_on(rebooted.committed()).unwrap();
            assert_eq!(found, Some(committed), "boot {boot} cut at {cut}: commit");
            assert_eq!(read_config(&mut rebooted, &committed), config);
            if cut == boot as usize % total {
                next_life = Some((rebooted, value));
            }
        }
        let (device, value) = next_life.expect("a branch was chosen");
        highest = value;
        store = device;
    }
    assert!(
        highest >= BOOTS,
        "every boot raised the counter at least once"
    );
    assert!(cuts > BOOTS as usize, "cuts: {cuts}");
    assert!(cuts_in_gc > 0, "no next_boot collected garbage");
    assert_eq!(
        returned_despite_cut, 0,
        "a call cut short cannot report success"
    );
}
