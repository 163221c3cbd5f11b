//! Faults: what a client's next token requests should suffer, how often,
//! and the in-memory set the token path draws from without a database
//! round trip.
//!
//! `--times N` is counted in memory by the instance that serves the
//! request and is not written back: a sandbox usually runs one instance,
//! and a counter shared through the database would put a write on every
//! request. Setting a fault again (even an identical one) restarts its
//! count, because every write carries a new random `generation`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

use crate::oauth::{ClientId, StoreError};

/// The longest delay a fault may ask for, in milliseconds.
pub const MAX_DELAY_MS: u64 = 60_000;

/// How a token request misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// An error response with this status (429, 500 or 503) in the
    /// dialect's own shape.
    Status(u16),
    /// The request waits this many milliseconds, then proceeds normally.
    Delay(u64),
    /// A 200 whose JSON body is cut short.
    MalformedJson,
    /// A correctly signed token whose `exp` is already past.
    ExpiredToken,
    /// A token whose header names a `kid` the JWKS does not publish.
    WrongKid,
    /// A token whose signature does not verify.
    BadSignature,
}

/// When a fault applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// To any request that names the client, before authentication.
    Request,
    /// To a token just issued, after successful authentication.
    Token,
}

impl FaultKind {
    /// One of each kind but `Delay`, whose milliseconds are the caller's:
    /// what the console's form offers.
    pub const FIXED: [FaultKind; 7] = [
        FaultKind::Status(429),
        FaultKind::Status(500),
        FaultKind::Status(503),
        FaultKind::MalformedJson,
        FaultKind::ExpiredToken,
        FaultKind::WrongKid,
        FaultKind::BadSignature,
    ];

    /// When this kind applies.
    pub fn phase(self) -> Phase {
        match self {
            FaultKind::Status(_) | FaultKind::Delay(_) | FaultKind::MalformedJson => Phase::Request,
            FaultKind::ExpiredToken | FaultKind::WrongKid | FaultKind::BadSignature => Phase::Token,
        }
    }
}

/// A fault that cannot be set, with a reason fit for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidFault(pub String);

impl FromStr for FaultKind {
    type Err = InvalidFault;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "malformed-json" => return Ok(FaultKind::MalformedJson),
            "expired-token" => return Ok(FaultKind::ExpiredToken),
            "wrong-kid" => return Ok(FaultKind::WrongKid),
            "bad-signature" => return Ok(FaultKind::BadSignature),
            _ => {}
        }
        if let Some(code) = s.strip_prefix("status:") {
            return match code {
                "429" => Ok(FaultKind::Status(429)),
                "500" => Ok(FaultKind::Status(500)),
                "503" => Ok(FaultKind::Status(503)),
                _ => Err(InvalidFault(format!(
                    "status:{code} is not a fault status: use status:429, status:500 or status:503"
                ))),
            };
        }
        if let Some(ms) = s.strip_prefix("delay:") {
            return match ms.parse::<u64>() {
                Ok(ms) if (1..=MAX_DELAY_MS).contains(&ms) => Ok(FaultKind::Delay(ms)),
                _ => Err(InvalidFault(format!(
                    "delay:{ms} is not a delay: use delay:MILLISECONDS, 1 to {MAX_DELAY_MS}"
                ))),
            };
        }
        Err(InvalidFault(format!(
            "unknown fault kind {s:?}: use status:429, status:500, status:503, delay:MS, \
             malformed-json, expired-token, wrong-kid or bad-signature"
        )))
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultKind::Status(code) => write!(f, "status:{code}"),
            FaultKind::Delay(ms) => write!(f, "delay:{ms}"),
            FaultKind::MalformedJson => f.write_str("malformed-json"),
            FaultKind::ExpiredToken => f.write_str("expired-token"),
            FaultKind::WrongKid => f.write_str("wrong-kid"),
            FaultKind::BadSignature => f.write_str("bad-signature"),
        }
    }
}

impl Serialize for FaultKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A fault as the database keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FaultRecord {
    /// The client whose requests it hits.
    #[serde(serialize_with = "client_id_str")]
    #[schema(value_type = String)]
    pub client_id: ClientId,
    /// What happens to them: `status:429|500|503`, `delay:MS`, `malformed-json`,
    /// `expired-token`, `wrong-kid` or `bad-signature`.
    #[schema(value_type = String)]
    pub kind: FaultKind,
    /// How many times it fires before it is spent; `None`: until cleared.
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub times: Option<u32>,
    /// The fraction of requests it fires on; `None`: every one.
    pub ratio: Option<f64>,
    /// Seeds the draw behind `ratio`, so a test sees the same sequence.
    pub seed: Option<u64>,
    /// Random per write: an identical fault set again is a new fault.
    #[serde(skip)]
    pub generation: i64,
    /// When it was set, unix seconds.
    pub created_at: i64,
}

