//! After the number of replicas changed, the cameras in this replica's state file that
//! another replica owns now are handed over: each saved request is sent to its
//! owner's `decode/` (an upload with its file), marked as a hand-over so that the owner
//! continues the camera's numbering. Until the owner has taken it, the camera stays in
//! the state file (a restart tries again); a replica that cannot be reached, or is not
//! yet of the same mind about who owns what (a rolling restart), is asked again after
//! a delay that doubles up to 30 s, for as long as this daemon runs. A request the
//! owner refuses as invalid (400, 413, 422) is dropped, with its reason logged.

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;

use super::forward;
use crate::camera::backoff::Backoff;
use crate::camera::{StartRequest, Supervisor};
use crate::shard::Shard;

const FIRST_RETRY: Duration = Duration::from_millis(500);
const LAST_RETRY: Duration = Duration::from_secs(30);
/// A failing hand-over is logged as a warning at its first failure and then at every
/// this many; the attempts in between at debug level.
const WARN_EVERY: u32 = 10;

/// Starts the `handoff` thread for `requests` (none: nothing is started).
pub fn spawn(supervisor: Arc<Supervisor>, requests: Vec<StartRequest>) -> std::io::Result<()> {
    let Some(shard) = supervisor.config().shard.clone() else {
        return Ok(());
    };
    if requests.is_empty() {
        return Ok(());
    }
    std::thread::Builder::new()
        .name("handoff".into())
        .spawn(move || {
            actix_web::rt::System::new().block_on(async {
                let each = requests
                    .iter()
                    .map(|request| hand_over(&supervisor, &shard, request));
                futures_util::future::join_all(each).await;
            });
            log::info!("every saved camera that another replica owns was handed over");
        })
        .map(drop)
}

/// Asks the owner until it has taken the camera or refused it.
async fn hand_over(supervisor: &Supervisor, shard: &Shard, request: &StartRequest) {
    let id = request.fields.get("camera_id").map_or("", String::as_str);
    let owner = shard.owner(id);
    let fields: Vec<(&str, &str)> = request
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut backoff = Backoff::new(FIRST_RETRY, LAST_RETRY);
    let mut failures: u32 = 0;
    loop {
        let credential = supervisor.config().peer_credential.as_ref();
        let upload = request.upload.as_deref();
        let why = match forward::hand_over(shard, credential, owner, &fields, upload).await {
            Ok((status, _)) if status.is_success() => {
                log::info!(camera = id; "handed over to replica {owner}");
                if let Some(upload) = &request.upload {
                    let _ = tokio::fs::remove_file(upload).await;
                }
                supervisor.handed_off(request);
                return;
            }
            Ok((status, body)) if refused(status) => {
                log::error!(
                    camera = id;
                    "replica {owner} refused the camera ({status}: {}); it is dropped",
                    String::from_utf8_lossy(&body)
                );
                supervisor.handed_off(request);
                return;
            }
            Ok((status, body)) => format!("answered {status}: {}", String::from_utf8_lossy(&body)),
            Err(e) => format!("cannot be reached: {e}"),
        };
        let delay = backoff.next_delay(rand::random());
        failures += 1;
        if failures == 1 || failures.is_multiple_of(WARN_EVERY) {
            log::warn!(
                camera = id;
                "cannot hand over to replica {owner} ({}): {why}; trying again in {delay:.1?} (attempt {failures})",
                shard.peer_url(owner)
            );
        } else {
            log::debug!(camera = id; "cannot hand over to replica {owner}: {why}");
        }
        actix_web::rt::time::sleep(delay).await;
    }
}

/// An answer that asking again cannot change: the request itself is not valid there.
fn refused(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNPROCESSABLE_ENTITY
    )
}
