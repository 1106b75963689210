//! docs/protocol.md is the specification a worker in another language is written from: every
//! example frame of its table decodes exactly as the table says, and what decodes encodes back to
//! the same bytes (one spelling per message).

use herd_protocol::message::{ArbiterMsg, Decoder, Message, WorkerMsg};

/// Decodes one frame as `M`; its `Debug`, checking the round trip of a message.
fn decode<M: Message + std::fmt::Debug>(frame: &str) -> String {
    let wire = format!("{frame}\n");
    let mut out = Vec::new();
    Decoder::<M>::new().decode_all(wire.as_bytes(), &mut out);
    assert_eq!(out.len(), 1, "{frame:?} is one frame: {out:?}");
    if let Ok(msg) = &out[0] {
        assert_eq!(msg.encode().as_bytes(), wire.as_bytes(), "{msg:?} encodes to another spelling");
    }
    format!("{:?}", out[0])
}

#[test]
fn every_example_of_the_specification_decodes_as_it_says() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");
    let doc = std::fs::read_to_string(path).expect("docs/protocol.md");
    let table =
        doc.split("\n## Examples").nth(1).expect("an Examples section").split("\n## ").next().unwrap();
    let unquote =
        |c: &str| c.strip_prefix('`').and_then(|c| c.strip_suffix('`')).expect("in backticks").to_owned();
    let mut checked = 0;
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
        let [frame, reader, expected] = cells[..] else { panic!("a row of three cells: {row}") };
        let (frame, expected) = (unquote(frame), unquote(expected));
        let got = match reader {
            "arbiter" => decode::<WorkerMsg>(&frame),
            "worker" => decode::<ArbiterMsg>(&frame),
            other => panic!("read by {other:?}"),
        };
        assert_eq!(got, expected, "frame {frame:?} read by the {reader}");
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} examples found");
}
