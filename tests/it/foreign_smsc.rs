//! The daemon against an SMSC that shares no code with it: PDUs written and checked byte by
//! byte from the SMPP 3.4 specification, so a mistake shared by our codec and our simulator
//! cannot hide.

use crate::common;

use moauth::cli::embedded_config;
use moauth::core::clock::Clock;
use moauth::core::token::{Token, Verifier};
use moauth::daemon::{Daemon, Options};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Pdu {
    id: u32,
    status: u32,
    seq: u32,
    body: Vec<u8>,
}

async fn read_pdu(stream: &mut TcpStream) -> Pdu {
    let len = stream.read_u32().await.unwrap() as usize;
    assert!((16..=1024).contains(&len), "command_length {len}");
    let id = stream.read_u32().await.unwrap();
    let status = stream.read_u32().await.unwrap();
    let seq = stream.read_u32().await.unwrap();
    assert!(
        (1..=0x7FFF_FFFF).contains(&seq),
        "sequence_number {seq:#x} out of range"
    );
    let mut body = vec![0; len - 16];
    stream.read_exact(&mut body).await.unwrap();
    Pdu {
        id,
        status,
        seq,
        body,
    }
}

async fn write_pdu(stream: &mut TcpStream, id: u32, status: u32, seq: u32, body: &[u8]) {
    let mut out = Vec::new();
    out.extend_from_slice(&(16 + body.len() as u32).to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&status.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(body);
    stream.write_all(&out).await.unwrap();
}

/// Reads PDUs, answering enquire_link, until one with `id` arrives.
async fn expect(stream: &mut TcpStream, id: u32) -> Pdu {
    loop {
        let pdu = read_pdu(stream).await;
        if pdu.id == 0x0000_0015 {
            write_pdu(stream, 0x8000_0015, 0, pdu.seq, &[]).await;
            continue;
        }
        assert_eq!(pdu.id, id, "unexpected command_id {:#x}", pdu.id);
        return pdu;
    }
}

/// Splits a body into fields: C-strings (`Some(max)`: at most `max` octets with the NUL) and
/// single octets (`None`). Panics on a missing NUL or an over-long string.
fn fields(body: &[u8], layout: &[Option<usize>]) -> (Vec<Vec<u8>>, usize) {
    let mut at = 0;
    let mut out = Vec::new();
    for field in layout {
        match field {
            Some(max) => {
                let nul = body[at..]
                    .iter()
                    .position(|b| *b == 0)
                    .expect("C-string without NUL");
                assert!(
                    nul < *max,
                    "C-string of {nul} octets exceeds {max} with NUL"
                );
                out.push(body[at..at + nul].to_vec());
                at += nul + 1;
            }
            None => {
                out.push(vec![body[at]]);
                at += 1;
            }
        }
    }
    (out, at)
}

fn deliver_sm(from: &str, to: &str, text: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.push(0); // service_type ""
    b.extend_from_slice(&[1, 1]); // source TON international, NPI ISDN
    b.extend_from_slice(from.as_bytes());
    b.push(0);
    b.extend_from_slice(&[0, 0]); // destination TON/NPI unknown
    b.extend_from_slice(to.as_bytes());
    b.push(0);
    b.extend_from_slice(&[0, 0, 0]); // esm_class, protocol_id, priority_flag
    b.extend_from_slice(&[0, 0]); // schedule_delivery_time "", validity_period ""
    b.extend_from_slice(&[0, 0, 0, 0]); // registered_delivery, replace_if_present, data_coding, sm_default_msg_id
    b.push(text.len() as u8);
    b.extend_from_slice(text.as_bytes());
    b
}

#[tokio::test]
async fn daemon_speaks_smpp_34_as_written_to_a_foreign_smsc() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = embedded_config(
        dir.path().join("store"),
        "127.0.0.1:0".parse().unwrap(),
        listener.local_addr().unwrap(),
    );
    let daemon = Daemon::start(config, Clock::System, Options::default())
        .await
        .unwrap();
    let (mut smsc, _) = listener.accept().await.unwrap();

    let bind = expect(&mut smsc, 0x0000_0009).await;
    assert_eq!(bind.status, 0);
    let (f, used) = fields(
        &bind.body,
        &[Some(16), Some(9), Some(13), None, None, None, Some(41)],
    );
    assert_eq!(
        used,
        bind.body.len(),
        "trailing octets after bind_transceiver"
    );
    assert_eq!(
        (f[0].as_slice(), f[1].as_slice()),
        (&b"moauth"[..], &b"sim-pass"[..])
    );
    assert_eq!(f[3], [0x34], "interface_version 3.4");
    write_pdu(&mut smsc, 0x8000_0009, 0, bind.seq, b"FOREIGN\0").await;

    let verifier = Verifier::random();
    let token = Token::for_verifier(&verifier, Clock::System.now());
    write_pdu(
        &mut smsc,
        0x0000_0005,
        0,
        7,
        &deliver_sm("8613800138000", "10690000", &format!("LOGIN {token}")),
    )
    .await;
    let resp = expect(&mut smsc, 0x8000_0005).await;
    assert_eq!(
        (resp.status, resp.seq, resp.body.as_slice()),
        (0, 7, &b"\0"[..])
    );

    let submit = expect(&mut smsc, 0x0000_0004).await;
    let layout = [
        Some(6),
        None,
        None,
        Some(21),
        None,
        None,
        Some(21),
        None,
        None,
        None,
        Some(17),
        Some(17),
        None,
        None,
        None,
        None,
        None,
    ];
    let (f, used) = fields(&submit.body, &layout);
    assert_eq!(f[3], b"10690000", "source_addr is the short code");
    assert_eq!(
        (f[4][0], f[5][0]),
        (1, 1),
        "destination TON international, NPI ISDN"
    );
    assert_eq!(f[6], b"8613800138000");
    assert_eq!(f[14], [0], "data_coding: GSM 7-bit default alphabet");
    let sm_length = usize::from(f[16][0]);
    assert_eq!(
        used + sm_length,
        submit.body.len(),
        "sm_length must cover the rest exactly"
    );
    let text = String::from_utf8(submit.body[used..].to_vec()).unwrap();
    assert!(
        text.contains("+8613800138000") && text.contains("password"),
        "{text}"
    );
    write_pdu(&mut smsc, 0x8000_0004, 0, submit.seq, b"4e2a\0").await;

    let (_, answer) = common::poll_login(
        &common::http_client(),
        daemon.http_addr,
        &verifier,
        &token,
        10_000,
    )
    .await;
    assert_eq!(answer["state"], "complete");

    let (shutdown, unbind) = tokio::join!(daemon.shutdown(), async {
        let unbind = expect(&mut smsc, 0x0000_0006).await;
        write_pdu(&mut smsc, 0x8000_0006, 0, unbind.seq, &[]).await;
        unbind
    });
    let () = shutdown;
    assert!(unbind.body.is_empty());
}
