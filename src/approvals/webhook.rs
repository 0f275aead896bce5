//! Telling a chat bot or ticket system of each new approval request: an HTTP POST of the
//! request as JSON to a configured URL, retried with a doubling pause, off the shard threads.

use std::path::PathBuf;
use std::time::Duration;

use tracing::{info, warn};

use super::Approvals;
use crate::http_client::{Client, Request, Url};

/// The configured webhook, or none.
#[derive(Debug, Clone, Default)]
pub struct Webhook {
    target: Option<(Url, Option<PathBuf>)>,
    attempts: u32,
}

impl Webhook {
    /// A webhook posting to `url` (`https://`, or `http://` to a loopback address).
    pub fn new(
        url: Option<&str>,
        ca_file: Option<PathBuf>,
        attempts: u32,
    ) -> Result<Webhook, String> {
        let target = match url {
            Some(u) => Some((Url::parse(u).map_err(|e| e.to_string())?, ca_file)),
            None => None,
        };
        Ok(Webhook {
            target,
            attempts: attempts.max(1),
        })
    }

    /// Posts request `id` from a thread of its own; never blocks the caller.
    pub fn notify(&self, approvals: &Approvals, id: &str) {
        let Some((url, ca)) = self.target.clone() else {
            return;
        };
        let Some(request) = approvals.get(id) else {
            return;
        };
        let Ok(body) = serde_json::to_vec(&serde_json::json!({ "approval": request })) else {
            return;
        };
        let attempts = self.attempts;
        let id = id.to_owned();
        let spawned = std::thread::Builder::new()
            .name("sluice-webhook".into())
            .spawn(move || post(&url, ca.as_deref(), &body, attempts, &id));
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the approval webhook thread");
        }
    }
}

fn post(url: &Url, ca: Option<&std::path::Path>, body: &[u8], attempts: u32, id: &str) {
    let client = match Client::new(ca) {
        Ok(mut c) => {
            c.plaintext_loopback_only = true;
            c
        }
        Err(e) => return warn!(error = %e, "approval webhook: no client"),
    };
    let headers = [("Content-Type", "application/json")];
    let mut pause = Duration::from_secs(1);
    for attempt in 1..=attempts {
        let req = Request {
            method: "POST",
            url,
            headers: &headers,
            body,
        };
        match client.send(&req) {
            Ok(r) if (200..300).contains(&r.status) => {
                return info!(id, attempt, "approval webhook delivered");
            }
            Ok(r) => warn!(id, attempt, status = r.status, "approval webhook refused"),
            Err(e) => warn!(id, attempt, error = %e, "approval webhook failed"),
        }
        if attempt < attempts {
            std::thread::sleep(pause);
            pause *= 2;
        }
    }
    warn!(id, attempts, "approval webhook gave up");
}
