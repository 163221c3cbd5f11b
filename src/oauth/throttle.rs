//! Throttles that bound password hashing, not clients (SPEC §9).
//!
//! What is counted is hashing that matched nothing: a verification is
//! charged when it is queued and refunded when it matches a live secret, so
//! a client presenting its right secret never accumulates anything, while a
//! flood of wrong secrets is counted before its jobs can fill the hashing
//! queue. Two leaky buckets are charged together:
//! - one per (client id, address): a flood aimed at one client id from one
//!   address throttles that pair only, never the same id from elsewhere;
//! - one per address: bounds the hashing any one address can cause, for
//!   known and unknown ids alike.
//!
//! Both tables are bounded caches of fixed-size keys (the pair is keyed by a
//! keyed digest of id and address, IPv6 addresses by their /64), so a spray
//! of random ids or addresses costs bounded memory; an evicted bucket only
//! forgets a count, and the address bucket still bounds the total.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::sync::Cache;

/// Pair buckets kept at most: beyond this the least recently used are
/// forgotten (about 10 MiB at the worst).
const PAIR_CAPACITY: u64 = 65_536;
/// Address buckets kept at most.
const ADDRESS_CAPACITY: u64 = 16_384;

/// The address a throttle and the hashing queue's fairness are keyed by:
/// an IPv4 address as it is, an IPv6 address by its /64 (one subscriber's
/// allocation), and one shared key when the address is unknown.
pub fn address_key(peer: Option<IpAddr>) -> IpAddr {
    match peer {
        None => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
        Some(IpAddr::V4(v4)) => IpAddr::V4(v4),
        Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A leaky bucket: `level` failures, draining at the limit's rate.
#[derive(Debug)]
struct Bucket {
    level: f64,
    at: Instant,
}

impl Bucket {
    fn drain(&mut self, rate_per_sec: f64, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.level = (self.level - elapsed * rate_per_sec).max(0.0);
        self.at = now;
    }
}

/// One table of buckets with a per-minute limit.
struct Limiter<K: std::hash::Hash + Eq + Send + Sync + 'static> {
    burst: f64,
    rate_per_sec: f64,
    buckets: Cache<K, Arc<Mutex<Bucket>>>,
}

impl<K: std::hash::Hash + Eq + Clone + Send + Sync + 'static> Limiter<K> {
    fn new(per_minute: NonZeroU32, capacity: u64) -> Self {
        let burst = f64::from(per_minute.get());
        Limiter {
            burst,
            rate_per_sec: burst / 60.0,
            // A bucket left alone for a minute has drained completely.
            buckets: Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(Duration::from_secs(61))
                .build(),
        }
    }

    fn bucket(&self, key: &K, now: Instant) -> Arc<Mutex<Bucket>> {
        self.buckets.get_with_by_ref(key, || {
            Arc::new(Mutex::new(Bucket {
                level: 0.0,
                at: now,
            }))
        })
    }

    /// How long until one more charge fits, if it does not now.
    fn wait(&self, bucket: &Mutex<Bucket>, now: Instant) -> Option<Duration> {
        let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
        b.drain(self.rate_per_sec, now);
        let over = b.level + 1.0 - self.burst;
        (over > 0.0).then(|| Duration::from_secs_f64(over / self.rate_per_sec))
    }

    /// Whether `key` is over its limit now, without creating a bucket.
    fn peek(&self, key: &K, now: Instant) -> Option<Duration> {
        self.buckets.get(key).and_then(|b| self.wait(&b, now))
    }
}

fn add(bucket: &Mutex<Bucket>, amount: f64) {
    let mut b = bucket.lock().unwrap_or_else(|e| e.into_inner());
    b.level = (b.level + amount).max(0.0);
}

/// The two throttles of the authenticator; a limit of 0 disables one.
pub struct Throttle {
    pair: Option<Limiter<[u8; 16]>>,
    address: Option<Limiter<IpAddr>>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle").finish_non_exhaustive()
    }
}

/// A charge for one queued verification, refunded when dropped unless
/// [`Charge::keep`] says the verification failed.
#[must_use]
pub struct Charge {
    buckets: Vec<Arc<Mutex<Bucket>>>,
}

impl Charge {
    /// The verification matched nothing: the charge stays as a failure.
    pub fn keep(mut self) {
        self.buckets.clear();
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        for b in &self.buckets {
            add(b, -1.0);
        }
    }
}

impl Throttle {
    /// Throttles at the given per-minute limits (0 disables one).
    pub fn new(pair_per_minute: u32, address_per_minute: u32) -> Self {
        Throttle {
            pair: NonZeroU32::new(pair_per_minute).map(|n| Limiter::new(n, PAIR_CAPACITY)),
            address: NonZeroU32::new(address_per_minute).map(|n| Limiter::new(n, ADDRESS_CAPACITY)),
        }
    }

