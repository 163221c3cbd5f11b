//! Scopes (RFC 6749 §3.3): a space-delimited list of case-sensitive tokens,
//! held as an ordered set so that they render back in a stable order.

use std::fmt;

/// One scope token: `1*( %x21 / %x23-5B / %x5D-7E )` (RFC 6749 §3.3).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    /// Parses one scope token, refusing characters RFC 6749 §3.3 excludes.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let ok = !s.is_empty()
            && s.bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if ok {
            Ok(Scope(s.to_owned()))
        } else {
            Err(ScopeError)
        }
    }
}

impl AsRef<str> for Scope {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The value is not a valid RFC 6749 §3.3 scope list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed scope")]
pub struct ScopeError;

/// A set of scopes, parsed from and rendered to the space-separated form.
///
/// A sorted slice without repeats rather than a `BTreeSet`: a set holds a
/// handful of scopes, and a B-tree's node is about 280 bytes however few it
/// holds. Every request parses one and every cached client keeps one or two
/// (10,000 cached clients held about 5 MiB of nodes; BENCHMARKS.md).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ScopeSet(Box<[Scope]>);

impl ScopeSet {
    /// Parses a space-separated list. Repeated spaces are tolerated, as real
    /// clients send them; an empty string is the empty set.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let mut scopes = s
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(Scope::parse)
            .collect::<Result<Vec<_>, _>>()?;
        scopes.sort_unstable();
        scopes.dedup();
        Ok(ScopeSet(scopes.into_boxed_slice()))
    }

    /// Whether every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.iter().all(|s| other.0.binary_search(s).is_ok())
    }

    /// The scopes in both sets.
    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        // In `self`'s order, which is sorted.
        ScopeSet(
            self.0
                .iter()
                .filter(|s| other.0.binary_search(s).is_ok())
                .cloned()
                .collect(),
        )
    }

    /// Whether the set holds this scope.
    pub fn contains(&self, scope: &str) -> bool {
        self.0.binary_search_by(|s| s.0.as_str().cmp(scope)).is_ok()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes in their stable order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|s| s.0.as_str())
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in self.0.iter() {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(&s.0)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_render_in_a_stable_order_whatever_the_input_order() {
        let set = ScopeSet::parse("transaction annulment  confirmation").unwrap();
        assert_eq!(set.to_string(), "annulment confirmation transaction");
    }

    #[test]
    fn a_scope_with_a_backslash_or_quote_is_malformed() {
        assert_eq!(ScopeSet::parse("a\\b"), Err(ScopeError));
        assert_eq!(ScopeSet::parse("a\"b"), Err(ScopeError));
        assert_eq!(ScopeSet::parse("tab\there"), Err(ScopeError));
    }

    #[test]
    fn subset_means_every_requested_scope_is_allowed() {
        let allowed = ScopeSet::parse("transaction confirmation annulment").unwrap();
        assert!(ScopeSet::parse("transaction").unwrap().is_subset(&allowed));
        assert!(!ScopeSet::parse("transaction refund")
            .unwrap()
            .is_subset(&allowed));
        assert!(ScopeSet::parse("").unwrap().is_subset(&allowed));
    }

    #[test]
    fn repeats_count_once_and_sets_compare_by_their_scopes() {
        let a = ScopeSet::parse("b a b  c a").unwrap();
        assert_eq!(a.to_string(), "a b c");
        assert_eq!(a, ScopeSet::parse("c b a").unwrap());
        assert!(a.contains("b") && !a.contains("d") && !a.contains(""));
        let other = ScopeSet::parse("d c a").unwrap();
        assert_eq!(a.intersection(&other).to_string(), "a c");
        assert!(a.intersection(&ScopeSet::default()).is_empty());
    }
}
