//! Any bytes from an SMSC: framing and decoding never panic or over-allocate, and every PDU
//! that decodes encodes back to bytes that decode to the same command.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use moauth::smpp::frame::{self, Inbound, SmppCodec};
use tokio_util::codec::Encoder;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    while let Ok(Some(inbound)) = frame::next(&mut buf, 70_000) {
        if let Inbound::Command(command) = inbound {
            let mut again = BytesMut::new();
            SmppCodec::new(70_000).encode(&command, &mut again).unwrap();
            match frame::next(&mut again, 70_000) {
                Ok(Some(Inbound::Command(decoded))) => assert_eq!(decoded, command),
                other => panic!("re-encoded {command:?} did not decode: {other:?}"),
            }
        }
    }
});
