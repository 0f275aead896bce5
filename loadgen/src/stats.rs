//! What one worker thread counts: latency histograms, successes, errors by kind. Each thread owns
//! its own (no lock, no atomic on the hot path); they are merged once, after the run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Highest latency a histogram holds (one hour, in nanoseconds); longer ones are clamped.
const MAX_LATENCY_NS: u64 = 3_600_000_000_000;
/// Significant decimal digits of the histograms (0.1% resolution).
const SIGFIG: u8 = 3;

/// A fresh latency histogram in nanoseconds.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, SIGFIG).expect("static histogram bounds")
}

/// What went wrong with one request or connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// TCP connect failed (refused, unreachable) or the server closed during start-up.
    Connect,
    /// TLS could not be negotiated (refused by the server, certificate, handshake).
    Tls,
    /// The server rejected the credentials (SQLSTATE class 28) or the exchange failed.
    Auth,
    /// The server answered with an error; PostgreSQL's SQLSTATE.
    Server([u8; 5]),
    /// The server sent something this client does not understand.
    Protocol,
    /// No answer within `--timeout`.
    Timeout,
    /// The connection broke mid-request (reset, closed).
    Io,
    /// An HTTP response with a 4xx or 5xx status; the status class (4 or 5).
    HttpStatus(u8),
}

impl ErrorKind {
    /// The label used in reports and JSON.
    pub fn label(&self) -> String {
        match self {
            ErrorKind::Connect => "connect".into(),
            ErrorKind::Tls => "tls".into(),
            ErrorKind::Auth => "auth".into(),
            ErrorKind::Server(code) => format!("server {}", String::from_utf8_lossy(code)),
            ErrorKind::Protocol => "protocol".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::Io => "io".into(),
            ErrorKind::HttpStatus(class) => format!("http {class}xx"),
        }
    }
}

/// What the connection task does after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// The connection is still in a known state: keep using it.
    Continue,
    /// Drop the connection and open a new one.
    Reconnect,
    /// Retrying cannot help (bad credentials, a statement that never prepares): stop this task.
    Stop,
}

/// A failed request or connection attempt.
#[derive(Debug, Clone)]
pub struct Failure {
    pub kind: ErrorKind,
    pub message: String,
    pub after: After,
}

impl Failure {
    pub fn new(kind: ErrorKind, message: impl Into<String>, after: After) -> Failure {
        Failure {
            kind,
            message: message.into(),
            after,
        }
    }
}

/// Counters and histograms of one thread, or of the whole run once merged.
pub struct Stats {
    /// From the intended send time (open loop) or the actual send (closed loop) to the answer.
    pub latency: Histogram<u64>,
    /// From the actual send to the answer; kept in open loop only, where it differs.
    pub service: Option<Histogram<u64>>,
    pub successes: u64,
    pub errors: BTreeMap<ErrorKind, u64>,
    /// The first message seen for each error kind.
    pub samples: BTreeMap<ErrorKind, String>,
    /// HTTP responses by status class (index 1 to 5).
    pub http_status: [u64; 6],
    /// DataRow messages received in counted PostgreSQL requests.
    pub rows: u64,
    /// Connections opened successfully, warm-up included.
    pub connections_opened: u64,
    /// Per-interval latency histograms for the HDR log, when one is asked for.
    pub intervals: Option<Intervals>,
    /// When this thread's last counted request ended.
    pub last_done: Option<Instant>,
    /// Open loop: the longest a request was sent after its connection was free and its time had
    /// come (timer granularity, a saturated generator thread).
    pub max_send_lag: Duration,
    /// Open loop bounded by time: requests the schedule called for in the measured window that
    /// were never sent, or still in flight at the end.
    pub unsent: u64,
}

impl Stats {
    pub fn new(open_loop: bool, interval: Option<(Instant, Duration)>) -> Stats {
        Stats {
            latency: histogram(),
            service: open_loop.then(histogram),
            successes: 0,
            errors: BTreeMap::new(),
            samples: BTreeMap::new(),
            http_status: [0; 6],
            rows: 0,
            connections_opened: 0,
            intervals: interval.map(|(origin, every)| Intervals::new(origin, every)),
            last_done: None,
            max_send_lag: Duration::ZERO,
            unsent: 0,
        }
    }

    /// Notes how late the generator sent a request.
    pub fn send_lag(&mut self, lag: Duration) {
        self.max_send_lag = self.max_send_lag.max(lag);
    }

    /// Records a successful request.
    pub fn success(&mut self, intended: Instant, sent: Instant, done: Instant) {
        self.successes += 1;
        let latency = nanos(done.saturating_duration_since(intended));
        self.latency.saturating_record(latency);
        if let Some(service) = &mut self.service {
            service.saturating_record(nanos(done.saturating_duration_since(sent)));
        }
        if let Some(intervals) = &mut self.intervals {
            intervals.record(done, latency);
        }
        self.done(done);
    }

