//! The request timeout: a handler that has not answered within its limit
//! gets `408 Request Timeout` (a body dripped in slowly, a store that hangs).
//!
//! Unlike `tower_http::timeout::TimeoutLayer`, the timer is only set once a
//! handler has to wait. A token request whose client is cached, the steady
//! state, answers on its first poll, and registering and removing a timer
//! for it cost about 1 % of the token endpoint's CPU (BENCHMARKS.md). The
//! limit then runs from that first wait, microseconds after the request
//! began.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokio::time::Sleep;

/// Applies [`RequestTimeout`] to a service.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeoutLayer {
    limit: Duration,
}

impl RequestTimeoutLayer {
    /// Handlers get `limit` to answer.
    pub fn new(limit: Duration) -> Self {
        RequestTimeoutLayer { limit }
    }
}

impl<S> tower::Layer<S> for RequestTimeoutLayer {
    type Service = RequestTimeout<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestTimeout {
            inner,
            limit: self.limit,
        }
    }
}

/// A service whose responses take at most its limit, or are a 408.
#[derive(Debug, Clone)]
pub struct RequestTimeout<S> {
    inner: S,
    limit: Duration,
}

impl<S, R> tower::Service<R> for RequestTimeout<S>
where
    S: tower::Service<R, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = TimeoutFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        TimeoutFuture {
            inner: self.inner.call(request),
            sleep: None,
            limit: self.limit,
        }
    }
}

pin_project_lite::pin_project! {
    /// The handler's future, and its timer once it has waited.
    pub struct TimeoutFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Option<Sleep>,
        limit: Duration,
    }
}

impl<F, E> Future for TimeoutFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.limit)));
        }
        match this.sleep.as_pin_mut().map(|s| s.poll(cx)) {
            Some(Poll::Ready(())) => Poll::Ready(Ok(StatusCode::REQUEST_TIMEOUT.into_response())),
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer as _, ServiceExt as _};

    #[tokio::test]
    async fn a_handler_past_its_limit_gets_408_and_one_within_it_answers() {
        let layer = RequestTimeoutLayer::new(Duration::from_millis(300));
        let answer_after = |wait: Duration| {
            layer.layer(tower::service_fn(move |()| async move {
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok::<_, std::convert::Infallible>(StatusCode::OK.into_response())
            }))
        };
        let slow = answer_after(Duration::from_secs(30)).oneshot(()).await;
        assert_eq!(slow.unwrap().status(), StatusCode::REQUEST_TIMEOUT);
        let waits = answer_after(Duration::from_millis(20)).oneshot(()).await;
        assert_eq!(waits.unwrap().status(), StatusCode::OK);
        let at_once = answer_after(Duration::ZERO).oneshot(()).await;
        assert_eq!(at_once.unwrap().status(), StatusCode::OK);
    }
}
