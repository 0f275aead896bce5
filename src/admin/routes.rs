//! What each admin path serves. Pure: the server collects the shards' snapshots and hands
//! them here.

use std::sync::Arc;

use super::http::Response;
use crate::audit::AuditCounters;
use crate::metrics::{prometheus, ShardSnapshot, StatsReport};

/// An endpoint that needs the shards' snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /metrics`: Prometheus text exposition.
    Metrics,
    /// `GET /v1/stats`: the JSON report, per shard and merged.
    Stats,
}

/// The endpoint for a request and whether it is a HEAD, or the response refusing it.
pub fn route(method: &str, path: &str) -> Result<(Endpoint, bool), Response> {
    let endpoint = match path {
        "/metrics" => Endpoint::Metrics,
        "/v1/stats" => Endpoint::Stats,
        _ => return Err(Response::error(404, "no such endpoint")),
    };
    match method {
        "GET" => Ok((endpoint, false)),
        "HEAD" => Ok((endpoint, true)),
        _ => {
            let mut r = Response::error(405, "use GET");
            r.headers.push("Allow: GET, HEAD".into());
            Err(r)
        }
    }
}

/// The response of `endpoint` from the shards' answers (`None`: a shard that did not answer).
pub fn render(
    endpoint: Endpoint,
    answers: &[Option<Arc<ShardSnapshot>>],
    audit: Option<&AuditCounters>,
    recording: Option<&crate::record::RecordCounters>,
) -> Response {
    match endpoint {
        Endpoint::Metrics => {
            let mut text = prometheus::render(answers);
            if let Some(counters) = audit {
                crate::audit::prometheus::render(counters, &mut text);
            }
            if let Some(counters) = recording {
                crate::record::prometheus::render(counters, &mut text);
            }
            Response::new(200, prometheus::CONTENT_TYPE, text)
        }
        Endpoint::Stats => match serde_json::to_vec_pretty(&StatsReport::build(answers)) {
            Ok(mut body) => {
                body.push(b'\n');
                Response::new(200, "application/json", body)
            }
            Err(_) => Response::error(500, "could not encode the report"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_known_paths_and_methods_only() {
        assert_eq!(
            route("GET", "/metrics").unwrap(),
            (Endpoint::Metrics, false)
        );
        assert_eq!(route("HEAD", "/v1/stats").unwrap(), (Endpoint::Stats, true));
        assert_eq!(route("GET", "/metrics/").unwrap_err().status, 404);
        assert_eq!(route("GET", "/").unwrap_err().status, 404);
        let r = route("POST", "/metrics").unwrap_err();
        assert_eq!(r.status, 405);
        assert_eq!(r.headers, vec!["Allow: GET, HEAD".to_string()]);
    }

    #[test]
    fn stats_report_round_trips_through_json() {
        let m = crate::metrics::ShardMetrics::default();
        m.add(crate::metrics::Counter::Requests, 4);
        let answers = [Some(Arc::new(m.snapshot(0, 1)))];
        let r = render(Endpoint::Stats, &answers, None, None);
        let report: StatsReport = serde_json::from_slice(&r.body).unwrap();
        assert_eq!(report, StatsReport::build(&answers));
        assert_eq!(report.total.requests, 4);
    }
}
