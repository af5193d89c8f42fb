//! Framing, parsing and the dictionary check of arbitrary bytes: never a panic; whatever frames
//! and parses must re-encode to a message that frames again; a message the dictionary passes has,
//! for each described group it carries, exactly as many entries as its count says.
#![no_main]

use fix::codec::{frame, parse_u64, Encoder, Fields, Message};
use fix::dictionary;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(len)) = frame(data, 1 << 16) {
        let mut fields = Fields::default();
        if let Ok(message) = Message::parse(&data[..len], &mut fields) {
            let mut e = Encoder::new();
            e.begin(message.msg_type(), "A", "B", 1, 0);
            for tag in message.tags().skip(3) {
                if let Some(value) = message.get(tag) {
                    e.bytes(tag, value);
                }
            }
            let out = e.finish().to_vec();
            assert_eq!(frame(&out, 1 << 20), Ok(Some(out.len())));
            let passed = dictionary::check(&message).is_ok();
            for group in dictionary::groups(message.msg_type()) {
                let entries = message.group(group.count).count() as u64;
                // Nested groups repeat their count tag per outer entry; only top-level ones
                // have a single count to compare with.
                let nested = dictionary::groups(message.msg_type()).iter().any(|g| g.members.contains(&group.count));
                if passed && !nested {
                    if let Some(count) = message.get(group.count).and_then(parse_u64) {
                        assert_eq!(entries, count, "group {}", group.count);
                    }
                }
            }
        }
    }
    let _ = Message::parse(data, &mut Fields::default());
});
