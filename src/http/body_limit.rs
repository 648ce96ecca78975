//! How many bytes a request body may have: the declared `Content-Length` is checked
//! before anything is read, and every chunk is counted as it arrives (a chunked body
//! declares nothing). For multipart bodies the bytes the parser holds that are not yet
//! a field's data (part headers, boundaries, what it read ahead) are bounded too, since
//! it buffers a part's headers until their end, however long.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::HttpRequest;
use bytes::Bytes;
use futures_util::Stream;

use super::ApiError;

/// The most a multipart parser may hold beyond the field data taken from it: part
/// headers and boundaries are small, and actix hands it at most a few hundred KiB ahead.
const MAX_MULTIPART_AHEAD: u64 = 1024 * 1024;

/// Which limit a body went past.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exceeded {
    Total,
    Framing,
}

/// The byte budget of one request body, shared by the stream that counts what arrives
/// and the reader that takes field data out of it.
#[derive(Debug)]
pub struct Budget {
    max_total: u64,
    /// What `max_total` is made of, for the 413's detail.
    limit_words: String,
    received: Cell<u64>,
    taken: Cell<u64>,
    exceeded: Cell<Option<Exceeded>>,
}

impl Budget {
    /// At most `max_total` bytes; `limit_words` says where that number comes from.
    pub fn new(max_total: u64, limit_words: String) -> Rc<Budget> {
        Rc::new(Budget {
            max_total,
            limit_words,
            received: Cell::new(0),
            taken: Cell::new(0),
            exceeded: Cell::new(None),
        })
    }

    /// Refuses a body whose `Content-Length` is already too large, before reading it.
    pub fn check_declared(&self, request: &HttpRequest) -> Result<(), ApiError> {
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        match declared {
            Some(length) if length > self.max_total => {
                self.exceeded.set(Some(Exceeded::Total));
                Err(self.too_large())
            }
            _ => Ok(()),
        }
    }

    /// Field data taken out of a multipart body: it no longer counts as held ahead.
    pub fn taken(&self, bytes: usize) {
        self.taken.set(self.taken.get() + bytes as u64);
    }

    /// The 413 to answer once a limit was passed; `None` while none was.
    pub fn exceeded(&self) -> Option<ApiError> {
        self.exceeded.get().map(|_| self.too_large())
    }

    fn too_large(&self) -> ApiError {
        match self.exceeded.get() {
            Some(Exceeded::Framing) => ApiError::PayloadTooLarge(format!(
                "Multipart part headers and boundaries are larger than {} KiB",
                MAX_MULTIPART_AHEAD / 1024
            )),
            _ => ApiError::PayloadTooLarge(format!(
                "Request body is larger than {} bytes ({})",
                self.max_total, self.limit_words
            )),
        }
    }

    /// Counts a chunk that arrived; `false` once a limit is passed.
    fn receive(&self, bytes: usize, multipart: bool) -> bool {
        let received = self.received.get() + bytes as u64;
        self.received.set(received);
        if received > self.max_total {
            self.exceeded.set(Some(Exceeded::Total));
        } else if multipart && received - self.taken.get().min(received) > MAX_MULTIPART_AHEAD {
            self.exceeded.set(Some(Exceeded::Framing));
        }
        self.exceeded.get().is_none()
    }
}

/// A body stream that counts against a [`Budget`] and fails once it is spent, so the
/// reader stops there and the rest of the body is never read.
pub struct Limited<S> {
    inner: S,
    budget: Rc<Budget>,
    /// Whether the taker reports field data with [`Budget::taken`].
    multipart: bool,
    failed: bool,
}

impl<S> Limited<S> {
    pub fn new(inner: S, budget: Rc<Budget>, multipart: bool) -> Limited<S> {
        Limited {
            inner,
            budget,
            multipart,
            failed: false,
        }
    }
}

impl<S> Stream for Limited<S>
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin,
{
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            if !self.budget.receive(chunk.len(), self.multipart) {
                self.failed = true;
                return Poll::Ready(Some(Err(PayloadError::Overflow)));
            }
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{stream, StreamExt};

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, PayloadError>> + Unpin {
        stream::iter(
            sizes
                .iter()
                .map(|n| Ok(Bytes::from(vec![b'x'; *n])))
                .collect::<Vec<_>>(),
        )
    }

    fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
        actix_web::rt::System::new().block_on(future)
    }

    fn drain(stream: &mut (impl Stream<Item = Result<Bytes, PayloadError>> + Unpin)) -> u64 {
        block_on(async {
            let mut total = 0;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(c) => total += c.len() as u64,
                    Err(_) => return u64::MAX,
                }
            }
            total
        })
    }

    #[test]
    fn a_body_within_the_limit_passes_whole() {
        let budget = Budget::new(10, "test".into());
        let mut body = Limited::new(chunks(&[4, 6]), Rc::clone(&budget), false);
        assert_eq!(drain(&mut body), 10);
        assert!(budget.exceeded().is_none());
    }

    #[test]
    fn one_byte_more_fails_and_says_the_limit() {
        let budget = Budget::new(10, "the limit of a test".into());
        let mut body = Limited::new(chunks(&[4, 7, 100]), Rc::clone(&budget), false);
        assert_eq!(drain(&mut body), u64::MAX);
        let detail = budget.exceeded().unwrap().to_string();
        assert!(
            detail.contains("10 bytes (the limit of a test)"),
            "{detail}"
        );
    }

    #[test]
    fn multipart_framing_is_bounded_by_what_was_taken() {
        let budget = Budget::new(u64::MAX, "test".into());
        let mb = MAX_MULTIPART_AHEAD as usize;
        // Data taken as it comes keeps the parser's share small, however large the body.
        let mut taken = Limited::new(chunks(&[mb, mb, mb]), Rc::clone(&budget), true);
        let total = block_on(async {
            let mut total = 0;
            while let Some(Ok(chunk)) = taken.next().await {
                budget.taken(chunk.len());
                total += chunk.len();
            }
            total
        });
        assert_eq!(total, 3 * mb);
        // Held without being taken: a part header that never ends.
        let budget = Budget::new(u64::MAX, "test".into());
        let mut held = Limited::new(chunks(&[mb, 1]), Rc::clone(&budget), true);
        assert_eq!(drain(&mut held), u64::MAX);
        assert!(budget
            .exceeded()
            .unwrap()
            .to_string()
            .contains("part headers"));
    }
}