    /// Whether the address is already over its limit: checked before any
    /// database lookup, so a throttled address costs nothing more.
    pub fn address_blocked(&self, address: IpAddr, now: Instant) -> Option<Duration> {
        self.address.as_ref()?.peek(&address, now)
    }

    /// Charges one verification to the pair and the address, or says how
    /// long to wait when either is full (then nothing is charged).
    pub fn charge(
        &self,
        pair: [u8; 16],
        address: IpAddr,
        now: Instant,
    ) -> Result<Charge, Duration> {
        let pair = self.pair.as_ref().map(|l| (l, l.bucket(&pair, now)));
        let address = self.address.as_ref().map(|l| (l, l.bucket(&address, now)));
        let wait = [
            pair.as_ref().and_then(|(l, b)| l.wait(b, now)),
            address.as_ref().and_then(|(l, b)| l.wait(b, now)),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        let buckets: Vec<_> = pair
            .map(|(_, b)| b)
            .into_iter()
            .chain(address.map(|(_, b)| b))
            .collect();
        for b in &buckets {
            add(b, 1.0);
        }
        Ok(Charge { buckets })
    }

    /// Buckets currently held, for the memory-bound test and metrics.
    pub fn entries(&self) -> u64 {
        let pair = self.pair.as_ref().map_or(0, |l| {
            l.buckets.run_pending_tasks();
            l.buckets.entry_count()
        });
        let address = self.address.as_ref().map_or(0, |l| {
            l.buckets.run_pending_tasks();
            l.buckets.entry_count()
        });
        pair + address
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 3));

    #[test]
    fn failures_fill_the_pair_bucket_and_refunds_empty_it() {
        let t = Throttle::new(3, 100);
        let now = Instant::now();
        // Successes are refunded: any number of them.
        for _ in 0..50 {
            drop(t.charge([1; 16], A, now).unwrap());
        }
        for _ in 0..3 {
            t.charge([1; 16], A, now).unwrap().keep();
        }
        let wait = t.charge([1; 16], A, now).err().unwrap();
        // One failure drains every 20 s at 3 a minute.
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        // The same id from another address (another pair key), and another
        // id from A, are free.
        t.charge([3; 16], B, now).unwrap().keep();
        t.charge([2; 16], A, now).unwrap().keep();
        // And the pair recovers as the bucket drains.
        assert!(t.charge([1; 16], A, now + Duration::from_secs(21)).is_ok());
    }

    #[test]
    fn in_flight_charges_count_until_settled() {
        let t = Throttle::new(2, 100);
        let now = Instant::now();
        let first = t.charge([1; 16], A, now).unwrap();
        let second = t.charge([1; 16], A, now).unwrap();
        assert!(t.charge([1; 16], A, now).is_err());
        drop(first);
        let third = t.charge([1; 16], A, now).unwrap();
        second.keep();
        third.keep();
        assert!(t.charge([1; 16], A, now).is_err());
    }

    #[test]
    fn the_address_bucket_bounds_every_id_and_is_peeked_without_charging() {
        let t = Throttle::new(100, 5);
        let now = Instant::now();
        for id in 0..5u8 {
            assert!(t.address_blocked(A, now).is_none());
            t.charge([id; 16], A, now).unwrap().keep();
        }
        assert!(t.address_blocked(A, now).is_some());
        assert!(t.charge([9; 16], A, now).is_err());
        // A refused charge charged nothing: B is untouched, A no further.
        assert!(t.address_blocked(B, now).is_none());
        assert!(t.charge([9; 16], A, now + Duration::from_secs(13)).is_ok());
    }

    #[test]
    fn a_zero_limit_disables_a_throttle() {
        let t = Throttle::new(0, 0);
        let now = Instant::now();
        for _ in 0..1000 {
            t.charge([1; 16], A, now).unwrap().keep();
        }
        assert!(t.address_blocked(A, now).is_none());
    }

    #[test]
    fn ipv6_addresses_share_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(Some(a)), address_key(Some(b)));
        assert_ne!(address_key(Some(a)), address_key(Some(c)));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(address_key(Some(mapped)), A);
    }

    #[test]
    fn a_spray_of_keys_stays_within_the_tables_capacity() {
        let t = Throttle::new(10, 120);
        let now = Instant::now();
        for i in 0..(PAIR_CAPACITY as u32 + 5_000) {
            let mut key = [0u8; 16];
            key[..4].copy_from_slice(&i.to_be_bytes());
            let _ = t.charge(key, A, now).map(Charge::keep);
        }
        assert!(t.entries() <= PAIR_CAPACITY + ADDRESS_CAPACITY);
    }
}
