//! The framing resynchronises after any garbage, never accepts a damaged frame, and counts
//! what it throws away.

use proptest::prelude::*;
use zerotouch_bridge::frame::{FrameDecoder, FrameError, MAX_ENCODED_LEN, MAX_WIRE_LEN};
use zerotouch_bridge::{BridgeMsg, TxOutcome};

fn tx_status(seq: u16) -> Vec<u8> {
    let mut wire = [0u8; MAX_WIRE_LEN];
    let msg = BridgeMsg::TxStatus {
        seq,
        outcome: TxOutcome::Delivered,
    };
    let len = msg.to_frame(&mut wire).unwrap();
    wire[..len].to_vec()
}

fn received(payload: &[u8]) -> Vec<u8> {
    let mut wire = [0u8; MAX_WIRE_LEN];
    let msg = BridgeMsg::Received {
        src: [2, 0, 0, 0, 0, 1],
        dst: [0xff; 6],
        channel: 1,
        rssi: -60,
        rx_time_us: 5,
        payload,
    };
    let len = msg.to_frame(&mut wire).unwrap();
    wire[..len].to_vec()
}

/// Feeds `bytes`; returns the sequence numbers of the TxStatus frames decoded.
fn decode_seqs(decoder: &mut FrameDecoder, bytes: &[u8]) -> Vec<u16> {
    let mut seqs = Vec::new();
    for &byte in bytes {
        if let Some(Ok(message)) = decoder.push(byte)
            && let Ok(BridgeMsg::TxStatus { seq, .. }) = BridgeMsg::parse(message)
        {
            seqs.push(seq);
        }
    }
    seqs
}

#[test]
fn boot_rom_text_before_a_frame_is_counted_and_the_frame_survives() {
    let boot = b"ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\nrst:0x15 (USB_UART_CHIP_RESET),boot:0xc (SPI_FAST_FLASH_BOOT)\r\n";
    let mut stream = boot.to_vec();
    stream.extend(tx_status(1));
    let mut decoder = FrameDecoder::new();
    assert_eq!(decode_seqs(&mut decoder, &stream), [1]);
    let stats = decoder.stats();
    assert_eq!(stats.frames, 1);
    assert_eq!(stats.bad_frames, 1);
    assert_eq!(stats.garbage_bytes, boot.len() as u64);
}

#[test]
fn an_endless_line_without_delimiter_is_bounded_and_reported_too_long() {
    let mut decoder: FrameDecoder = FrameDecoder::new();
    for _ in 0..10_000 {
        assert_eq!(decoder.push(b'x'), None);
    }
    assert_eq!(decoder.push(0), Some(Err(FrameError::TooLong)));
    assert_eq!(decoder.stats().garbage_bytes, 10_000);
    assert_eq!(decode_seqs(&mut decoder, &tx_status(3)), [3]);
}

#[test]
fn a_full_size_frame_fits_the_decoder_and_a_flipped_bit_is_rejected() {
    let frame = received(&[0u8; 250]);
    assert!(frame.len() <= MAX_WIRE_LEN);
    assert!(frame.len() - 2 <= MAX_ENCODED_LEN);
    let mut decoder: FrameDecoder = FrameDecoder::new();
    let results: Vec<_> = frame
        .iter()
        .filter_map(|&b| decoder.push(b).map(|r| r.map(<[u8]>::len)))
        .collect();
    assert_eq!(results, [Ok(24 + 250)]);
    for position in 1..frame.len() - 1 {
        let mut damaged = frame.clone();
        damaged[position] ^= 0x10;
        if damaged[position] == 0 {
            continue;
        }
        let mut decoder: FrameDecoder = FrameDecoder::new();
        for &byte in &damaged {
            assert!(
                !matches!(decoder.push(byte), Some(Ok(_))),
                "accepted a frame damaged at {position}"
            );
        }
    }
}

#[test]
fn empty_runs_between_delimiters_are_idle_not_garbage() {
    let mut decoder: FrameDecoder = FrameDecoder::new();
    for _ in 0..5 {
        assert_eq!(decoder.push(0), None);
    }
    assert_eq!(decoder.stats().bad_frames, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Garbage of any content before, between and after frames never hides a frame that is
    /// preceded by intact delimiters, and no garbage decodes as a frame with a valid CRC
    /// (the seqs decoded are exactly the frames sent, in order).
    #[test]
    fn frames_survive_arbitrary_garbage_between_them(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..400), 1..6),
    ) {
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for (i, garbage) in chunks.iter().enumerate() {
            stream.extend(garbage);
            stream.extend(tx_status(i as u16 + 1000));
            expected.push(i as u16 + 1000);
        }
        let mut decoder = FrameDecoder::new();
        let seqs = decode_seqs(&mut decoder, &stream);
        // A garbage chunk that is itself a valid frame of our own is astronomically rare
        // (CRC-32C); any other result would be a resync failure.
        prop_assert_eq!(seqs, expected);
    }

    /// Dropped, duplicated and flipped bytes lose at most the frames they touch: every frame
    /// left intact (with its delimiters) is decoded, and nothing else is.
    #[test]
    fn byte_faults_only_lose_the_frames_they_hit(
        faults in prop::collection::vec((0usize..2000, 0u8..3, any::<u8>()), 0..8),
    ) {
        let frames: Vec<Vec<u8>> = (0..20u16).map(tx_status).collect();
        let mut stream: Vec<u8> = frames.concat();
        let mut touched = vec![false; frames.len()];
        let mut sorted = faults.clone();
        let frame_len = frames[0].len();
        for fault in &mut sorted { fault.0 %= stream.len(); }
        sorted.sort_by_key(|fault| std::cmp::Reverse(fault.0));
        sorted.dedup_by_key(|fault| fault.0);
        for (pos, kind, value) in sorted {
            // Positions only shift after `pos`, and we apply faults from the back.
            let frame = (pos / frame_len).min(frames.len() - 1);
            touched[frame] = true;
            // A delimiter shared with the neighbour is at the frame's edge.
            if pos % frame_len == 0 && frame > 0 { touched[frame - 1] = true; }
            if pos % frame_len == frame_len - 1 && frame + 1 < frames.len() { touched[frame + 1] = true; }
            match kind {
                0 => { stream.remove(pos); }
                1 => { let b = stream[pos]; stream.insert(pos, b); }
                _ => stream[pos] ^= value | 1,
            }
        }
        let mut decoder = FrameDecoder::new();
        let seqs = decode_seqs(&mut decoder, &stream);
        for (i, hit) in touched.iter().enumerate() {
            if !hit {
                prop_assert!(seqs.contains(&(i as u16)), "intact frame {} lost: {:?}", i, seqs);
            }
        }
        for seq in &seqs {
            prop_assert!((*seq as usize) < frames.len());
        }
        prop_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "out of order or duplicated: {:?}", seqs);
    }
}
