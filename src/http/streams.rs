//! The live event streams: `events/` (Server-Sent Events) and `ws/` (WebSocket), both
//! carrying the feed's events as JSON (`live_events.rs`).

use std::collections::HashSet;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::{web, HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse;
use actix_ws::{Message, MessageStream, Session};
use futures_util::{Stream, StreamExt};

use super::connection::event_socket;
use super::event_feed::{Filter, Subscription};
use super::live_events::WireEvent;
use super::routes::parse_flag;
use super::{ApiError, AppState};
use crate::source::CameraId;

/// How often an idle SSE stream sends a comment and a WebSocket a ping, so that
/// proxies keep the connection and a dead peer is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// A WebSocket client silent this long (no pong, no message) is gone.
const SILENCE_LIMIT: Duration = Duration::from_secs(45);

/// What a client asked for in the query string.
struct StreamQuery {
    filter: Filter,
    last_event_id: Option<u64>,
}

impl StreamQuery {
    fn parse(request: &HttpRequest) -> Result<StreamQuery, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(request.query_string())
            .map_err(|e| ApiError::Unprocessable(format!("Invalid query string: {e}")))?;
        let mut cameras = HashSet::new();
        let mut frames = None;
        let mut last_event_id = None;
        for (key, value) in &pairs {
            match key.as_str() {
                "camera_id" => {
                    let id =
                        CameraId::parse(value).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                    cameras.insert(id);
                }
                "frames" => frames = Some(value.as_str()),
                "last_event_id" => last_event_id = Some(event_id(value)?),
                _ => {}
            }
        }
        Ok(StreamQuery {
            filter: Filter {
                cameras: (!cameras.is_empty()).then_some(cameras),
                frames: parse_flag(frames, "frames")?,
            },
            last_event_id,
        })
    }
}

fn event_id(value: &str) -> Result<u64, ApiError> {
    value.trim().parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "Invalid event id {value:?} (expected a whole number)"
        ))
    })
}

/// The subscription's replay, then its live events; ends when the feed drops it.
fn events_of(mut subscription: Subscription) -> impl Stream<Item = Arc<WireEvent>> {
    let replay = std::mem::take(&mut subscription.replay);
    futures_util::stream::iter(replay).chain(futures_util::stream::unfold(
        subscription,
        |mut subscription| async move {
            let event = subscription.live.recv().await?;
            Some((event, subscription))
        },
    ))
}

/// `GET events/`: Server-Sent Events; `Last-Event-ID` (or `?last_event_id=`) replays
/// what the feed still holds after that id.
pub async fn events(
    state: web::Data<AppState>,
    request: HttpRequest,
) -> Result<impl Responder, ApiError> {
    let query = StreamQuery::parse(&request)?;
    let header = request
        .headers()
        .get("Last-Event-ID")
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::BadRequest("Invalid Last-Event-ID".into()))
        })
        .transpose()?;
    let after = match header {
        Some(value) => Some(event_id(value)?),
        None => query.last_event_id,
    };
    let subscription = state
        .events
        .subscribe(query.filter, after, event_socket(&request));
    let stream = events_of(subscription).map(|event| {
        sse::Event::Data(
            sse::Data::new(event.json.to_string())
                .id(event.id.to_string())
                .event(event.kind),
        )
    });
    Ok(sse::Sse::from_infallible_stream(stream)
        .with_keep_alive(KEEP_ALIVE)
        .customize()
        // nginx buffers responses unless told not to.
        .insert_header(("X-Accel-Buffering", "no")))
}

/// `GET ws/`: the same events, one text message each; `?last_event_id=` replays.
pub async fn ws(
    state: web::Data<AppState>,
    request: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let query = StreamQuery::parse(&request)?;
    let (response, session, messages) = actix_ws::handle(&request, body)
        .map_err(|e| ApiError::BadRequest(format!("Not a WebSocket handshake: {e}")))?;
    let subscription =
        state
            .events
            .subscribe(query.filter, query.last_event_id, event_socket(&request));
    actix_web::rt::spawn(serve_socket(subscription, session, messages));
    Ok(response)
}

/// Sends the events, answers pings, pings an idle client, and ends with the client,
/// the feed's disconnect or a client gone silent.
async fn serve_socket(
    subscription: Subscription,
    mut session: Session,
    mut messages: MessageStream,
) {
    let mut events = pin!(events_of(subscription));
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.tick().await;
    let mut heard = Instant::now();
    let reason = loop {
        tokio::select! {
            event = events.next() => match event {
                Some(event) => {
                    if session.text(event.json.to_string()).await.is_err() {
                        return;
                    }
                }
                None => break None,
            },
            message = messages.recv() => match message {
                Some(Ok(Message::Ping(bytes))) => {
                    heard = Instant::now();
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(reason))) => break reason,
                Some(Ok(_)) => heard = Instant::now(),
                Some(Err(_)) | None => return,
            },
            _ = keep_alive.tick() => {
                if heard.elapsed() > SILENCE_LIMIT {
                    break None;
                }
                if session.ping(b"").await.is_err() {
                    return;
                }
            }
        }
    };
    let _ = session.close(reason).await;
}
