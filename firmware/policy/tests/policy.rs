//! Host tests of the firmware's decisions: retry backoff after radio errors, the market's
//! channels, stored-channel validation, TX power parsing, timers under constant traffic and
//! watchdog feeding.

use zerotouch_firmware_policy::{
    Backoff, ChannelProblem, Heartbeat, Market, TimerCheck, TxPower, stored_channel,
};

#[test]
fn backoff_doubles_to_its_cap_and_starts_over_after_a_success() {
    let mut backoff = Backoff::new(500, 8_000);
    let waits: Vec<u64> = (0..7).map(|_| backoff.failed()).collect();
    assert_eq!(waits, [500, 1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    assert_eq!(backoff.failures(), 7);
    backoff.succeeded();
    assert_eq!(backoff.failures(), 0);
    assert_eq!(backoff.failed(), 500);
}

#[test]
fn markets_name_their_country_and_allow_only_their_channels() {
    for (name, code, last) in [
        ("us", *b"US", 11),
        ("CA", *b"CA", 11),
        ("EU", *b"EU", 13),
        ("gb", *b"GB", 13),
        ("JP", *b"JP", 13),
        ("CN", *b"CN", 13),
    ] {
        let market = Market::parse(name).unwrap_or_else(|| panic!("{name} parses"));
        assert_eq!(market.country_code(), code);
        assert_eq!(market.last_channel(), last);
        assert!(market.allows(1) && market.allows(last));
        assert!(!market.allows(0) && !market.allows(last + 1) && !market.allows(14));
    }
    for bad in ["", "U", "USA", "XX", "1"] {
        assert_eq!(Market::parse(bad), None, "{bad:?}");
    }
}

#[test]
fn a_stored_channel_is_used_only_if_the_market_allows_it() {
    assert_eq!(stored_channel(None, Market::Eu, 1), (1, None));
    assert_eq!(stored_channel(Some(13), Market::Eu, 1), (13, None));
    assert_eq!(
        stored_channel(Some(13), Market::Us, 1),
        (1, Some(ChannelProblem::NotAllowed(13)))
    );
    for garbage in [0, 15, 0xff] {
        assert_eq!(
            stored_channel(Some(garbage), Market::Eu, 6),
            (6, Some(ChannelProblem::OutOfRange(garbage)))
        );
    }
}

#[test]
fn tx_power_accepts_only_the_drivers_range() {
    assert_eq!(TxPower::parse("8").map(TxPower::quarter_dbm), Some(8));
    assert_eq!(TxPower::parse(" 84 ").map(TxPower::quarter_dbm), Some(84));
    for bad in ["7", "85", "-1", "20dBm", "", "1000"] {
        assert_eq!(TxPower::parse(bad), None, "{bad:?}");
    }
    assert!(TxPower::RANGE.contains(&TxPower::DEFAULT.quarter_dbm()));
}

/// A driver loop under a frame every millisecond: the receive is always ready first, yet the
/// core's deadlines and the retry timer still run, each within a frame of being due.
#[test]
fn timers_run_under_constant_traffic() {
    let mut timers = TimerCheck {
        core_deadline: Some(250),
        retry_at: Some(1_000),
    };
    let (mut core_runs, mut retry_fired) = (Vec::new(), None);
    for now in 0..2_000u64 {
        // A frame arrived at `now` (it always wins the select); then the check.
        let due = timers.due(now);
        if due.core {
            core_runs.push(now);
            timers.core_deadline = Some(now + 250);
        }
        if due.retry {
            retry_fired = Some(now);
            timers.retry_at = None;
        }
    }
    assert_eq!(core_runs, [250, 500, 750, 1_000, 1_250, 1_500, 1_750]);
    assert_eq!(retry_fired, Some(1_000));
    assert_eq!(TimerCheck::default().due(u64::MAX), Default::default());
}

#[test]
fn the_watchdog_is_fed_only_while_the_main_loop_beats() {
    let mut heartbeat = Heartbeat::new(0, 30_000);
    assert!(heartbeat.alive(29_999));
    assert!(
        !heartbeat.alive(30_000),
        "stalled: let the watchdog reset the chip"
    );
    heartbeat.beat(25_000);
    assert!(heartbeat.alive(50_000));
    // A beat from the past (clock read before a long call) does not move it back.
    heartbeat.beat(10_000);
    assert!(heartbeat.alive(54_999) && !heartbeat.alive(55_000));
}
