use super::*;
use proptest::prelude::*;

fn listener_id() -> impl Strategy<Value = ListenerId> {
    any::<u16>().prop_map(ListenerId)
}

pub(crate) fn worker_msg() -> impl Strategy<Value = WorkerMsg> {
    prop_oneof![
        Just(WorkerMsg::Accept),
        any::<u64>().prop_map(|timestamp| WorkerMsg::Alive { timestamp }),
        listener_id().prop_map(|socket| WorkerMsg::Accepted { socket }),
        listener_id().prop_map(|socket| WorkerMsg::Empty { socket }),
        proptest::sample::select(ByeReason::ALL.to_vec()).prop_map(|reason| WorkerMsg::Bye { reason }),
    ]
}

fn arbiter_msg() -> impl Strategy<Value = ArbiterMsg> {
    listener_id().prop_map(|socket| ArbiterMsg::Accept { socket })
}

/// Decodes `bytes` split at the given cut points (taken modulo the length, in any order).
fn decode_chunked<M: Message>(bytes: &[u8], cuts: &[usize]) -> Vec<Result<M, DecodeError>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    let mut dec = Decoder::<M>::new();
    let mut out = Vec::new();
    for w in points.windows(2) {
        dec.decode_all(&bytes[w[0]..w[1]], &mut out);
    }
    out
}

fn decode_whole<M: Message>(bytes: &[u8]) -> Vec<Result<M, DecodeError>> {
    let mut out = Vec::new();
    Decoder::<M>::new().decode_all(bytes, &mut out);
    out
}

