//! A caller's address as text, written without `core::fmt`: the trail
//! writes one per token twice (the log line and the row), and an IPv4
//! address through `Display` cost about 1,600 instructions each time, more
//! than the rest of the row's binds together (BENCHMARKS.md).

use std::net::IpAddr;

/// The longest text of an IP address (`ffff:...:255.255.255.255`).
const MAX_LEN: usize = 45;

/// An address's text, on the stack.
#[derive(Clone, Copy)]
pub struct AddressText {
    bytes: [u8; MAX_LEN],
    len: u8,
}

impl AddressText {
    /// The text of `ip` as `Display` writes it.
    pub fn new(ip: IpAddr) -> Self {
        let mut text = AddressText {
            bytes: [0; MAX_LEN],
            len: 0,
        };
        match ip {
            IpAddr::V4(v4) => {
                for (i, octet) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        text.push(b'.');
                    }
                    text.push_octet(octet);
                }
            }
            // Rare behind the proxies ficha is deployed with, and its
            // shortening rules are not worth repeating: `Display` it is.
            IpAddr::V6(_) => {
                let mut w = &mut text.bytes[..];
                if std::io::Write::write_fmt(&mut w, format_args!("{ip}")).is_ok() {
                    text.len = (MAX_LEN - w.len()) as u8;
                }
            }
        }
        text
    }

    fn push(&mut self, b: u8) {
        if let Some(slot) = self.bytes.get_mut(usize::from(self.len)) {
            *slot = b;
            self.len += 1;
        }
    }

    fn push_octet(&mut self, octet: u8) {
        if octet >= 100 {
            self.push(b'0' + octet / 100);
        }
        if octet >= 10 {
            self.push(b'0' + octet / 10 % 10);
        }
        self.push(b'0' + octet % 10);
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Digits, dots, colons and hex letters: ASCII.
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_what_display_writes() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.255.9",
            "255.255.255.255",
            "100.7.99.200",
            "::1",
            "2001:db8::8a2e:370:7334",
            "::ffff:192.0.2.128",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(AddressText::new(ip).as_str(), ip.to_string());
        }
        for octet in 0..=255u8 {
            let ip = IpAddr::from([octet, 0, octet, 9]);
            assert_eq!(AddressText::new(ip).as_str(), ip.to_string());
        }
    }
}
