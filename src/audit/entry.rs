//! One buffered record packed into a single allocation. At 37,000
//! tokens/s the buffer holds a second of records between writes; as an
//! [`AuditRecord`] of seven `String`s each took ~300 bytes in eight
//! allocations, and the trail cost 47 MiB of peak RSS (BENCHMARKS.md).

use std::net::IpAddr;

use super::AuditRecord;

/// The text fields of a record, in the order they are packed.
const FIELDS: usize = 6;

/// An issued token's audit record, its text in one `String`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// jti, client id, subject, scope, dialect, kid, then the address.
    text: String,
    /// Where each of the [`FIELDS`] ends in `text`; the address runs from
    /// the last end to the end of `text`.
    ends: [u32; FIELDS],
    has_address: bool,
    iat: i64,
    exp: i64,
}

/// A record's text fields as the token endpoint has them.
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    pub jti: &'a str,
    pub client_id: &'a str,
    pub subject: &'a str,
    pub scope: &'a str,
    pub dialect: &'a str,
    pub kid: &'a str,
}

/// The longest text of an IPv6 address (`ffff:...:255.255.255.255`).
const MAX_ADDRESS_LEN: usize = 45;

impl AuditEntry {
    /// Packs a record: one allocation, of the exact size.
    pub fn new(f: EntryFields<'_>, iat: i64, exp: i64, address: Option<IpAddr>) -> Self {
        let mut ip = [0u8; MAX_ADDRESS_LEN];
        let ip_len = address.map_or(0, |a| {
            let mut w = &mut ip[..];
            // The longest address text fits; a failure would leave it out.
            match std::io::Write::write_fmt(&mut w, format_args!("{a}")) {
                Ok(()) => MAX_ADDRESS_LEN - w.len(),
                Err(_) => 0,
            }
        });
        let parts = [f.jti, f.client_id, f.subject, f.scope, f.dialect, f.kid];
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let mut text = String::with_capacity(len + ip_len);
        let mut ends = [0u32; FIELDS];
        for (end, part) in ends.iter_mut().zip(parts) {
            text.push_str(part);
            // A field is at most a request's size, far below 4 GiB.
            *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
        }
        // An IpAddr's text is ASCII.
        text.push_str(std::str::from_utf8(&ip[..ip_len]).unwrap_or_default());
        AuditEntry {
            text,
            ends,
            has_address: address.is_some(),
            iat,
            exp,
        }
    }

    fn field(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        let end = self.ends.get(i).map_or(self.text.len(), |e| *e as usize);
        self.text.get(start..end).unwrap_or_default()
    }

    /// The token's `jti`.
    pub fn jti(&self) -> &str {
        self.field(0)
    }
    /// The client it was issued to.
    pub fn client_id(&self) -> &str {
        self.field(1)
    }
    /// Its `sub`.
    pub fn subject(&self) -> &str {
        self.field(2)
    }
    /// The granted scope, space-separated.
    pub fn scope(&self) -> &str {
        self.field(3)
    }
    /// The dialect whose endpoint issued it.
    pub fn dialect(&self) -> &str {
        self.field(4)
    }
    /// The signing key id.
    pub fn kid(&self) -> &str {
        self.field(5)
    }
    /// The caller's address.
    pub fn address(&self) -> Option<&str> {
        self.has_address.then(|| self.field(FIELDS))
    }
    /// Issued at, unix seconds.
    pub fn iat(&self) -> i64 {
        self.iat
    }
    /// Expiry, unix seconds.
    pub fn exp(&self) -> i64 {
        self.exp
    }
}

impl From<&AuditRecord> for AuditEntry {
    /// For records whose address is text already (tests, imports): the
    /// text is kept as it is.
    fn from(r: &AuditRecord) -> Self {
        let fields = EntryFields {
            jti: &r.jti,
            client_id: &r.client_id,
            subject: &r.subject,
            scope: &r.scope,
            dialect: &r.dialect,
            kid: &r.kid,
        };
        let mut entry = AuditEntry::new(fields, r.iat, r.exp, None);
        if let Some(a) = &r.address {
            entry.text.push_str(a);
            entry.has_address = true;
        }
        entry
    }
}

impl From<&AuditEntry> for AuditRecord {
    fn from(e: &AuditEntry) -> Self {
        AuditRecord {
            jti: e.jti().to_owned(),
            client_id: e.client_id().to_owned(),
            subject: e.subject().to_owned(),
            scope: e.scope().to_owned(),
            dialect: e.dialect().to_owned(),
            kid: e.kid().to_owned(),
            iat: e.iat,
            exp: e.exp,
            address: e.address().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_comes_back_as_packed() {
        let f = EntryFields {
            jti: "j-1",
            client_id: "wallet:1",
            subject: "",
            scope: "transaction annulment",
            dialect: "payvalida",
            kid: "k1",
        };
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let e = AuditEntry::new(f, 10, 20, Some(ip));
        assert_eq!(
            (e.jti(), e.client_id(), e.subject(), e.scope()),
            ("j-1", "wallet:1", "", "transaction annulment")
        );
        assert_eq!((e.dialect(), e.kid()), ("payvalida", "k1"));
        assert_eq!(
            (e.iat(), e.exp(), e.address()),
            (10, 20, Some("2001:db8::1"))
        );
        let none = AuditEntry::new(f, 10, 20, None);
        assert_eq!(none.address(), None);
        let record = AuditRecord::from(&e);
        assert_eq!(AuditEntry::from(&record), e);
    }
}
