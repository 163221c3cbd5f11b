//! A batch of records: each token's own fields, and each grant they share
//! once. Tokens of one grant follow each other by the thousand, so the
//! buffer interns the grant as it records a token: a hash of five short
//! fields, no allocation but the first time a grant is met in a batch.

use std::hash::BuildHasher as _;
use std::net::IpAddr;

use hashbrown::HashTable;

use super::entry::{AuditEntry, EntryFields, Grant, GRANT_FIELDS};
use super::AuditRecord;

/// Records and the grants they refer to by number.
#[derive(Default)]
pub struct AuditBatch {
    entries: Vec<AuditEntry>,
    grants: Vec<Grant>,
    /// Numbers into `grants`, by the hash of the grant's fields.
    index: HashTable<u32>,
    hasher: hashbrown::DefaultHashBuilder,
}

impl std::fmt::Debug for AuditBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditBatch")
            .field("entries", &self.entries)
            .field("grants", &self.grants)
            .finish_non_exhaustive()
    }
}

impl PartialEq for AuditBatch {
    /// The same records, each with the same grant (however numbered).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self.entries.iter().zip(&other.entries).all(|(a, b)| {
                (a.jti(), a.address(), a.iat(), a.exp()) == (b.jti(), b.address(), b.iat(), b.exp())
                    && self.grant_of(a) == other.grant_of(b)
            })
    }
}

impl AuditBatch {
    /// An empty batch with room for `records` records.
    pub fn with_capacity(records: usize) -> Self {
        AuditBatch {
            entries: Vec::with_capacity(records),
            ..Self::default()
        }
    }

    /// Adds a token's record.
    pub fn push(&mut self, f: EntryFields<'_>, iat: i64, exp: i64, address: Option<IpAddr>) {
        let grant = self.intern(f.grant());
        self.entries
            .push(AuditEntry::new(f.jti, grant, iat, exp, address));
    }

    /// The number of `fields`' grant in this batch, added if new.
    fn intern(&mut self, fields: [&str; GRANT_FIELDS]) -> u32 {
        let hash = self.hasher.hash_one(fields);
        let grants = &self.grants;
        if let Some(&n) = self
            .index
            .find(hash, |&n| grants[n as usize].fields() == fields)
        {
            return n;
        }
        // A batch is bounded by the buffer's capacity, far below 4 billion.
        let n = u32::try_from(self.grants.len()).unwrap_or(u32::MAX);
        self.grants.push(Grant::new(fields));
        let (grants, hasher) = (&self.grants, &self.hasher);
        self.index
            .insert_unique(hash, n, |&m| hasher.hash_one(grants[m as usize].fields()));
        n
    }

    /// The records, in the order recorded.
    pub fn entries(&self) -> &[AuditEntry] {
        &self.entries
    }

    /// The batch's distinct grants; an entry names one by [`AuditEntry::grant`].
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// The grant of one of this batch's entries.
    pub fn grant_of(&self, entry: &AuditEntry) -> &Grant {
        &self.grants[entry.grant()]
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `newer`'s records after this batch's, then keeps the first
    /// `capacity`; returns how many were left out. A grant no kept record
    /// uses may stay in the batch: it is written, and pruned like any grant
    /// without tokens.
    pub(super) fn append(&mut self, newer: AuditBatch, capacity: usize) -> usize {
        let renumbered: Vec<u32> = newer
            .grants
            .iter()
            .map(|g| self.intern(g.fields()))
            .collect();
        let room = capacity.saturating_sub(self.entries.len());
        let over = newer.entries.len().saturating_sub(room);
        for mut e in newer.entries.into_iter().take(room) {
            e.set_grant(renumbered[e.grant()]);
            self.entries.push(e);
        }
        let cut = self.entries.len().saturating_sub(capacity);
        self.entries.truncate(capacity);
        over + cut
    }

    /// The full records, as `audit list` shows them.
    pub fn records(&self) -> impl Iterator<Item = AuditRecord> + '_ {
        self.entries.iter().map(|e| {
            let [client_id, subject, scope, dialect, kid] = self.grant_of(e).fields();
            AuditRecord {
                jti: e.jti().to_owned(),
                client_id: client_id.to_owned(),
                subject: subject.to_owned(),
                scope: scope.to_owned(),
                dialect: dialect.to_owned(),
                kid: kid.to_owned(),
                iat: e.iat(),
                exp: e.exp(),
                address: e.address().map(|a| a.to_string()),
            }
        })
    }
}

impl<'a> FromIterator<&'a AuditRecord> for AuditBatch {
    /// For records read back or written by tests. An address that is not
    /// an IP address's text is left out: the buffer keeps addresses as
    /// [`IpAddr`]s.
    fn from_iter<I: IntoIterator<Item = &'a AuditRecord>>(records: I) -> Self {
        let mut batch = AuditBatch::default();
        for r in records {
            let fields = EntryFields {
                jti: &r.jti,
                client_id: &r.client_id,
                subject: &r.subject,
                scope: &r.scope,
                dialect: &r.dialect,
                kid: &r.kid,
            };
            let address = r.address.as_deref().and_then(|a| a.parse().ok());
            batch.push(fields, r.iat, r.exp, address);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(jti: &str, client: &str, scope: &str) -> AuditRecord {
        AuditRecord {
            jti: jti.into(),
            client_id: client.into(),
            subject: client.into(),
            scope: scope.into(),
            dialect: "payvalida".into(),
            kid: "k1".into(),
            iat: 10,
            exp: 20,
            address: (jti != "j-3").then(|| "2001:db8::1".into()),
        }
    }

    #[test]
    fn records_of_one_grant_share_it_and_come_back_whole() {
        let records = [
            record("j-1", "a", "transaction"),
            record("j-2", "b", "transaction"),
            record("j-3", "a", "transaction"),
            record("j-4", "a", "annulment"),
        ];
        let batch: AuditBatch = records.iter().collect();
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.grants().len(), 3);
        let numbers: Vec<usize> = batch.entries().iter().map(AuditEntry::grant).collect();
        assert_eq!(numbers, [0, 1, 0, 2]);
        assert_eq!(batch.records().collect::<Vec<_>>(), records);
    }

    #[test]
    fn appending_renumbers_the_newer_grants_and_keeps_the_capacity() {
        let mut older: AuditBatch = [record("j-1", "a", "transaction")].iter().collect();
        let newer: AuditBatch = [
            record("j-2", "b", "transaction"),
            record("j-3", "a", "transaction"),
            record("j-4", "c", "transaction"),
        ]
        .iter()
        .collect();
        assert_eq!(older.append(newer, 3), 1);
        let jtis: Vec<String> = older
            .records()
            .map(|r| format!("{}:{}", r.jti, r.client_id))
            .collect();
        assert_eq!(jtis, ["j-1:a", "j-2:b", "j-3:a"]);
        // j-3 found j-1's grant; c's grant came along though no record kept uses it.
        assert_eq!(older.entries()[2].grant(), 0);
        assert_eq!(older.grants().len(), 3);
    }
}
