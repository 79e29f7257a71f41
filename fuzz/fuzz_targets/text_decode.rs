//! Any user data under any data_coding decodes or is refused, never panics; and any text
//! moauth sends is split into SMS that decode back to exactly that text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moauth::smpp::{text, udh};

fuzz_target!(|data: &[u8]| {
    let Some((&data_coding, user_data)) = data.split_first() else {
        return;
    };
    let _ = text::decode(data_coding, user_data);
    let message = String::from_utf8_lossy(user_data);
    if let Ok(segments) = text::encode_sms(&message, data_coding) {
        let mut back = String::new();
        for segment in segments {
            // GSM 7-bit travels unpacked in SMPP: one octet per septet, at most 160.
            let limit = if segment.data_coding == 0 { 160 } else { 140 };
            assert!(segment.short_message.len() <= limit);
            let body = if segment.esm_class_udhi {
                udh::split(&segment.short_message).unwrap().1
            } else {
                &segment.short_message[..]
            };
            back.push_str(&text::decode(segment.data_coding, body).unwrap());
        }
        assert_eq!(back, message);
    }
});
