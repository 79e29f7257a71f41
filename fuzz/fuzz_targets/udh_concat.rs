//! Any user data with UDHI set: the header parser and the concatenation split never panic, and
//! joining the parts of a message gives their payloads in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moauth::login::concat;
use moauth::smpp::udh;
use moauth::core::mo::MoMessage;

fuzz_target!(|data: &[u8]| {
    if let Ok((header, rest)) = udh::split(data) {
        assert!(rest.len() < data.len());
        if let Some(c) = header.concat() {
            assert!(c.seq >= 1 && c.seq <= c.total);
        }
    }
    let mo = MoMessage {
        smsc: "fuzz".into(),
        source_addr: "8613800138000".into(),
        source_ton: 1,
        destination_addr: "10690000".into(),
        esm_class: 0x40,
        data_coding: 8,
        user_data: data.to_vec(),
        sar: None,
        received_at: 0,
    };
    if let Ok(Some(part)) = concat::split(&mo) {
        let payload = part.payload.user_data.clone();
        let whole = concat::join(vec![part.payload.clone(), part.payload]);
        assert_eq!(whole.user_data, [payload.clone(), payload].concat());
    }
});
