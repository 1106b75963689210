//! Codec throughput: messages encoded and decoded per second.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use herd_protocol::message::{ByeReason, Decoder, ListenerId, Message, WorkerMsg};
use std::hint::black_box;

fn mix() -> Vec<WorkerMsg> {
    (0..1000u64)
        .map(|i| match i % 5 {
            0 => WorkerMsg::Accept,
            1 => WorkerMsg::Alive { timestamp: 1_732_000_000_000 + i },
            2 => WorkerMsg::Accepted { socket: ListenerId((i % 4) as u16) },
            3 => WorkerMsg::Empty { socket: ListenerId(1) },
            _ => WorkerMsg::Bye { reason: ByeReason::Recycle },
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let msgs = mix();
    let stream: Vec<u8> = msgs.iter().flat_map(|m| m.encode().as_bytes().to_vec()).collect();
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(msgs.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for m in black_box(&msgs) {
                n += m.encode().as_bytes().len();
            }
            n
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let mut dec = Decoder::<WorkerMsg>::new();
            let mut input = black_box(&stream[..]);
            let mut n = 0usize;
            while !input.is_empty() {
                let (used, r) = dec.decode(input);
                n += usize::from(matches!(r, Some(Ok(_))));
                input = &input[used..];
            }
            n
        })
    });
    // Decoding 7-byte pipe reads, as a slow writer would deliver them.
    g.bench_function("decode_chunked_7", |b| {
        b.iter(|| {
            let mut dec = Decoder::<WorkerMsg>::new();
            let mut out = Vec::with_capacity(1000);
            for chunk in black_box(&stream[..]).chunks(7) {
                dec.decode_all(chunk, &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