fn client_id_str<S: serde::Serializer>(id: &ClientId, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(id.as_ref())
}

impl FaultRecord {
    /// A new fault, checked: `times` at least 1, `ratio` in (0, 1].
    pub fn new(
        client_id: ClientId,
        kind: FaultKind,
        times: Option<u32>,
        ratio: Option<f64>,
        seed: Option<u64>,
        now: i64,
    ) -> Result<Self, InvalidFault> {
        if times == Some(0) {
            return Err(InvalidFault("--times must be at least 1".into()));
        }
        if let Some(r) = ratio {
            if !(r.is_finite() && r > 0.0 && r <= 1.0) {
                return Err(InvalidFault(
                    "--ratio must be a fraction above 0 and at most 1".into(),
                ));
            }
        }
        Ok(FaultRecord {
            client_id,
            kind,
            times,
            ratio,
            seed,
            generation: rand::thread_rng().gen(),
            created_at: now,
        })
    }
}

/// The fault table (sandbox only). Every write appends a
/// [`Change::Faults`](crate::sync::Change::Faults) to the change log in
/// the same transaction, so every sandbox instance reloads it on its next
/// poll.
#[async_trait]
pub trait FaultStore: Send + Sync {
    /// Every fault, ordered by client id.
    async fn list_faults(&self) -> Result<Vec<FaultRecord>, StoreError>;
    /// Sets the client's fault, replacing any it had.
    async fn set_fault(&self, fault: &FaultRecord) -> Result<(), StoreError>;
    /// Clears one client's fault, or every fault; returns how many went.
    async fn clear_faults(&self, client: Option<&ClientId>, now: i64) -> Result<u64, StoreError>;
}

/// A fault as this instance is applying it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct FaultStatus {
    /// The fault as set.
    #[serde(flatten)]
    pub record: FaultRecord,
    /// Firings left on this instance; `None`: unlimited.
    #[schema(value_type = Option<u64>, maximum = 4294967295_u64)]
    pub remaining: Option<u32>,
    /// Requests it has fired on, on this instance.
    pub fired: u64,
}

#[derive(Debug)]
struct Live {
    status: FaultStatus,
    rng: StdRng,
}

impl Live {
    fn new(record: FaultRecord) -> Self {
        let rng = match record.seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_entropy(),
        };
        Live {
            status: FaultStatus {
                remaining: record.times,
                fired: 0,
                record,
            },
            rng,
        }
    }
}

/// The faults in force on this instance, keyed by client.
#[derive(Debug, Default)]
pub struct FaultSet {
    live: Mutex<HashMap<ClientId, Live>>,
    /// Held across a reload's read and its replace; see [`FaultSet::reload`].
    reloading: tokio::sync::Mutex<()>,
}

impl FaultSet {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ClientId, Live>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Puts in force the faults `read` returns, one reload at a time. The
    /// poller's reload and a request's (`PUT /sandbox/faults`) may overlap:
    /// unserialised, the older read could be applied last and bring back a
    /// fault the request had just replaced. `read` is lazy, so it runs
    /// under the lock.
    pub async fn reload<E>(
        &self,
        read: impl std::future::Future<Output = Result<Vec<FaultRecord>, E>>,
    ) -> Result<(), E> {
        let _one_at_a_time = self.reloading.lock().await;
        self.replace(read.await?);
        Ok(())
    }

    /// Replaces the set with the database's faults. A fault that is the
    /// same write as before (same generation) keeps its countdown and its
    /// random sequence; any other starts afresh.
    pub fn replace(&self, records: Vec<FaultRecord>) {
        let mut live = self.lock();
        let mut next = HashMap::with_capacity(records.len());
        for record in records {
            let entry = match live.remove(&record.client_id) {
                Some(old) if old.status.record == record => old,
                _ => Live::new(record.clone()),
            };
            next.insert(record.client_id, entry);
        }
        *live = next;
    }

    /// Whether a fault of `phase` fires for this request of `client`; if
    /// so, counts it and returns its kind. A fault of the other phase is
    /// left untouched (no draw, no count).
    pub fn take(&self, client: &ClientId, phase: Phase) -> Option<FaultKind> {
        let mut live = self.lock();
        let fault = live.get_mut(client)?;
        let kind = fault.status.record.kind;
        if kind.phase() != phase || fault.status.remaining == Some(0) {
            return None;
        }
        if let Some(ratio) = fault.status.record.ratio {
            if fault.rng.gen::<f64>() >= ratio {
                return None;
            }
        }
        if let Some(n) = &mut fault.status.remaining {
            *n -= 1;
        }
        fault.status.fired += 1;
        Some(kind)
    }

