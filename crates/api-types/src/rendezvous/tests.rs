//! Round trips and hostile input for the Slipway-mode rendezvous codec.

use proptest::prelude::*;

use super::*;

fn frame_strategy() -> impl Strategy<Value = Frame> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048).prop_map(Frame::Data),
        (any::<u16>(), any::<u16>()).prop_map(|(cols, rows)| Frame::Resize { cols, rows }),
        Just(Frame::EndOfInput),
        any::<i32>().prop_map(|code| Frame::Exit { code }),
        ".{0,40}".prop_map(|dyno| Frame::Ready { dyno }),
        ".{0,200}".prop_map(|message| Frame::Error { message }),
    ]
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity(frames in proptest::collection::vec(frame_strategy(), 1..8)) {
        let mut buf = Vec::new();
        for frame in &frames {
            encode(frame, &mut buf);
        }
        let mut decoded = Vec::new();
        let mut rest = &buf[..];
        while let Some((frame, used)) = decode(rest).unwrap() {
            decoded.push(frame);
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
        prop_assert_eq!(decoded, frames);
    }

    #[test]
    fn every_prefix_asks_for_more(frame in frame_strategy()) {
        let buf = encode_to_vec(&frame);
        for end in 0..buf.len() {
            prop_assert_eq!(decode(&buf[..end]), Ok(None));
        }
    }

    #[test]
    fn garbage_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(Some((_, used))) = decode(&buf) {
            prop_assert!(used <= buf.len());
        }
    }
}

#[test]
fn oversized_data_is_split_into_decodable_frames() {
    let data = vec![7u8; MAX_PAYLOAD * 2 + 3];
    let buf = encode_to_vec(&Frame::Data(data.clone()));
    let mut rest = &buf[..];
    let mut joined = Vec::new();
    while let Some((Frame::Data(chunk), used)) = decode(rest).unwrap() {
        joined.extend(chunk);
        rest = &rest[used..];
    }
    assert_eq!(joined, data);
}

#[test]
fn hostile_headers_are_refused_before_buffering() {
    assert_eq!(decode(&[99]), Err(FrameError::UnknownTag(99)));
    assert_eq!(
        decode(&[TAG_DATA, 0xff, 0xff, 0xff, 0xff]),
        Err(FrameError::TooLong(u32::MAX as usize))
    );
    assert!(matches!(
        decode(&[TAG_RESIZE, 0, 0, 0, 1, 9]),
        Err(FrameError::Malformed { .. })
    ));
    assert!(matches!(
        decode(&[TAG_ERROR, 0, 0, 0, 1, 0xff]),
        Err(FrameError::Malformed { .. })
    ));
}

#[test]
fn first_line_chooses_the_mode() {
    assert_eq!(parse_first_line("abc123"), ("abc123", false));
    assert_eq!(parse_first_line("abc123 slipway/1"), ("abc123", true));
    assert_eq!(parse_first_line("a?b=c"), ("a?b=c", false));
}
