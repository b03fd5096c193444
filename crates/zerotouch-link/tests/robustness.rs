//! Property tests: arbitrary bytes never panic the parsers, every frame the builder can
//! make parses back to itself, and the FCS catches every single-bit error.

use proptest::prelude::*;
use zerotouch_link::espnow::{self, EspNowFrame, EspNowRepr, Fcs};
use zerotouch_link::radiotap::Radiotap;
use zerotouch_link::udp;
use zerotouch_proto::Addr;

fn addr() -> impl Strategy<Value = Addr> {
    any::<[u8; 6]>().prop_map(Addr)
}

prop_compose! {
    fn frame_fields()(
        retry in any::<bool>(),
        duration in any::<u16>(),
        dst in addr(),
        src in addr(),
        addr3 in addr(),
        sequence_number in 0u16..4096,
        random in any::<[u8; 4]>(),
        body in proptest::collection::vec(any::<u8>(), 0..=espnow::MAX_BODY),
    ) -> (bool, u16, Addr, Addr, Addr, u16, [u8; 4], Vec<u8>) {
        (retry, duration, dst, src, addr3, sequence_number, random, body)
    }
}

/// Reads every accessor of a checked frame, as a consumer would.
fn touch_all<T: AsRef<[u8]>>(frame: &EspNowFrame<T>) {
    let _ = (
        frame.src(),
        frame.dst(),
        frame.addr3(),
        frame.retry(),
        frame.duration(),
    );
    let _ = (
        frame.sequence_number(),
        frame.fragment_number(),
        frame.random(),
    );
    let _ = (
        frame.version(),
        frame.more_data(),
        frame.trailer(),
        frame.fcs(),
    );
    assert!(frame.body().len() <= espnow::MAX_BODY);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(frame) = EspNowFrame::new_checked(&bytes[..]) {
            touch_all(&frame);
            let _ = EspNowRepr::parse(&frame);
        }
        if let Ok(parsed) = Radiotap::parse(&bytes) {
            prop_assert!(parsed.header_len <= bytes.len());
        }
        let _ = udp::parse_datagram(&bytes);
    }

    #[test]
    fn mutated_frames_never_panic(
        fields in frame_fields(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let (retry, duration, dst, src, addr3, sequence_number, random, body) = fields;
        let repr = EspNowRepr { retry, duration, dst, src, addr3, sequence_number, random, version: 1, body: &body };
        let mut buf = vec![0u8; espnow::MAX_FRAME_LEN];
        let len = repr.emit(&mut buf, true).expect("emit");
        buf.truncate(len);
        for (index, value) in edits {
            let i = index.index(buf.len());
            buf[i] = value;
        }
        let end = cut.index(buf.len() + 1);
        if let Ok(frame) = EspNowFrame::new_checked(&buf[..end]) {
            touch_all(&frame);
            let _ = EspNowRepr::parse(&frame);
        }
    }

    #[test]
    fn emitted_frames_parse_back(fields in frame_fields(), with_fcs in any::<bool>()) {
        let (retry, duration, dst, src, addr3, sequence_number, random, body) = fields;
        let repr = EspNowRepr { retry, duration, dst, src, addr3, sequence_number, random, version: 1, body: &body };
        let mut buf = vec![0u8; espnow::MAX_FRAME_LEN];
        let len = repr.emit(&mut buf, with_fcs).expect("emit");
        prop_assert_eq!(len, repr.buffer_len(with_fcs));
        let frame = EspNowFrame::new_checked(&buf[..len]).expect("checked");
        prop_assert_eq!(matches!(frame.fcs(), Fcs::Valid(_)), with_fcs);
        prop_assert_eq!(EspNowRepr::parse(&frame), Ok(repr));
    }

    #[test]
    fn fcs_catches_every_single_bit_error(fields in frame_fields(), bit in any::<prop::sample::Index>()) {
        let (retry, duration, dst, src, addr3, sequence_number, random, body) = fields;
        let repr = EspNowRepr { retry, duration, dst, src, addr3, sequence_number, random, version: 1, body: &body };
        let mut buf = vec![0u8; espnow::MAX_FRAME_LEN];
        let len = repr.emit(&mut buf, true).expect("emit");
        let bit = bit.index(len * 8);
        buf[bit / 8] ^= 1 << (bit % 8);
        if let Ok(frame) = EspNowFrame::new_checked(&buf[..len]) {
            prop_assert!(!matches!(frame.fcs(), Fcs::Valid(_)), "bit {} flipped yet FCS valid", bit);
            prop_assert!(EspNowRepr::parse_with_fcs(&frame).is_err());
            // With the FCS optional, only a length byte grown by exactly 4 can pass: the
            // FCS then reads as body. That is why parse_with_fcs exists.
            if EspNowRepr::parse(&frame).is_ok() {
                prop_assert_eq!(frame.fcs(), Fcs::Absent);
                prop_assert_eq!(frame.body_len(), body.len() + espnow::FCS_LEN);
            }
        }
    }
}
