//! The decoder on arbitrary bytes in arbitrary chunks: it never panics, the chunking never
//! changes the result, and whatever decodes re-encodes to a frame that decodes to itself.
#![no_main]

use herd_protocol::message::{ArbiterMsg, Decoder, Message, WorkerMsg};
use libfuzzer_sys::fuzz_target;

fn check<M: Message + PartialEq>(cuts: &[u8], bytes: &[u8]) {
    let mut whole = Vec::new();
    Decoder::<M>::new().decode_all(bytes, &mut whole);
    // Split where the cut bytes say (each is a chunk length).
    let mut chunked = Vec::new();
    let mut dec = Decoder::<M>::new();
    let mut rest = bytes;
    let mut cuts = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = usize::from(*cuts.next().unwrap_or(&255)).clamp(1, rest.len());
        dec.decode_all(&rest[..n], &mut chunked);
        rest = &rest[n..];
    }
    assert_eq!(whole, chunked, "chunking changed the result");
    for m in whole.into_iter().flatten() {
        let frame = m.encode();
        let (used, again) = Decoder::<M>::new().decode(frame.as_bytes());
        assert!(used == frame.as_bytes().len() && again == Some(Ok(m)), "{m:?} does not round-trip");
    }
}

fuzz_target!(|data: &[u8]| {
    let split = data.len().min(usize::from(data.first().copied().unwrap_or(0) % 8));
    let (cuts, bytes) = data.split_at(split);
    check::<WorkerMsg>(cuts, bytes);
    check::<ArbiterMsg>(cuts, bytes);
});
