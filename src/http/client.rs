//! Which address a request comes from, for the per-client limits: the TCP peer, or behind a
//! reverse proxy listed in `[http] trusted_proxies`, the client that proxy reports.
//!
//! Only a trusted peer's `Forwarded` (RFC 7239) or `X-Forwarded-For` is believed; from anyone
//! else the headers are ignored, since a client may send them itself. The list is read from
//! the right: each trusted proxy appends the address it got the request from, so the first
//! address from the right that is not a trusted proxy is the client. Everything to its left
//! was written by the client and is not looked at. A header that cannot be read leaves the
//! peer's own address: one bucket for a broken proxy, never a forged client.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use axum::http::header::FORWARDED;
use ipnet::IpNet;

/// The address the limits count `peer`'s request against.
pub fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = peer.ip().to_canonical();
    let trusts = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !trusts(&peer) {
        return peer;
    }
    let Some(hops) = forwarded_for(headers) else {
        return peer;
    };
    let mut client = peer;
    for hop in hops.iter().rev() {
        client = *hop;
        if !trusts(hop) {
            break;
        }
    }
    client
}

/// The addresses a request passed through, client first: from `Forwarded` if present, else
/// from `X-Forwarded-For`. None if absent or unreadable (an obfuscated `for=`, say).
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<IpAddr>> {
    let joined = |name| {
        let values: Vec<&str> = headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().ok())
            .collect::<Option<_>>()?;
        (!values.is_empty()).then(|| values.join(","))
    };
    if let Some(forwarded) = joined(FORWARDED.as_str()) {
        return forwarded
            .split(',')
            .map(|element| {
                let value = element.split(';').find_map(|pair| {
                    let (key, value) = pair.trim().split_once('=')?;
                    key.eq_ignore_ascii_case("for").then_some(value.trim())
                })?;
                parse_node(value.trim_matches('"'))
            })
            .collect();
    }
    joined("x-forwarded-for")?
        .split(',')
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// `192.0.2.1`, `192.0.2.1:4711`, `[2001:db8::1]`, `[2001:db8::1]:4711` or `2001:db8::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let ip = match node.strip_prefix('[') {
        Some(rest) => rest.split(']').next()?.parse().ok(),
        None => node
            .parse::<IpAddr>()
            .ok()
            .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip())),
    };
    // `[::ffff:10.1.1.1]` is the proxy 10.1.1.1: compared with `trusted_proxies` and counted
    // by the limits as the plain address, like a peer's.
    ip.map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().unwrap());
        }
        map
    }

    fn at(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().unwrap(), 4711)
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        let ip = client_address(at("203.0.113.9"), &h, &nets(&["10.0.0.0/8"]));
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        assert_eq!(client_address(at("10.0.0.1"), &h, &[]), at("10.0.0.1").ip());
    }

    #[test]
    fn behind_trusted_proxies_the_first_untrusted_hop_from_the_right_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real one.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.1.1.1")]);
        let ip = client_address(at("10.0.0.1"), &h, &trusted);
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());

        let h = headers(&[(
            "forwarded",
            r#"for=1.2.3.4, for="[2001:db8::7]:4711";proto=https, for=10.1.1.1"#,
        )]);
        let ip = client_address(at("10.0.0.1"), &h, &trusted);
        assert_eq!(ip, "2001:db8::7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_bracketed_ipv4_mapped_hop_is_its_ipv4_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[(
            "forwarded",
            r#"for=198.51.100.7, for="[::ffff:10.1.1.1]:4711""#,
        )]);
        let ip = client_address(at("10.0.0.1"), &h, &trusted);
        assert_eq!(
            ip,
            at("198.51.100.7").ip(),
            "the mapped hop is a trusted proxy"
        );
        let h = headers(&[("forwarded", r#"for="[::ffff:198.51.100.7]""#)]);
        let ip = client_address(at("10.0.0.1"), &h, &trusted);
        assert_eq!(ip, at("198.51.100.7").ip());
    }

    #[test]
    fn an_unreadable_header_leaves_the_proxy_as_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        for h in [
            headers(&[("forwarded", "for=_hidden")]),
            headers(&[("x-forwarded-for", "198.51.100.7, garbage")]),
            HeaderMap::new(),
        ] {
            assert_eq!(
                client_address(at("10.0.0.1"), &h, &trusted),
                at("10.0.0.1").ip()
            );
        }
    }
}
