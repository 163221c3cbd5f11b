//! Where a database's schema stands against the migrations this binary
//! carries, read without applying anything (`ficha config check`).

use std::collections::BTreeMap;

use sqlx::migrate::Migrator;

/// The schema of a database compared with this binary's migrations.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaStatus {
    /// Migrations this binary carries.
    pub expected: usize,
    /// Versions applied to the database.
    pub applied: Vec<i64>,
    /// This binary's versions not applied yet.
    pub pending: Vec<i64>,
    /// Applied versions this binary does not know (a newer binary ran).
    pub unknown: Vec<i64>,
    /// Applied versions whose file has changed since.
    pub modified: Vec<i64>,
}

impl SchemaStatus {
    /// Compares applied `(version, checksum)` rows with `migrator`.
    pub(crate) fn compare(migrator: &Migrator, applied: Vec<(i64, Vec<u8>)>) -> Self {
        let applied: BTreeMap<i64, Vec<u8>> = applied.into_iter().collect();
        let ours: BTreeMap<i64, &[u8]> = migrator
            .iter()
            .filter(|m| !m.migration_type.is_down_migration())
            .map(|m| (m.version, m.checksum.as_ref()))
            .collect();
        SchemaStatus {
            expected: ours.len(),
            applied: applied.keys().copied().collect(),
            pending: ours
                .keys()
                .filter(|v| !applied.contains_key(v))
                .copied()
                .collect(),
            unknown: applied
                .keys()
                .filter(|v| !ours.contains_key(v))
                .copied()
                .collect(),
            modified: applied
                .iter()
                .filter(|(v, sum)| ours.get(v).is_some_and(|o| *o != sum.as_slice()))
                .map(|(v, _)| *v)
                .collect(),
        }
    }

    /// Whether the database is exactly at this binary's version.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty() && self.unknown.is_empty() && self.modified.is_empty()
    }
}

/// The applied, successful migrations, or none when the table is absent.
pub(crate) const APPLIED_QUERY: &str =
    "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version";