    /// Every fault and its state on this instance, ordered by client id.
    pub fn snapshot(&self) -> Vec<FaultStatus> {
        let mut all: Vec<FaultStatus> = self.lock().values().map(|l| l.status.clone()).collect();
        all.sort_by(|a, b| a.record.client_id.cmp(&b.record.client_id));
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(
        kind: &str,
        times: Option<u32>,
        ratio: Option<f64>,
        seed: Option<u64>,
    ) -> FaultRecord {
        FaultRecord::new(
            ClientId::parse("c").unwrap(),
            kind.parse().unwrap(),
            times,
            ratio,
            seed,
            0,
        )
        .unwrap()
    }

    #[test]
    fn fault_kinds_round_trip_and_bad_ones_are_refused() {
        for k in [
            "status:429",
            "status:500",
            "status:503",
            "delay:250",
            "malformed-json",
            "expired-token",
            "wrong-kid",
            "bad-signature",
        ] {
            assert_eq!(k.parse::<FaultKind>().unwrap().to_string(), k);
        }
        for bad in [
            "status:404",
            "delay:0",
            "delay:x",
            "delay:60001",
            "boom",
            "",
        ] {
            assert!(bad.parse::<FaultKind>().is_err(), "{bad}");
        }
        let id = ClientId::parse("c").unwrap();
        let k = FaultKind::WrongKid;
        assert!(FaultRecord::new(id.clone(), k, Some(0), None, None, 0).is_err());
        assert!(FaultRecord::new(id.clone(), k, None, Some(0.0), None, 0).is_err());
        assert!(FaultRecord::new(id, k, None, Some(1.5), None, 0).is_err());
    }

    #[test]
    fn a_counted_fault_fires_n_times_then_is_spent() {
        let set = FaultSet::default();
        set.replace(vec![record("status:503", Some(2), None, None)]);
        let c = ClientId::parse("c").unwrap();
        assert_eq!(set.take(&c, Phase::Token), None);
        assert_eq!(set.take(&c, Phase::Request), Some(FaultKind::Status(503)));
        assert_eq!(set.take(&c, Phase::Request), Some(FaultKind::Status(503)));
        assert_eq!(set.take(&c, Phase::Request), None);
        assert_eq!(set.snapshot()[0].remaining, Some(0));
    }

    #[test]
    fn reloading_the_same_write_keeps_the_count_and_a_new_write_restarts_it() {
        let set = FaultSet::default();
        let r = record("wrong-kid", Some(1), None, None);
        let c = r.client_id.clone();
        set.replace(vec![r.clone()]);
        assert!(set.take(&c, Phase::Token).is_some());
        set.replace(vec![r.clone()]);
        assert!(set.take(&c, Phase::Token).is_none());
        set.replace(vec![FaultRecord {
            generation: r.generation.wrapping_add(1),
            ..r
        }]);
        assert!(set.take(&c, Phase::Token).is_some());
    }

    #[test]
    fn a_seeded_ratio_draws_the_same_sequence_every_time() {
        let run = || {
            let set = FaultSet::default();
            set.replace(vec![record("status:500", None, Some(0.3), Some(7))]);
            let c = ClientId::parse("c").unwrap();
            (0..200)
                .map(|_| set.take(&c, Phase::Request).is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let hits = a.iter().filter(|h| **h).count();
        assert!((30..=90).contains(&hits), "{hits}");
    }

    #[tokio::test]
    async fn an_older_read_is_never_put_in_force_after_a_newer_one() {
        use std::sync::Arc;
        let set = Arc::new(FaultSet::default());
        // The poller's read started first and saw the old fault; it is slow.
        let (answer, slow_read) = tokio::sync::oneshot::channel::<()>();
        let poller = tokio::spawn({
            let set = Arc::clone(&set);
            async move {
                set.reload(async {
                    slow_read.await.ok();
                    Ok::<_, ()>(vec![record("status:429", None, None, None)])
                })
                .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        // A request then replaced the fault and reloads at once.
        let request = tokio::spawn({
            let set = Arc::clone(&set);
            async move {
                set.reload(async { Ok::<_, ()>(vec![record("status:500", None, None, None)]) })
                    .await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        answer.send(()).unwrap();
        poller.await.unwrap().unwrap();
        request.await.unwrap().unwrap();
        let c = ClientId::parse("c").unwrap();
        assert_eq!(set.take(&c, Phase::Request), Some(FaultKind::Status(500)));
    }
}