proptest! {
    #[test]
    fn worker_msg_round_trips(m in worker_msg()) {
        let frame = m.encode();
        prop_assert!(frame.as_bytes().len() <= MAX_FRAME);
        prop_assert_eq!(decode_whole::<WorkerMsg>(frame.as_bytes()), vec![Ok(m)]);
    }

    #[test]
    fn arbiter_msg_round_trips(m in arbiter_msg()) {
        prop_assert_eq!(decode_whole::<ArbiterMsg>(m.encode().as_bytes()), vec![Ok(m)]);
    }

    #[test]
    fn any_chunking_of_a_stream_gives_the_same_messages(
        msgs in proptest::collection::vec(worker_msg(), 0..64),
        cuts in proptest::collection::vec(any::<usize>(), 0..32),
    ) {
        let stream: Vec<u8> = msgs.iter().flat_map(|m| m.encode().as_bytes().to_vec()).collect();
        let expected: Vec<_> = msgs.iter().copied().map(Ok).collect();
        prop_assert_eq!(decode_chunked::<WorkerMsg>(&stream, &cuts), expected);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_chunking_never_changes_the_result(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let whole = decode_whole::<WorkerMsg>(&bytes);
        prop_assert_eq!(&decode_chunked::<WorkerMsg>(&bytes, &cuts), &whole);
        // One result per line feed, at most (over-long frames report once and skip to the LF).
        let lfs = bytes.iter().filter(|&&b| b == b'\n').count();
        prop_assert!(whole.len() <= lfs + bytes.len() / MAX_FRAME + 1);
        let _ = decode_whole::<ArbiterMsg>(&bytes);
    }

    #[test]
    fn text_like_garbage_decodes_to_what_it_spells(
        lines in proptest::collection::vec("[A-Z:0-9a-z]{0,12}", 0..16),
    ) {
        // Frames built from plausible alphabets: everything that decodes re-encodes to itself.
        let stream: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let results = decode_whole::<WorkerMsg>(stream.as_bytes());
        prop_assert_eq!(results.len(), lines.len());
        for (line, r) in lines.iter().zip(results) {
            if let Ok(m) = r {
                prop_assert_eq!(format!("{m}"), line.clone());
            }
        }
    }
}

#[test]
fn malformed_inputs_map_to_their_exact_errors() {
    use DecodeError::*;
    let long = format!("ALIVE:{}\n", "1".repeat(40));
    let table: &[(&[u8], DecodeError)] = &[
        (b"\n", Empty),
        (long.as_bytes(), TooLong),
        (b"ALIVE:12\xc3\xa9\n", NonAscii),
        (b"ACCEPT\r\n", Control),
        (b"ACCEPT \n", Control),
        (b"\x00\n", Control),
        (b"ALIVE:\x7f\n", Control),
        (b"HELLO\n", UnknownVerb),
        (b"accept\n", UnknownVerb),
        (b":1\n", UnknownVerb),
        (b"ALIVE\n", MissingField),
        (b"ACCEPTED\n", MissingField),
        (b"EMPTY\n", MissingField),
        (b"BYE\n", MissingField),
        (b"ACCEPT:1\n", ExtraField),
        (b"ALIVE:1:2\n", ExtraField),
        (b"ALIVE:\n", EmptyField),
        (b"BYE:\n", EmptyField),
        (b"ALIVE:12a\n", NotANumber),
        (b"ALIVE:-1\n", NotANumber),
        (b"ACCEPTED:+1\n", NotANumber),
        (b"ALIVE:007\n", LeadingZero),
        (b"ALIVE:18446744073709551616\n", Overflow),
        (b"ACCEPTED:65536\n", Overflow),
        (b"EMPTY:99999999999999999999\n", Overflow),
        (b"BYE:tired\n", UnknownReason),
        (b"BYE:RECYCLE\n", UnknownReason),
    ];
    for (input, want) in table {
        let got = decode_whole::<WorkerMsg>(input);
        assert_eq!(got, vec![Err(*want)], "input {:?}", String::from_utf8_lossy(input));
    }
    // Arbiter -> worker direction.
    let table: &[(&[u8], DecodeError)] = &[
        (b"ACCEPT\n", MissingField),
        (b"ACCEPT:\n", EmptyField),
        (b"ACCEPT:01\n", LeadingZero),
        (b"ACCEPT:70000\n", Overflow),
        (b"ALIVE:1\n", UnknownVerb),
    ];
    for (input, want) in table {
        let got = decode_whole::<ArbiterMsg>(input);
        assert_eq!(got, vec![Err(*want)], "input {:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn boundaries_of_numbers_and_frame_length() {
    assert_eq!(decode_whole::<WorkerMsg>(b"ALIVE:0\n"), vec![Ok(WorkerMsg::Alive { timestamp: 0 })]);
    assert_eq!(
        decode_whole::<WorkerMsg>(b"ALIVE:18446744073709551615\n"),
        vec![Ok(WorkerMsg::Alive { timestamp: u64::MAX })]
    );
    assert_eq!(
        decode_whole::<WorkerMsg>(b"ACCEPTED:65535\n"),
        vec![Ok(WorkerMsg::Accepted { socket: ListenerId(65535) })]
    );
    // 31 bytes of content is the longest frame; 32 is one too many.
    let ok = format!("BYE:{}\n", "x".repeat(MAX_FRAME - 1 - 4));
    assert_eq!(decode_whole::<WorkerMsg>(ok.as_bytes()), vec![Err(DecodeError::UnknownReason)]);
    let too_long = format!("BYE:{}\n", "x".repeat(MAX_FRAME - 4));
    assert_eq!(decode_whole::<WorkerMsg>(too_long.as_bytes()), vec![Err(DecodeError::TooLong)]);
}

#[test]
fn the_longest_frame_may_arrive_in_pieces() {
    // 31 bytes of content, then its line feed in a later read: still a frame, not too long.
    let content = format!("BYE:{}", "x".repeat(MAX_FRAME - 1 - 4));
    let mut dec = Decoder::<WorkerMsg>::new();
    assert_eq!(dec.decode(content.as_bytes()), (MAX_FRAME - 1, None));
    assert_eq!(dec.decode(b"\n"), (1, Some(Err(DecodeError::UnknownReason))));
    // One byte more is too long, however it arrives.
    let mut dec = Decoder::<WorkerMsg>::new();
    let (_, first) = dec.decode(format!("{content}x").as_bytes());
    assert_eq!(first, Some(Err(DecodeError::TooLong)));
}

#[test]
fn decoder_resynchronises_after_an_over_long_frame() {
    let mut stream = vec![b'A'; 1000];
    stream.extend_from_slice(b"\nACCEPT\n");
    assert_eq!(decode_whole::<WorkerMsg>(&stream), vec![Err(DecodeError::TooLong), Ok(WorkerMsg::Accept)]);
}

#[test]
fn partial_input_is_not_an_error_and_state_is_bounded() {
    let mut dec = Decoder::<WorkerMsg>::new();
    assert_eq!(dec.decode(b"ALI"), (3, None));
    assert_eq!(dec.buffered(), 3);
    assert_eq!(dec.decode(b"VE:5\nACC"), (5, Some(Ok(WorkerMsg::Alive { timestamp: 5 }))));
    // A flood without line feeds never holds more than one frame.
    let mut dec = Decoder::<WorkerMsg>::new();
    let mut out = Vec::new();
    dec.decode_all(&[b'7'; 100_000], &mut out);
    assert!(dec.buffered() < MAX_FRAME);
    assert_eq!(out, vec![Err(DecodeError::TooLong)]);
}

#[test]
fn wire_form_of_every_message() {
    let mut all: Vec<String> = vec![
        WorkerMsg::Accept,
        WorkerMsg::Alive { timestamp: 0 },
        WorkerMsg::Alive { timestamp: 1_732_000_123_456 },
        WorkerMsg::Alive { timestamp: u64::MAX },
        WorkerMsg::Accepted { socket: ListenerId(0) },
        WorkerMsg::Empty { socket: ListenerId(65535) },
    ]
    .into_iter()
    .chain(ByeReason::ALL.into_iter().map(|reason| WorkerMsg::Bye { reason }))
    .map(|m| format!("worker  {:?} -> {:?}", m, m.encode()))
    .collect();
    all.push(format!(
        "arbiter {:?} -> {:?}",
        ArbiterMsg::Accept { socket: ListenerId(3) },
        ArbiterMsg::Accept { socket: ListenerId(3) }.encode()
    ));
    insta::assert_snapshot!(all.join("\n"));
}
