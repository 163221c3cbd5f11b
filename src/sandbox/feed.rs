//! The live feed of captured requests behind `GET /sandbox/requests/stream`:
//! a broadcast of each request as the log stores it, and a "closing" flag
//! raised at shutdown so that every open stream ends and the server can
//! drain.
//!
//! Memory is bounded whatever the readers do: the channel keeps the last
//! [`FEED_CAPACITY`] requests, shared by every reader; a reader that falls
//! further behind is told how many it missed (`Lagged`) rather than making
//! the server queue for it.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

use super::CapturedRequest;

/// Requests the channel keeps for readers that are behind.
pub const FEED_CAPACITY: usize = 64;

/// The broadcast of captured requests and the shutdown flag.
#[derive(Debug)]
pub struct Feed {
    tx: broadcast::Sender<Arc<CapturedRequest>>,
    closing: watch::Sender<bool>,
}

impl Default for Feed {
    fn default() -> Self {
        Feed {
            tx: broadcast::channel(FEED_CAPACITY).0,
            closing: watch::channel(false).0,
        }
    }
}

/// One reader's end of the feed.
#[derive(Debug)]
pub struct Subscription {
    /// The requests stored after the subscription began.
    pub requests: broadcast::Receiver<Arc<CapturedRequest>>,
    /// Becomes `true` when the server shuts down.
    pub closing: watch::Receiver<bool>,
}

impl Feed {
    /// Sends a copy of a request to every reader; with none listening
    /// (the usual case) nothing is copied.
    pub(super) fn publish(&self, request: &CapturedRequest) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(Arc::new(request.clone()));
        }
    }

    pub(super) fn subscribe(&self) -> Subscription {
        Subscription {
            requests: self.tx.subscribe(),
            closing: self.closing.subscribe(),
        }
    }

    /// Ends every stream, now and for any opened later.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}
