//! The rate limit of the control routes (`RATE_LIMIT_PER_MINUTE`): each client may
//! send that many control requests per minute, in a burst or spread out, and is
//! answered 429 with `Retry-After` past it. A client is the API key it presents
//! (`Authorization: Bearer`, `X-API-Key`), kept only as a keyed hash, else its IP
//! address (an IPv6 client by its /64, which one host usually holds whole). Reads are
//! never limited here: status polling must go on whatever a controller does.

use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap};
use actix_web::middleware::Next;
use actix_web::web;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::ApiError;

/// Clients tracked at most (a few MiB); past it, new requests share one allowance
/// until the quiet clients are forgotten.
const MAX_CLIENTS: usize = 100_000;
/// How often clients whose allowance is whole again are forgotten.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);
/// While the table is full, it is swept at most this often.
const FULL_SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Who a control request counts for.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Client {
    /// A keyed hash of the presented API key or token: the key itself is not kept.
    Key(u64),
    /// The peer address; IPv6 cut to its /64.
    Address(IpAddr),
    /// No address known, or the table was full: one shared allowance.
    Shared,
}

/// The limiter shared by all workers.
pub struct ControlRateLimit {
    limiter: DefaultKeyedRateLimiter<Client>,
    per_minute: NonZeroU32,
    /// Random per process, so that a stored hash says nothing outside it.
    hasher: RandomState,
    last_sweep: Mutex<Instant>,
    max_clients: usize,
}

impl ControlRateLimit {
    pub fn new(per_minute: NonZeroU32) -> ControlRateLimit {
        ControlRateLimit::with_max_clients(per_minute, MAX_CLIENTS)
    }

    fn with_max_clients(per_minute: NonZeroU32, max_clients: usize) -> ControlRateLimit {
        ControlRateLimit {
            limiter: RateLimiter::keyed(Quota::per_minute(per_minute)),
            per_minute,
            hasher: RandomState::new(),
            last_sweep: Mutex::new(Instant::now()),
            max_clients,
        }
    }

    /// The client a request counts for: its API key, else its address.
    pub fn client(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Client {
        if let Some(key) = presented_key(headers) {
            return Client::Key(self.hasher.hash_one(key));
        }
        match peer {
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => Client::Address(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    let prefix = [s[0], s[1], s[2], s[3], 0, 0, 0, 0];
                    Client::Address(IpAddr::from(prefix))
                }
            },
            Some(v4) => Client::Address(v4),
            None => Client::Shared,
        }
    }

    /// Counts one request of `client`; `Err` with how long until the next one is allowed.
    pub fn check(&self, client: Client) -> Result<(), Duration> {
        let client = self.bounded(client);
        self.limiter
            .check_key(&client)
            .map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// The client itself while the table has room, else the shared allowance. Clients
    /// whose allowance is whole again are forgotten every minute, or at once when full.
    fn bounded(&self, client: Client) -> Client {
        let full = self.limiter.len() >= self.max_clients;
        let due = if full {
            FULL_SWEEP_INTERVAL
        } else {
            SWEEP_INTERVAL
        };
        if let Ok(mut last) = self.last_sweep.try_lock() {
            if last.elapsed() >= due {
                *last = Instant::now();
                self.limiter.retain_recent();
                self.limiter.shrink_to_fit();
            }
        }
        if self.limiter.len() >= self.max_clients {
            Client::Shared
        } else {
            client
        }
    }

    fn refusal(&self, wait: Duration) -> ApiError {
        // Whole seconds, rounded up: a client that waits that long is let through.
        let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::TooManyRequests {
            detail: format!(
                "Too many control requests: at most {} per minute per client \
                 (RATE_LIMIT_PER_MINUTE); retry in {} s",
                self.per_minute,
                seconds.max(1)
            ),
            retry_after: Some(seconds.max(1)),
        }
    }
}

/// The API key or token a request presents, if any.
fn presented_key(headers: &HeaderMap) -> Option<&[u8]> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .and_then(|v| {
            let (scheme, token) = v.split_at(v.iter().position(|b| *b == b' ')?);
            scheme
                .eq_ignore_ascii_case(b"bearer")
                .then(|| token.trim_ascii())
        });
    bearer
        .or_else(|| headers.get("x-api-key").map(|v| v.as_bytes().trim_ascii()))
        .filter(|key| !key.is_empty())
}

