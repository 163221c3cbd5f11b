//! The request log: the last token requests a sandbox received, in a ring
//! buffer of fixed capacity, each one masked before it is stored
//! (`sandbox::mask`) so that no secret, password, credential or token is
//! ever held or served.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

use serde::Serialize;

use super::feed::{Feed, Subscription};

/// The default number of requests kept.
pub const DEFAULT_CAPTURE_CAPACITY: usize = 500;

/// One captured token request, already masked.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CapturedRequest {
    /// Its number in this server's log, from 1, increasing: the stream's
    /// event id. Assigned when the log stores it.
    pub id: u64,
    /// When it arrived, unix seconds.
    pub time: i64,
    /// The dialect that served it.
    #[schema(value_type = String)]
    pub dialect: &'static str,
    /// The client it named, when the dialect could read one.
    pub client_id: Option<String>,
    /// The HTTP method.
    pub method: String,
    /// The path.
    pub path: String,
    /// The query string, masked like a form.
    pub query: Option<String>,
    /// Header names (lowercase) and masked values; repeats joined by `, `.
    pub headers: BTreeMap<String, String>,
    /// The masked body.
    pub body: String,
    /// `issued`, or the error code answered.
    pub outcome: String,
    /// The HTTP status answered.
    pub status: u16,
    /// The fault applied, if any.
    pub fault: Option<String>,
}

/// A bounded ring buffer of captured requests: the oldest is dropped when
/// it is full, so memory never grows past `capacity` entries (each with a
/// body of at most the endpoint's 16 KiB limit).
#[derive(Debug)]
pub struct RequestLog {
    capacity: usize,
    entries: Mutex<Entries>,
    feed: Feed,
}

#[derive(Debug)]
struct Entries {
    ring: VecDeque<CapturedRequest>,
    /// The id of the last request stored.
    last_id: u64,
}

impl RequestLog {
    /// A log keeping the last `capacity` requests (0 keeps none).
    pub fn new(capacity: usize) -> Self {
        RequestLog {
            capacity,
            entries: Mutex::new(Entries {
                ring: VecDeque::with_capacity(capacity.min(1024)),
                last_id: 0,
            }),
            feed: Feed::default(),
        }
    }

    /// How many requests the log keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Appends a request with the next id, dropping the oldest when full,
    /// and sends it to the live feed's readers.
    pub fn push(&self, mut request: CapturedRequest) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.lock();
        entries.last_id += 1;
        request.id = entries.last_id;
        while entries.ring.len() >= self.capacity {
            entries.ring.pop_front();
        }
        // Published under the lock, so that a subscriber sees each request
        // either in its backlog or on the feed, never both nor neither.
        self.feed.publish(&request);
        entries.ring.push_back(request);
    }

    /// Up to `limit` requests, newest first, only `client`'s if given.
    pub fn recent(&self, client: Option<&str>, limit: usize) -> Vec<CapturedRequest> {
        Self::newest(&self.lock(), client, limit, 0)
    }

    /// A live feed, and the backlog it follows: up to `limit` requests with
    /// an id above `after`, only `client`'s if given, newest first.
    pub fn subscribe(
        &self,
        client: Option<&str>,
        limit: usize,
        after: u64,
    ) -> (Subscription, Vec<CapturedRequest>) {
        let entries = self.lock();
        let backlog = Self::newest(&entries, client, limit, after);
        (self.feed.subscribe(), backlog)
    }

    /// Ends every live feed: the server is shutting down.
    pub fn close(&self) {
        self.feed.close();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn newest(
        entries: &Entries,
        client: Option<&str>,
        limit: usize,
        after: u64,
    ) -> Vec<CapturedRequest> {
        entries
            .ring
            .iter()
            .rev()
            .take_while(|r| r.id > after)
            .filter(|r| client.is_none_or(|c| r.client_id.as_deref() == Some(c)))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_is_a_bounded_ring_newest_first() {
        let log = RequestLog::new(3);
        for i in 0..5 {
            log.push(CapturedRequest {
                id: 0,
                time: i,
                dialect: "payvalida",
                client_id: Some(if i % 2 == 0 { "a" } else { "b" }.into()),
                method: "POST".into(),
                path: "/oauth2/token".into(),
                query: None,
                headers: BTreeMap::new(),
                body: String::new(),
                outcome: "issued".into(),
                status: 200,
                fault: None,
            });
        }
        let all: Vec<i64> = log.recent(None, 10).iter().map(|r| r.time).collect();
        assert_eq!(all, [4, 3, 2]);
        let a: Vec<i64> = log.recent(Some("a"), 10).iter().map(|r| r.time).collect();
        assert_eq!(a, [4, 2]);
        assert_eq!(log.recent(None, 1).len(), 1);
        let ids: Vec<u64> = log.recent(None, 10).iter().map(|r| r.id).collect();
        assert_eq!(ids, [5, 4, 3]);
        let (_, after) = log.subscribe(Some("a"), 10, 3);
        assert_eq!(after.iter().map(|r| r.id).collect::<Vec<_>>(), [5]);
    }
}
