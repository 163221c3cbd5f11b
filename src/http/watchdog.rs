//! Per-connection timekeeping for the serve loop: what a connection is
//! doing (reading a request's headers, running a request, idle between
//! requests) and when it must be closed for it. Knows nothing of HTTP
//! beyond "a request began" and "a request's handler finished"; it owns
//! no socket, only an IO wrapper that notes when bytes move.
//!
//! hyper's own `header_read_timeout` is not used: its clock for the next
//! request starts as soon as the previous response is written, so an idle
//! keep-alive connection is closed at the header timeout (measured with
//! hyper 1.12: a 2 s header timeout closed an idle keep-alive connection
//! after 2.0 s) and a longer idle timeout could never take effect.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// No request is being read.
const NONE: u64 = u64::MAX;

/// Why a connection was closed by its watchdog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// The request's headers did not arrive in time.
    HeaderTimeout,
    /// No request and no byte moved for the idle timeout.
    Idle,
}

/// The limits a watchdog enforces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// The longest the watchdog sleeps without looking at the state.
    fn recheck(&self) -> Duration {
        // At most a day, so that adding it to an instant cannot overflow.
        self.header_timeout
            .min(self.idle_timeout)
            .min(Duration::from_secs(86_400))
    }
}

/// What one connection is doing. Shared by the IO wrapper, the service
/// and the watchdog, all polled by the connection's one task, so the
/// atomics are never contended: they are there to make it `Send`.
///
/// Nothing wakes the watchdog when the state changes (that would be an
/// extra poll of the connection's task per request); it looks again at
/// least every
/// [`Limits::recheck`], which is never longer than a deadline can move
/// earlier by, so no deadline is observed late.
#[derive(Debug)]
pub(crate) struct Activity {
    epoch: Instant,
    /// Nanoseconds since `epoch` of the last byte read or written, or of
    /// the last handler finishing.
    last_io: AtomicU64,
    /// Nanoseconds since `epoch` at which the request now being read
    /// began (its first byte; the accept for a connection's first
    /// request), or `NONE`.
    request_start: AtomicU64,
    /// Requests whose headers were read and whose handler still runs.
    in_flight: AtomicUsize,
}

impl Activity {
    /// A connection accepted now: its first request's header clock runs.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Activity {
            epoch: Instant::now(),
            last_io: AtomicU64::new(0),
            request_start: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Nanoseconds since `epoch`: exact, so no deadline comes early.
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(NONE - 1)
    }

    fn on_read(&self) {
        let now = self.now();
        self.last_io.store(now, Ordering::Relaxed);
        // Bytes read while a handler runs are its body, or a pipelined
        // request that the idle limit then bounds.
        if self.in_flight.load(Ordering::Relaxed) == 0
            && self.request_start.load(Ordering::Relaxed) == NONE
        {
            self.request_start.store(now, Ordering::Relaxed);
        }
    }

    fn on_write(&self) {
        self.last_io.store(self.now(), Ordering::Relaxed);
    }

    /// Marks a request's headers as read; the returned guard marks its
    /// handler finished when dropped (completed or cancelled).
    pub(crate) fn begin_request(self: &Arc<Self>) -> InFlight {
        self.request_start.store(NONE, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// When the connection must close and why; `None` while a handler
    /// runs (the router's own timeout bounds it).
    fn deadline(&self, limits: Limits) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let ns = Duration::from_nanos;
        let start = self.request_start.load(Ordering::Relaxed);
        let (from, limit, why) = if start == NONE {
            let last = self.last_io.load(Ordering::Relaxed);
            (ns(last), limits.idle_timeout, Expiry::Idle)
        } else {
            (ns(start), limits.header_timeout, Expiry::HeaderTimeout)
        };
        // An absurd limit never expires rather than overflowing.
        let at = from
            .checked_add(limit)
            .and_then(|d| self.epoch.checked_add(d))?;
        Some((at, why))
    }

    /// Completes when the connection is past a deadline.
    pub(crate) async fn expired(&self, limits: Limits) -> Expiry {
        loop {
            let now = Instant::now();
            let recheck = now + limits.recheck();
            match self.deadline(limits) {
                Some((at, why)) if at <= now => return why,
                // A request starting while this sleeps has its header
                // deadline at least `recheck` away, and one running moves
                // the idle deadline to at least `recheck` after it ends.
                Some((at, _)) => tokio::time::sleep_until(at.min(recheck)).await,
                None => tokio::time::sleep_until(recheck).await,
            }
        }
    }
}

/// A request whose handler is running.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let a = &self.0;
        a.last_io.store(a.now(), Ordering::Relaxed);
        a.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An IO stream that reports to its connection's [`Activity`] when bytes
/// move. Generic so that a TLS stream can be tracked the same way.
#[derive(Debug)]
pub(crate) struct Tracked<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> Tracked<I> {
    pub(crate) fn new(io: I, activity: Arc<Activity>) -> Self {
        Tracked { io, activity }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Tracked<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.on_read();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Tracked<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.on_write();
        }
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.on_write();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real time, short limits: each check is that a deadline is not
    // early (timers never fire early, however loaded the machine) and
    // comes within a generous bound.
    const LIMITS: Limits = Limits {
        header_timeout: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(600),
    };
    const SLACK: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_silent_new_connection_expires_at_the_header_timeout() {
        let a = Activity::new();
        let start = Instant::now();
        assert_eq!(a.expired(LIMITS).await, Expiry::HeaderTimeout);
        assert!(start.elapsed() >= LIMITS.header_timeout);
        assert!(start.elapsed() < LIMITS.header_timeout + SLACK);
    }

    #[tokio::test]
    async fn a_running_handler_never_expires_and_idle_time_starts_when_it_ends() {
        let a = Activity::new();
        let guard = a.begin_request();
        let waited = tokio::time::timeout(3 * LIMITS.idle_timeout, a.expired(LIMITS)).await;
        assert!(waited.is_err(), "expired while a handler ran");
        let ended = Instant::now();
        drop(guard);
        assert_eq!(a.expired(LIMITS).await, Expiry::Idle);
        assert!(ended.elapsed() >= LIMITS.idle_timeout);
        assert!(ended.elapsed() < LIMITS.idle_timeout + SLACK);
    }

    #[tokio::test]
    async fn the_first_byte_after_idle_starts_the_header_clock() {
        let a = Activity::new();
        drop(a.begin_request());
        let watchdog = {
            let a = a.clone();
            tokio::spawn(async move { a.expired(LIMITS).await })
        };
        tokio::time::sleep(LIMITS.header_timeout * 2).await;
        let first_byte = Instant::now();
        a.on_read();
        assert_eq!(watchdog.await.unwrap(), Expiry::HeaderTimeout);
        assert!(first_byte.elapsed() >= LIMITS.header_timeout);
    }

    #[tokio::test]
    async fn bytes_moving_push_the_idle_deadline_back() {
        let a = Activity::new();
        drop(a.begin_request());
        tokio::time::sleep(LIMITS.idle_timeout / 2).await;
        let written = Instant::now();
        a.on_write();
        assert_eq!(a.expired(LIMITS).await, Expiry::Idle);
        assert!(written.elapsed() >= LIMITS.idle_timeout);
    }
}
