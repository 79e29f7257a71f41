//! HMAC-SHA256 request signing, shared by every HTTP call moauth makes to someone else's
//! server (the remote auth core, backend webhooks) — protocol/signing.md is the contract.
//!
//! One header, `Moauth-Signature: t=<unix seconds>,v1=<hex>`, where the MAC covers
//! `"<t>.<body>"`. Binding the timestamp into the MAC lets a receiver refuse a call older
//! than its tolerance, so a captured request cannot be replayed later; within the tolerance
//! the body's own id (`request_id`, `event_id`) lets it refuse a duplicate.

use hmac::{Hmac, KeyInit, Mac};
use reqwest::Url;
use sha2::Sha256;
use thiserror::Error;

use crate::core::clock::UnixSecs;

/// The header that carries the timestamp and the signature.
pub const HEADER: &str = "moauth-signature";

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the signature header is not `t=<unix seconds>,v1=<hex>`")]
    Malformed,
    #[error("the signature is {age_secs} s away from now, beyond the tolerance")]
    Stale { age_secs: u64 },
    #[error("the signature does not match the body")]
    Mismatch,
}

/// The header value for `body` sent at `at`.
pub fn sign(secret: &[u8], at: UnixSecs, body: &[u8]) -> String {
    format!(
        "t={at},v1={}",
        hex::encode(mac(secret, at, body).finalize().into_bytes())
    )
}

/// Checks a received header: well formed, within `tolerance_secs` of `now` either way, and
/// made with `secret` over this very body. The comparison is constant-time.
pub fn verify(
    secret: &[u8],
    header: &str,
    body: &[u8],
    now: UnixSecs,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let (at, signature) = parse(header).ok_or(SignatureError::Malformed)?;
    let age_secs = now.abs_diff(at);
    if age_secs > tolerance_secs {
        return Err(SignatureError::Stale { age_secs });
    }
    mac(secret, at, body)
        .verify_slice(&signature)
        .map_err(|_| SignatureError::Mismatch)
}

fn mac(secret: &[u8], at: UnixSecs, body: &[u8]) -> HmacSha256 {
    let mut mac = HmacSha256::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(at.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn parse(header: &str) -> Option<(UnixSecs, Vec<u8>)> {
    let (mut at, mut signature) = (None, None);
    for part in header.split(',') {
        match part.trim().split_once('=')? {
            ("t", t) => at = Some(t.parse().ok()?),
            ("v1", v) => signature = Some(hex::decode(v).ok()?),
            _ => {}
        }
    }
    Some((at?, signature?))
}

/// A URL moauth may send signed calls to: `https://`, or plain `http://` only to a loopback
/// address (the signature proves who sent a body, it does not hide it) unless
/// `plain_http_anywhere` is the operator's explicit choice. `carries` says what an eavesdropper
/// would read, for the error.
pub fn check_url(url: &str, plain_http_anywhere: bool, carries: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let host = parsed.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" if parsed.host().is_some() => Ok(parsed),
        "http" if parsed.host().is_some() && (loopback || plain_http_anywhere) => Ok(parsed),
        "http" => Err(format!(
            "must be https:// (plain http:// only to a loopback address: {carries})"
        )),
        _ => Err("must be an https:// URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a shared secret";
    const BODY: &[u8] = br#"{"msisdn":"+8613800138000"}"#;

    #[test]
    fn a_signed_body_verifies_within_the_tolerance() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(verify(SECRET, &header, BODY, 1_700_000_299, 300), Ok(()));
        assert_eq!(verify(SECRET, &header, BODY, 1_699_999_800, 300), Ok(()));
    }

    #[test]
    fn known_vector_matches_an_independent_hmac() {
        // printf '1700000000.{"msisdn":"+8613800138000"}' | openssl dgst -sha256 -hmac 'a shared secret'
        assert_eq!(
            sign(SECRET, 1_700_000_000, BODY),
            "t=1700000000,v1=9c251df383029e6a8d12dfb76c5afc85019f722ca1a79c6d42d24e831d985d8d"
        );
    }

    #[test]
    fn a_changed_body_secret_or_timestamp_is_refused() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        let now = 1_700_000_000;
        assert_eq!(
            verify(SECRET, &header, b"{}", now, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", &header, BODY, now, 300),
            Err(SignatureError::Mismatch)
        );
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert_eq!(
            verify(SECRET, &moved, BODY, now, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn a_replay_after_the_tolerance_is_stale() {
        let header = sign(SECRET, 1_700_000_000, BODY);
        assert_eq!(
            verify(SECRET, &header, BODY, 1_700_000_301, 300),
            Err(SignatureError::Stale { age_secs: 301 })
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in ["", "v1=00", "t=1", "t=x,v1=00", "t=1,v1=zz", "garbage"] {
            assert_eq!(
                verify(SECRET, header, BODY, 1, 300),
                Err(SignatureError::Malformed),
                "{header:?}"
            );
        }
    }

    #[test]
    fn plain_http_only_to_loopback_unless_chosen() {
        for good in [
            "https://accounts.example/moauth",
            "http://127.0.0.1:9000/login",
            "http://[::1]/x",
            "http://localhost/x",
        ] {
            assert!(check_url(good, false, "x").is_ok(), "{good}");
        }
        for bad in ["http://accounts.example/x", "ftp://x/", "accounts.example"] {
            assert!(check_url(bad, false, "x").is_err(), "{bad}");
        }
        assert!(check_url("http://accounts.example/x", true, "x").is_ok());
        assert!(check_url("ftp://x/", true, "x").is_err());
    }
}
