//! The real client address behind trusted proxies (SPEC §9).
//!
//! Behind a load balancer every connection comes from the proxy, so
//! throttling by the connection's address would make the whole world share
//! one bucket. For a connection from a trusted proxy, the client is the
//! right-most `X-Forwarded-For` entry that is not itself trusted: entries to
//! its right were added by proxies we trust, entries to its left were
//! written by the client and prove nothing. A connection from anywhere else
//! is its own address, whatever headers it sends.

use std::net::IpAddr;
use std::str::FromStr;

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The networks whose `X-Forwarded-For` is believed; empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl FromStr for TrustedProxies {
    type Err = anyhow::Error;

    /// A comma-separated list of CIDRs or plain addresses
    /// (`10.0.0.0/8, 127.0.0.1, ::1`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse::<IpNet>()
                    .or_else(|_| t.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!("trusted proxies: {t:?} is not an address or a CIDR")
                    })
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }
}

impl std::fmt::Display for TrustedProxies {
    /// The comma-separated form `--trusted-proxies` takes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let all: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&all.join(","))
    }
}

impl TrustedProxies {
    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client address of a request that arrived from `peer`.
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        if self.0.is_empty() || !self.trusts(peer) {
            return peer;
        }
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let mut entries = Vec::new();
        for value in headers.get_all("x-forwarded-for") {
            let Ok(value) = value.to_str() else {
                return peer;
            };
            entries.extend(value.split(',').map(str::trim));
        }
        let mut leftmost = None;
        for entry in entries.iter().rev() {
            // Malformed before an untrusted entry was found: the chain
            // cannot be followed, so the proxy is all we know.
            let Some(ip) = parse_entry(entry) else {
                return peer;
            };
            if !self.trusts(ip) {
                return ip;
            }
            leftmost = Some(ip);
        }
        leftmost.unwrap_or(peer)
    }
}

/// An IPv4-mapped IPv6 address is the IPv4 address it maps.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port
/// (`1.2.3.4:5678`, `[2001:db8::1]:443`), as some proxies write them.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    entry
        .parse::<std::net::SocketAddr>()
        .ok()
        .map(|s| canonical(s.ip()))
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let t = TrustedProxies::default();
        assert_eq!(
            t.client_addr(ip("10.0.0.1"), &xff(&["1.2.3.4"])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn an_untrusted_peer_is_its_own_address() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            t.client_addr(ip("192.0.2.7"), &xff(&["1.2.3.4"])),
            ip("192.0.2.7")
        );
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        let t: TrustedProxies = "10.0.0.0/8, 127.0.0.1".parse().unwrap();
        // The client forged "6.6.6.6"; the proxies appended the rest.
        let h = xff(&["6.6.6.6, 203.0.113.9, 10.1.1.1"]);
        assert_eq!(t.client_addr(ip("127.0.0.1"), &h), ip("203.0.113.9"));
        // Split over several lines, the same list.
        let h = xff(&["6.6.6.6", "203.0.113.9", "10.1.1.1"]);
        assert_eq!(t.client_addr(ip("10.2.2.2"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn all_trusted_means_the_leftmost() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        let h = xff(&["10.9.9.9, 10.1.1.1"]);
        assert_eq!(t.client_addr(ip("10.0.0.1"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn a_missing_or_malformed_header_means_the_proxy() {
        let t: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        assert_eq!(
            t.client_addr(ip("10.0.0.1"), &HeaderMap::new()),
            ip("10.0.0.1")
        );
        assert_eq!(
            t.client_addr(ip("10.0.0.1"), &xff(&["1.2.3.4, nonsense"])),
            ip("10.0.0.1")
        );
        assert_eq!(t.client_addr(ip("10.0.0.1"), &xff(&[""])), ip("10.0.0.1"));
        // Garbage to the left of the client is the client's own doing.
        assert_eq!(
            t.client_addr(ip("10.0.0.1"), &xff(&["nonsense, 1.2.3.4"])),
            ip("1.2.3.4")
        );
    }

    #[test]
    fn ports_and_mapped_addresses_are_read() {
        let t: TrustedProxies = "::1, 10.0.0.0/8".parse().unwrap();
        let h = xff(&["[2001:db8::5]:4431, 10.0.0.3:80"]);
        assert_eq!(t.client_addr(ip("::1"), &h), ip("2001:db8::5"));
        assert_eq!(
            t.client_addr(ip("::ffff:10.0.0.1"), &xff(&["::ffff:192.0.2.1"])),
            ip("192.0.2.1")
        );
    }

    #[test]
    fn bad_lists_are_refused() {
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
        assert!("proxy.example".parse::<TrustedProxies>().is_err());
        assert!("".parse::<TrustedProxies>().unwrap().is_empty());
    }
}
