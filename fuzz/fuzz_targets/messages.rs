//! The decoder on arbitrary bytes in arbitrary chunks: it never panics, the chunking never
//! changes the result, and whatever decodes re-encodes to a frame that decodes to itself.
//!
//! The work per input is proportional to its length and allocates nothing once warm: the whole
//! decoding goes into a buffer kept between inputs, and the chunked decoding is compared with it
//! as it comes (docs/fuzzing.md: run with `-max_len=64`, a few frames).
#![no_main]

use herd_protocol::message::{ArbiterMsg, DecodeError, Decoder, Message, WorkerMsg};
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;

/// Checks the chunked decoding against the whole one, result by result.
struct SameAs<'a, M> {
    expected: &'a [Result<M, DecodeError>],
    at: usize,
}

impl<M: PartialEq + std::fmt::Debug> Extend<Result<M, DecodeError>> for SameAs<'_, M> {
    fn extend<I: IntoIterator<Item = Result<M, DecodeError>>>(&mut self, iter: I) {
        for got in iter {
            assert_eq!(self.expected.get(self.at), Some(&got), "chunking changed result {}", self.at);
            self.at += 1;
        }
    }
}

fn check<M: Message + PartialEq + std::fmt::Debug + Copy>(
    whole: &mut Vec<Result<M, DecodeError>>,
    cuts: &[u8],
    bytes: &[u8],
) {
    whole.clear();
    Decoder::<M>::new().decode_all(bytes, whole);
    // Split where the cut bytes say (each is a chunk length).
    let mut chunked = SameAs { expected: whole, at: 0 };
    let mut dec = Decoder::<M>::new();
    let mut rest = bytes;
    let mut cuts = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = usize::from(*cuts.next().unwrap_or(&255)).clamp(1, rest.len());
        dec.decode_all(&rest[..n], &mut chunked);
        rest = &rest[n..];
    }
    assert_eq!(chunked.at, whole.len(), "chunking lost results");
    for &m in whole.iter().flatten() {
        let frame = m.encode();
        let (used, again) = Decoder::<M>::new().decode(frame.as_bytes());
        assert!(used == frame.as_bytes().len() && again == Some(Ok(m)), "{m:?} does not round-trip");
    }
}

thread_local! {
    static WORKER: RefCell<Vec<Result<WorkerMsg, DecodeError>>> = const { RefCell::new(Vec::new()) };
    static ARBITER: RefCell<Vec<Result<ArbiterMsg, DecodeError>>> = const { RefCell::new(Vec::new()) };
}

fuzz_target!(|data: &[u8]| {
    // The first byte: how many cut bytes follow (low 3 bits), and which side's messages the
    // rest is read as (bit 3) — one decoding per input, so its cost follows its length.
    let head = data.first().copied().unwrap_or(0);
    let split = data.len().min(usize::from(head % 8));
    let (cuts, bytes) = data.split_at(split);
    if head & 8 == 0 {
        WORKER.with_borrow_mut(|whole| check::<WorkerMsg>(whole, cuts, bytes));
    } else {
        ARBITER.with_borrow_mut(|whole| check::<ArbiterMsg>(whole, cuts, bytes));
    }
});
