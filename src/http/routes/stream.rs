//! `GET /sandbox/requests/stream` (sandbox only): the captured token
//! requests as Server-Sent Events, for the console and for scripts. The
//! stream opens with a backlog of recent requests, oldest first, then sends
//! each new one as the log stores it; an `id:` per event lets a reconnecting
//! `EventSource` resume with `Last-Event-ID`.
//!
//! Bounded: readers share the feed's fixed-size channel, and one that falls
//! behind gets a `lagged` event instead of a queue. Quiet streams send a
//! comment keep-alive more often than the serve loop's idle timeout (bytes
//! moving keep a connection alive there), and every stream ends when the
//! server shuts down.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use crate::http::openapi::schemas;
use crate::http::paths;
use crate::http::routes::sandbox::{invalid, query_params, sandbox, Answer, DEFAULT_LIMIT};
use crate::http::state::AppState;
use crate::sandbox::{CapturedRequest, Subscription};

/// What one stream holds: its end of the feed, what is left of its
/// backlog, and its filter.
struct Reader {
    feed: Subscription,
    /// Newest first: `pop` takes the oldest.
    backlog: Vec<CapturedRequest>,
    client: Option<String>,
}

/// `GET /sandbox/requests/stream?client_id=..&limit=..`
#[utoipa::path(
    get,
    path = paths::SANDBOX_REQUESTS_STREAM,
    tag = "sandbox",
    params(
        ("client_id" = Option<String>, Query, description = "Only this client's requests."),
        ("limit" = Option<u64>, Query, description = "The backlog sent first: at most this many recent requests (default 50, at most the capture size)."),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event id: the backlog holds only later requests.")
    ),
    responses(
        (status = 200, description = "Server-Sent Events, until the server shuts down. \
            `event: request` with `id:` the request's `id` and `data:` one captured request as \
            `GET /sandbox/requests` gives it (masked); `event: lagged` with `data: {\"missed\": N}` \
            when this reader fell more than 64 requests behind; a `: keep-alive` comment when quiet \
            (every 15 s, or more often under a short idle timeout).",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_request`: `limit` is not a number.", body = schemas::OAuthError)
    )
)]
pub async fn stream_requests(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Answer {
    let sb = sandbox(&state)?;
    let mut client = None;
    let mut limit = DEFAULT_LIMIT;
    for (k, v) in query_params(query.as_deref()) {
        match k.as_str() {
            "client_id" => client = Some(v),
            "limit" => {
                limit = v
                    .parse()
                    .map_err(|_| invalid("limit must be a positive number"))?
            }
            _ => {}
        }
    }
    // A malformed id (not one this server sent) resumes from nothing.
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let (feed, backlog) =
        sb.requests
            .subscribe(client.as_deref(), limit.min(sb.requests.capacity()), after);
    let reader = Reader {
        feed,
        backlog,
        client,
    };
    let keep_alive = KeepAlive::new()
        .interval(sb.stream_keep_alive)
        .text("keep-alive");
    let mut resp = Sse::new(events(reader))
        .keep_alive(keep_alive)
        .into_response();
    // A buffering proxy (nginx) would hold the events back.
    resp.headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(resp)
}

fn events(reader: Reader) -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(reader, |mut r| async move {
        let event = next_event(&mut r).await?;
        Some((Ok(event), r))
    })
}

/// The next event, or `None` once the server is shutting down.
async fn next_event(r: &mut Reader) -> Option<Event> {
    if *r.feed.closing.borrow() {
        return None;
    }
    if let Some(request) = r.backlog.pop() {
        return Some(request_event(&request));
    }
    loop {
        tokio::select! {
            biased;
            // An error: the flag's sender is gone with the server.
            _ = r.feed.closing.wait_for(|closing| *closing) => return None,
            got = r.feed.requests.recv() => match got {
                Ok(request) if wanted(r.client.as_deref(), &request) => return Some(request_event(&request)),
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    return Some(Event::default().event("lagged").data(format!("{{\"missed\":{missed}}}")));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

fn wanted(client: Option<&str>, request: &Arc<CapturedRequest>) -> bool {
    client.is_none_or(|c| request.client_id.as_deref() == Some(c))
}

fn request_event(request: &CapturedRequest) -> Event {
    // Serialising a struct of strings and numbers cannot fail; an empty
    // object stands in if it ever did.
    let data = serde_json::to_string(request).unwrap_or_else(|_| "{}".to_owned());
    Event::default()
        .id(request.id.to_string())
        .event("request")
        .data(data)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::sandbox::{RequestLog, FEED_CAPACITY};

    fn request(client: &str) -> CapturedRequest {
        CapturedRequest {
            id: 0,
            time: 0,
            dialect: "payvalida",
            client_id: Some(client.to_owned()),
            method: "POST".into(),
            path: "/oauth2/token".into(),
            query: None,
            headers: BTreeMap::new(),
            body: String::new(),
            outcome: "issued".into(),
            status: 200,
            fault: None,
        }
    }

    fn reader(log: &RequestLog, client: Option<&str>) -> Reader {
        let (feed, backlog) = log.subscribe(client, 10, 0);
        Reader {
            feed,
            backlog,
            client: client.map(str::to_owned),
        }
    }

    /// The next event's wire text (its `Debug` shows the encoded lines).
    async fn next_wire(r: &mut Reader) -> Option<String> {
        next_event(r).await.map(|e| format!("{e:?}"))
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_told_instead_of_queued_for() {
        let log = RequestLog::new(1000);
        let mut r = reader(&log, None);
        for _ in 0..FEED_CAPACITY + 10 {
            log.push(request("a"));
        }
        // The channel kept the last FEED_CAPACITY; the reader learns it
        // missed the rest, then reads on.
        let lagged = next_wire(&mut r).await.unwrap();
        assert!(
            lagged.contains("event: lagged\\ndata: {\\\"missed\\\":10}"),
            "{lagged}"
        );
        let next = next_wire(&mut r).await.unwrap();
        assert!(next.contains("id: 11\\nevent: request"), "{next}");
        assert_eq!(r.feed.requests.len(), FEED_CAPACITY - 1);
    }

    #[tokio::test]
    async fn a_reader_sees_its_backlog_its_client_only_and_ends_on_close() {
        let log = RequestLog::new(10);
        log.push(request("a"));
        log.push(request("b"));
        let mut r = reader(&log, Some("a"));
        assert!(r.backlog.len() == 1 && r.backlog[0].id == 1);
        assert!(next_event(&mut r).await.is_some());
        log.push(request("b"));
        log.push(request("a"));
        let next = next_wire(&mut r).await.unwrap();
        assert!(next.contains("id: 4\\n"), "{next}");
        let waiting = tokio::spawn(async move { next_event(&mut r).await.is_none() });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        log.close();
        assert!(waiting.await.unwrap(), "a waiting reader ended on close");
        let mut late = reader(&log, None);
        assert!(
            next_event(&mut late).await.is_none(),
            "a reader after close"
        );
    }
}