    /// Records a failure, keeping its message if it is the first of its kind.
    pub fn error(&mut self, failure: &Failure, done: Instant) {
        *self.errors.entry(failure.kind).or_insert(0) += 1;
        self.samples
            .entry(failure.kind)
            .or_insert_with(|| failure.message.clone());
        self.done(done);
    }

    /// Counts an HTTP status; 4xx and 5xx are not successes.
    pub fn http_status(&mut self, status: u16) {
        let class = usize::from(status / 100).min(5);
        self.http_status[class] += 1;
    }

    fn done(&mut self, at: Instant) {
        if self.last_done.is_none_or(|t| at > t) {
            self.last_done = Some(at);
        }
    }

    /// Errors of every kind.
    pub fn error_total(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Folds another thread's numbers into these.
    pub fn merge(&mut self, other: Stats) {
        let _ = self.latency.add(&other.latency);
        if let (Some(mine), Some(theirs)) = (&mut self.service, &other.service) {
            let _ = mine.add(theirs);
        }
        self.successes += other.successes;
        for (kind, n) in other.errors {
            *self.errors.entry(kind).or_insert(0) += n;
        }
        for (kind, message) in other.samples {
            self.samples.entry(kind).or_insert(message);
        }
        for (mine, theirs) in self.http_status.iter_mut().zip(other.http_status) {
            *mine += theirs;
        }
        self.rows += other.rows;
        self.connections_opened += other.connections_opened;
        if let (Some(mine), Some(theirs)) = (&mut self.intervals, other.intervals) {
            mine.merge(theirs);
        }
        if let Some(t) = other.last_done {
            self.done(t);
        }
        self.max_send_lag = self.max_send_lag.max(other.max_send_lag);
        self.unsent += other.unsent;
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Latency histograms per fixed interval since the start of measurement, for `--hdr-log`.
pub struct Intervals {
    origin: Instant,
    every: Duration,
    current: Option<(u64, Histogram<u64>)>,
    /// Finished intervals by index, each with its histogram.
    pub done: BTreeMap<u64, Histogram<u64>>,
}

impl Intervals {
    fn new(origin: Instant, every: Duration) -> Intervals {
        Intervals {
            origin,
            every,
            current: None,
            done: BTreeMap::new(),
        }
    }

    fn record(&mut self, at: Instant, value: u64) {
        let index = (at.saturating_duration_since(self.origin).as_nanos()
            / self.every.as_nanos().max(1)) as u64;
        match &mut self.current {
            Some((i, h)) if *i == index => {
                h.saturating_record(value);
                return;
            }
            _ => {}
        }
        self.flush();
        let mut h = histogram();
        h.saturating_record(value);
        self.current = Some((index, h));
    }

    fn flush(&mut self) {
        if let Some((i, h)) = self.current.take() {
            match self.done.get_mut(&i) {
                Some(existing) => {
                    let _ = existing.add(&h);
                }
                None => {
                    self.done.insert(i, h);
                }
            }
        }
    }

    fn merge(&mut self, mut other: Intervals) {
        self.flush();
        other.flush();
        for (i, h) in other.done {
            match self.done.get_mut(&i) {
                Some(existing) => {
                    let _ = existing.add(&h);
                }
                None => {
                    self.done.insert(i, h);
                }
            }
        }
    }

    /// All intervals, finished or not, in order; consumes the recorder.
    pub fn finish(mut self) -> (Duration, BTreeMap<u64, Histogram<u64>>) {
        self.flush();
        (self.every, self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_adds_counts_histograms_and_intervals() {
        let origin = Instant::now();
        let every = Duration::from_secs(1);
        let mut a = Stats::new(true, Some((origin, every)));
        let mut b = Stats::new(true, Some((origin, every)));
        a.success(origin, origin, origin + Duration::from_millis(2));
        b.success(origin, origin, origin + Duration::from_millis(1500));
        b.error(
            &Failure::new(ErrorKind::Server(*b"42P01"), "nope", After::Continue),
            origin,
        );
        b.http_status(404);
        a.merge(b);
        assert_eq!(a.successes, 2);
        assert_eq!(a.latency.len(), 2);
        assert_eq!(a.service.as_ref().map(|h| h.len()), Some(2));
        assert_eq!(a.errors.get(&ErrorKind::Server(*b"42P01")), Some(&1));
        assert_eq!(a.http_status[4], 1);
        let (_, intervals) = a.intervals.take().unwrap().finish();
        assert_eq!(intervals.keys().copied().collect::<Vec<_>>(), vec![0, 1]);
    }

    #[test]
    fn latency_is_measured_from_the_intended_time() {
        let t = Instant::now();
        let mut s = Stats::new(true, None);
        // Intended 10 ms before it could be sent, answered 1 ms after sending.
        s.success(
            t,
            t + Duration::from_millis(10),
            t + Duration::from_millis(11),
        );
        let lat = s.latency.max();
        let svc = s.service.unwrap().max();
        assert!((10_990_000..=11_020_000).contains(&lat), "{lat}");
        assert!((990_000..=1_002_000).contains(&svc), "{svc}");
    }
}
