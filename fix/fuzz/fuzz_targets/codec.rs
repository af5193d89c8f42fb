//! Framing and parsing of arbitrary bytes: never a panic; whatever frames and parses must
//! re-encode to a message that frames again.
#![no_main]

use fix::codec::{frame, Encoder, Fields, Message};
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
        }
    }
    let _ = Message::parse(data, &mut Fields::default());
});
