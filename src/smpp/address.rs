//! Where an SMSC listens, as its carrier writes it: `host:port`, the host a name or an IP
//! address (`[v6]:port` for IPv6). A name is resolved at every connect, not once at start,
//! so a carrier can move its SMSC behind DNS; every address it resolves to is tried in turn.

use std::fmt;
use std::net::SocketAddr;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SmscAddress {
    host: String,
    port: u16,
}

impl SmscAddress {
    /// The host as written (an IPv6 address without its brackets): what a TLS certificate is
    /// checked against when no `tls_server_name` is given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Host and port as `tokio::net::TcpStream::connect` resolves them.
    pub fn connect_to(&self) -> (&str, u16) {
        (&self.host, self.port)
    }
}

impl TryFrom<String> for SmscAddress {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        let bad = || format!("{text:?} is not host:port (a name or an IP address, then a port)");
        let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
            Some(_) => return Err(bad()),
            None => host,
        };
        let name_like = host
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
        if port == 0 || (!name_like && host.parse::<std::net::IpAddr>().is_err()) {
            return Err(bad());
        }
        Ok(SmscAddress {
            host: host.to_owned(),
            port,
        })
    }
}

impl From<SocketAddr> for SmscAddress {
    fn from(addr: SocketAddr) -> Self {
        SmscAddress {
            host: addr.ip().to_string(),
            port: addr.port(),
        }
    }
}

impl fmt::Display for SmscAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SmscAddress, String> {
        SmscAddress::try_from(text.to_owned())
    }

    #[test]
    fn names_and_addresses_of_both_families_are_accepted() {
        assert_eq!(
            parse("smpp.carrier.example:2775").unwrap().host(),
            "smpp.carrier.example"
        );
        assert_eq!(
            parse("localhost:2775").unwrap().connect_to(),
            ("localhost", 2775)
        );
        assert_eq!(parse("10.0.0.7:2775").unwrap().to_string(), "10.0.0.7:2775");
        let v6 = parse("[2001:db8::1]:2775").unwrap();
        assert_eq!(
            (v6.host(), v6.to_string().as_str()),
            ("2001:db8::1", "[2001:db8::1]:2775")
        );
    }

    #[test]
    fn what_is_not_host_and_port_is_refused() {
        for bad in [
            "smpp.carrier.example",
            "host:",
            "host:99999",
            "host:0",
            ":2775",
            "a b:1",
            "[nope]:1",
            "2001:db8::1:2775x",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