/// The middleware of each control route: counts the request, or answers 429 without
/// calling the handler. Does nothing when no limit is configured.
pub async fn control(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(limit) = request.app_data::<web::Data<ControlRateLimit>>() {
        let peer = request.peer_addr().map(|a| a.ip());
        let client = limit.client(request.headers(), peer);
        if let Err(wait) = limit.check(client) {
            return Err(limit.refusal(wait).into());
        }
    }
    next.call(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn limit(per_minute: u32) -> ControlRateLimit {
        ControlRateLimit::new(NonZeroU32::new(per_minute).unwrap())
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                header::HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    #[test]
    fn a_client_gets_its_burst_then_waits_for_the_next_share_of_the_minute() {
        let limit = limit(3);
        let client = Client::Address("10.0.0.1".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(limit.check(client.clone()), Ok(()));
        }
        let wait = limit.check(client).unwrap_err();
        assert!(
            wait > Duration::from_secs(19) && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        let other = Client::Address("10.0.0.2".parse().unwrap());
        assert_eq!(limit.check(other), Ok(()));
    }

    #[test]
    fn the_refusal_says_the_limit_and_rounds_the_wait_up() {
        let refusal = limit(6).refusal(Duration::from_millis(9_200));
        let ApiError::TooManyRequests {
            detail,
            retry_after,
        } = refusal
        else {
            panic!("not 429");
        };
        assert_eq!(retry_after, Some(10));
        assert!(detail.contains("6 per minute") && detail.contains("RATE_LIMIT_PER_MINUTE"));
    }

    #[test]
    fn clients_are_their_key_else_their_address() {
        let limit = limit(1);
        let address: IpAddr = "192.0.2.7".parse().unwrap();
        let peer = Some(address);
        let bearer = limit.client(&headers(&[("authorization", "Bearer k1")]), peer);
        let x_key = limit.client(&headers(&[("x-api-key", "k1")]), peer);
        let lower = limit.client(&headers(&[("authorization", "bearer  k1 ")]), peer);
        assert!(matches!(bearer, Client::Key(_)));
        assert_eq!(bearer, x_key);
        assert_eq!(bearer, lower);
        let other = limit.client(&headers(&[("x-api-key", "k2")]), peer);
        assert_ne!(bearer, other);
        // Basic credentials or an empty key are no API key: the address counts.
        let basic = limit.client(&headers(&[("authorization", "Basic dTpw")]), peer);
        let empty = limit.client(&headers(&[("x-api-key", " ")]), peer);
        assert_eq!(basic, Client::Address(address));
        assert_eq!(empty, Client::Address(address));
        let none = HeaderMap::new();
        let v6 = limit.client(&none, Some("2001:db8:1:2:3:4:5:6".parse().unwrap()));
        let same_64 = limit.client(&none, Some("2001:db8:1:2:ffff::1".parse().unwrap()));
        assert_eq!(v6, same_64);
        assert_eq!(v6, Client::Address("2001:db8:1:2::".parse().unwrap()));
        let mapped = limit.client(&none, Some("::ffff:192.0.2.7".parse().unwrap()));
        assert_eq!(mapped, Client::Address(address));
        assert_eq!(limit.client(&none, None), Client::Shared);
    }

    #[test]
    fn a_full_table_shares_one_allowance() {
        let limit = ControlRateLimit::with_max_clients(NonZeroU32::new(2).unwrap(), 2);
        let address = |n: u8| Client::Address(IpAddr::from([10, 0, 0, n]));
        assert_eq!(limit.check(address(1)), Ok(()));
        assert_eq!(limit.check(address(2)), Ok(()));
        // Both are still within their minute: the table stays full.
        assert_eq!(limit.check(address(3)), Ok(()));
        assert_eq!(limit.check(address(4)), Ok(()));
        assert!(limit.check(address(5)).is_err());
        assert!(limit.limiter.len() <= 3);
    }
}
