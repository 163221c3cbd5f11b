//! A buffered token record, and the grant it shares with others.
//!
//! At 40,000 tokens/s the buffer holds a second or two of records between
//! writes, so their size is the trail's memory: as seven `String`s a record
//! took ~300 bytes in eight allocations (47 MiB of peak RSS), packed into
//! one `String` ~170 bytes in one allocation. What tokens share (client,
//! subject, scope, dialect, kid: a [`Grant`]) is now kept once per batch
//! ([`super::AuditBatch`]) and a record is 64 bytes of its own, with no
//! allocation at all for the jtis ficha makes (BENCHMARKS.md).

use std::hash::{Hash, Hasher};
use std::net::IpAddr;

use crate::oauth::JTI_LEN;

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

impl<'a> EntryFields<'a> {
    /// The fields a token shares with the others of its grant, in
    /// [`Grant`]'s order.
    pub(super) fn grant(&self) -> [&'a str; GRANT_FIELDS] {
        [
            self.client_id,
            self.subject,
            self.scope,
            self.dialect,
            self.kid,
        ]
    }
}

/// The fields of a grant: client id, subject, scope, dialect, kid.
pub const GRANT_FIELDS: usize = 5;

/// What tokens share: a row of `audit_grants`, its five fields packed in
/// one allocation.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Grant {
    text: Box<str>,
    /// Where each field but the last ends in `text`.
    ends: [u32; GRANT_FIELDS - 1],
}

impl Grant {
    /// Packs the fields (in [`Grant::fields`]' order).
    pub fn new(fields: [&str; GRANT_FIELDS]) -> Self {
        let mut text = String::with_capacity(fields.iter().map(|f| f.len()).sum());
        let mut ends = [0u32; GRANT_FIELDS - 1];
        for (i, field) in fields.iter().enumerate() {
            text.push_str(field);
            if let Some(end) = ends.get_mut(i) {
                // A field is at most a request's size, far below 4 GiB.
                *end = u32::try_from(text.len()).unwrap_or(u32::MAX);
            }
        }
        Grant {
            text: text.into_boxed_str(),
            ends,
        }
    }

    /// Client id, subject, scope (space-separated), dialect, kid.
    pub fn fields(&self) -> [&str; GRANT_FIELDS] {
        std::array::from_fn(|i| {
            let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
            let end = self.ends.get(i).map_or(self.text.len(), |e| *e as usize);
            self.text.get(start..end).unwrap_or_default()
        })
    }
}

impl Hash for Grant {
    /// The hash of [`Grant::fields`], so that a grant can be found by its
    /// fields without packing them first.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.fields().hash(state);
    }
}

/// A token's own jti, inline when it is as short as the ones ficha makes
/// ([`JTI_LEN`] characters), so that recording a token allocates nothing.
#[derive(Clone, PartialEq, Eq)]
enum Jti {
    Inline { len: u8, bytes: [u8; INLINE_JTI] },
    Heap(Box<str>),
}

/// The longest jti kept inline: the length of those ficha makes.
const INLINE_JTI: usize = JTI_LEN;

impl Jti {
    fn new(jti: &str) -> Self {
        let mut bytes = [0u8; INLINE_JTI];
        match (bytes.get_mut(..jti.len()), u8::try_from(jti.len())) {
            (Some(head), Ok(len)) => {
                head.copy_from_slice(jti.as_bytes());
                Jti::Inline { len, bytes }
            }
            _ => Jti::Heap(jti.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Jti::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Jti::Heap(s) => s.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `&str`, so valid UTF-8.
            Jti::Inline { len, bytes } => bytes
                .get(..usize::from(*len))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or_default(),
            Jti::Heap(s) => s,
        }
    }
}

impl std::fmt::Debug for Jti {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

/// An issued token's own part of its audit record; the rest is its batch's
/// grant number `grant`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    jti: Jti,
    grant: u32,
    address: Option<IpAddr>,
    iat: i64,
    exp: i64,
}

impl AuditEntry {
    pub(super) fn new(jti: &str, grant: u32, iat: i64, exp: i64, address: Option<IpAddr>) -> Self {
        AuditEntry {
            jti: Jti::new(jti),
            grant,
            address,
            iat,
            exp,
        }
    }

    /// The token's `jti`.
    pub fn jti(&self) -> &str {
        self.jti.as_str()
    }
    /// The `jti`'s bytes: they sort as the text does, without the UTF-8
    /// check that [`AuditEntry::jti`] makes on each call.
    pub fn jti_bytes(&self) -> &[u8] {
        self.jti.as_bytes()
    }
    /// Which of its batch's grants it belongs to.
    pub fn grant(&self) -> usize {
        self.grant as usize
    }
    pub(super) fn set_grant(&mut self, grant: u32) {
        self.grant = grant;
    }
    /// The caller's address.
    pub fn address(&self) -> Option<IpAddr> {
        self.address
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_gives_back_its_fields_as_packed() {
        let fields = ["wallet:1", "", "transaction annulment", "payvalida", "k1"];
        assert_eq!(Grant::new(fields).fields(), fields);
        assert_eq!(Grant::new([""; GRANT_FIELDS]).fields(), [""; GRANT_FIELDS]);
    }

    #[test]
    fn a_grant_hashes_as_its_fields_do() {
        use std::hash::BuildHasher as _;
        let fields = ["c", "s", "transaction", "nequi", "k"];
        let state = std::collections::hash_map::RandomState::new();
        assert_eq!(state.hash_one(Grant::new(fields)), state.hash_one(fields));
    }

    #[test]
    fn a_jti_of_any_length_comes_back() {
        let made = "AAAAAQ1234567890abcdef";
        assert_eq!(made.len(), INLINE_JTI);
        for jti in ["", "j-1", made, "a-jti-longer-than-twenty-two-characters"] {
            let e = AuditEntry::new(jti, 0, 10, 20, None);
            assert_eq!(e.jti(), jti);
        }
        assert!(matches!(Jti::new(made), Jti::Inline { .. }));
        // ficha's own records take no allocation beyond the buffer's slot.
        assert!(std::mem::size_of::<AuditEntry>() <= 64);
    }
}
