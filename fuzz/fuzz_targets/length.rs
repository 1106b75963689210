//! The baseline of fuzzing speed: a target that only reads its input's length. The other
//! targets' exec/s are reported as ratios to this one's, measured with the same flags in the same
//! run (`scripts/bench.py --fuzz`): the harness's own cost per input, and nothing else.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    std::hint::black_box(data.len());
});
