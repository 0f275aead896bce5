//! Runs a load plan: worker threads, each with its own monoio runtime and one task per
//! connection; closed or open loop; bounded by time and/or request count; warm-up not counted.
//!
//! Open loop follows wrk2: every connection has a schedule of intended send times, and a request
//! that could not be sent on time because its connection was still busy with the previous one is
//! charged for the wait, so a stalled server is charged for the requests it kept from being sent
//! (coordinated omission corrected). The generator's own lateness (monoio's timer wakes up to
//! 2 ms late) is not charged to the server: it is reported apart, as the largest send lag.
//! Service time (from the actual send) is kept beside it.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Barrier, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use monoio::time::TimeDriver;
use monoio::{FusionDriver, FusionRuntime, RuntimeBuilder};

use crate::rng::Rng;
use crate::stats::{After, ErrorKind, Failure, Stats};

/// Pause before the first reconnect attempt after a failure; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_millis(500);
/// How long closing a connection at the end may take before it is abandoned.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub connections: usize,
    pub threads: usize,
    /// Measured duration (after warm-up); `None` when bounded by requests only.
    pub duration: Option<Duration>,
    /// Counted requests in total; `None` when bounded by time only.
    pub requests: Option<u64>,
    pub warmup: Duration,
    /// Open loop: total requests per second over all connections.
    pub rate: Option<f64>,
    /// Limit on one request.
    pub timeout: Duration,
    /// Limit on one connection set-up (TCP, TLS, authentication, Parse).
    pub connect_timeout: Duration,
    /// Open and close a connection around every request.
    pub per_request: bool,
    /// Pin each worker thread to a core of its own.
    pub pin: bool,
    /// Interval of the HDR log, if one is written.
    pub hdr_interval: Option<Duration>,
    pub seed: u64,
}

/// A target description that can be shared by the worker threads.
pub trait Target: Send + Sync + 'static {
    type Client: Client;
    /// The per-thread client (it may hold `!Send` state such as a TLS session cache).
    fn client(&self) -> Self::Client;
}

/// What a worker thread uses to open connections and run requests on them.
#[allow(async_fn_in_trait)]
pub trait Client: 'static {
    type Conn: 'static;
    /// Opens and prepares one connection (TCP, TLS, authentication, prepared statements).
    async fn connect(&self) -> Result<Self::Conn, Failure>;
    /// Runs one request (one transaction, one HTTP exchange).
    async fn request(&self, conn: &mut Self::Conn, rng: &mut Rng) -> Result<Reply, Failure>;
    /// Closes a connection politely.
    async fn close(&self, conn: Self::Conn);
}

/// A successful exchange.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reply {
    /// HTTP status, if the protocol has one.
    pub status: Option<u16>,
    /// Rows received (PostgreSQL).
    pub rows: u64,
    /// False when the server ended the connection after this reply.
    pub closed: bool,
}

/// The merged result of a run.
pub struct Outcome {
    pub stats: Stats,
    /// Measured time: from the end of warm-up to the end of the last counted request (or the end
    /// of the duration).
    pub elapsed: Duration,
    /// Which monoio driver the workers ran on.
    pub driver: &'static str,
    /// When counting began.
    pub measure_start: Instant,
}

/// The schedule every connection task of a thread shares.
struct Ctx {
    start: Instant,
    measure_start: Instant,
    end: Option<Instant>,
    timeout: Duration,
    connect_timeout: Duration,
    per_request: bool,
    /// Open loop: time between two sends of one connection.
    interval: Option<Duration>,
    seed: u64,
}

/// One connection's part of the plan.
#[derive(Debug, Clone, Copy)]
struct Slot {
    index: usize,
    /// Counted requests this connection sends, when bounded by requests.
    share: Option<u64>,
    /// Open loop: offset of its first send from the start.
    offset: Duration,
}

/// Runs `plan` against `target` and merges what every thread counted.
pub fn run<T: Target>(plan: &Plan, target: Arc<T>) -> anyhow::Result<Outcome> {
    let connections = plan.connections.max(1);
    let threads = plan.threads.clamp(1, connections);
    let slots: Vec<Slot> = (0..connections)
        .map(|index| Slot {
            index,
            share: plan.requests.map(|n| {
                let c = connections as u64;
                n / c + u64::from((index as u64) < n % c)
            }),
            offset: plan
                .rate
                .map(|r| Duration::from_secs_f64(index as f64 / r))
                .unwrap_or_default(),
        })
        .collect();
    let cores = if plan.pin {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    let barrier = Arc::new(Barrier::new(threads + 1));
    let start_cell: Arc<OnceLock<Instant>> = Arc::new(OnceLock::new());
    let mut handles = Vec::with_capacity(threads);
    for t in 0..threads {
        let mine: Vec<Slot> = slots
            .iter()
            .copied()
            .filter(|s| s.index % threads == t)
            .collect();
        let (plan, target, barrier, start_cell) = (
            plan.clone(),
            target.clone(),
            barrier.clone(),
            start_cell.clone(),
        );
        let core = (!cores.is_empty()).then(|| cores[t % cores.len()]);
        let handle = thread::Builder::new()
            .name(format!("loadgen-{t}"))
            .spawn(move || {
                // Pinning is a request, not a requirement: a refused pin leaves the thread free.
                if let Some(core) = core {
                    let _ = core_affinity::set_for_current(core);
                }
                worker_thread(plan, target, mine, barrier, start_cell)
            })
            .map_err(|e| anyhow::anyhow!("cannot start worker thread: {e}"))?;
        handles.push(handle);
    }
    // Every thread has made its connections: start the clock for all at once.
    barrier.wait();
    let start = Instant::now() + Duration::from_millis(2);
    let _ = start_cell.set(start);
    barrier.wait();

    let mut merged: Option<Stats> = None;
    let mut driver = "io_uring";
    let mut failure = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok((stats, d))) => {
                driver = d;
                match &mut merged {
                    Some(m) => m.merge(stats),
                    None => merged = Some(stats),
                }
            }
            Ok(Err(e)) => failure = Some(e),
            Err(_) => failure = Some(anyhow::anyhow!("a worker thread panicked")),
        }
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let stats = merged.ok_or_else(|| anyhow::anyhow!("no worker thread ran"))?;
    let measure_start = start + plan.warmup;
    let finished = match (plan.duration, stats.last_done) {
        (Some(d), _) => Instant::now().min(measure_start + d),
        (None, Some(last)) => last,
        (None, None) => Instant::now(),
    };
    Ok(Outcome {
        elapsed: finished.saturating_duration_since(measure_start),
        stats,
        driver,
        measure_start,
    })
}

type ThreadResult = anyhow::Result<(Stats, &'static str)>;

fn worker_thread<T: Target>(
    plan: Plan,
    target: Arc<T>,
    slots: Vec<Slot>,
    barrier: Arc<Barrier>,
    start_cell: Arc<OnceLock<Instant>>,
) -> ThreadResult {
    let runtime = match build_runtime() {
        Ok(rt) => rt,
        Err(e) => {
            // Still take part in both barriers, or the others would wait forever.
            barrier.wait();
            barrier.wait();
            return Err(anyhow::anyhow!("cannot build the I/O runtime: {e}"));
        }
    };
    let client = Rc::new(target.client());
    match runtime {
        FusionRuntime::Uring(mut rt) => Ok((
            rt.block_on(worker(plan, client, slots, barrier, start_cell)),
            "io_uring",
        )),
        FusionRuntime::Legacy(mut rt) => Ok((
            rt.block_on(worker(plan, client, slots, barrier, start_cell)),
            "epoll",
        )),
    }
}

/// io_uring with cooperative task running where the kernel has it, plain io_uring otherwise, and
/// epoll where io_uring is not allowed (or `MONOIO_FORCE_LEGACY_DRIVER=1`).
fn build_runtime() -> std::io::Result<
    FusionRuntime<TimeDriver<monoio::IoUringDriver>, TimeDriver<monoio::LegacyDriver>>,
> {
    let mut urb = io_uring::IoUring::builder();
    urb.setup_coop_taskrun()
        .setup_taskrun_flag()
        .setup_single_issuer();
    RuntimeBuilder::<FusionDriver>::new()
        .enable_timer()
        .with_entries(1024)
        .uring_builder(urb)
        .build()
        .or_else(|_| {
            RuntimeBuilder::<FusionDriver>::new()
                .enable_timer()
                .with_entries(1024)
                .build()
        })
}

async fn worker<C: Client>(
    plan: Plan,
    client: Rc<C>,
    slots: Vec<Slot>,
    barrier: Arc<Barrier>,
    start_cell: Arc<OnceLock<Instant>>,
) -> Stats {
    // Persistent connections are opened before the clock starts.
    let mut initial: Vec<Result<Option<C::Conn>, Failure>> = Vec::with_capacity(slots.len());
    if !plan.per_request {
        let handles: Vec<_> = slots
            .iter()
            .map(|_| {
                let client = client.clone();
                let timeout = plan.connect_timeout;
                monoio::spawn(async move {
                    match monoio::time::timeout(timeout, client.connect()).await {
                        Ok(res) => res.map(Some),
                        Err(_) => Err(Failure::new(
                            ErrorKind::Timeout,
                            format!("connection set-up took longer than {timeout:?}"),
                            After::Stop,
                        )),
                    }
                })
            })
            .collect();
        for h in handles {
            initial.push(h.await);
        }
    } else {
        initial.extend(slots.iter().map(|_| Ok(None)));
    }
    barrier.wait();
    barrier.wait();
    let start = *start_cell
        .get()
        .expect("start time set before the second barrier");
    let measure_start = start + plan.warmup;
    let ctx = Rc::new(Ctx {
        start,
        measure_start,
        end: plan.duration.map(|d| measure_start + d),
        timeout: plan.timeout,
        connect_timeout: plan.connect_timeout,
        per_request: plan.per_request,
        interval: plan
            .rate
            .map(|r| Duration::from_secs_f64(plan.connections.max(1) as f64 / r)),
        seed: plan.seed,
    });
    let stats = Rc::new(RefCell::new(Stats::new(
        plan.rate.is_some(),
        plan.hdr_interval.map(|every| (measure_start, every)),
    )));
    let mut tasks = Vec::with_capacity(slots.len());
    for (slot, first) in slots.into_iter().zip(initial) {
        match first {
            Ok(conn) => {
                if conn.is_some() {
                    stats.borrow_mut().connections_opened += 1;
                }
                tasks.push(monoio::spawn(drive(
                    client.clone(),
                    conn,
                    slot,
                    ctx.clone(),
                    stats.clone(),
                )));
            }
            // A connection that cannot be made at the start is reported once and not retried
            // (as pgbench does); mid-run failures are retried.
            Err(f) => stats.borrow_mut().error(&f, start),
        }
    }
    for t in tasks {
        t.await;
    }
    // Let the runtime submit the closes of the sockets dropped last.
    monoio::time::sleep(Duration::from_millis(10)).await;
    drop(ctx);
    match Rc::try_unwrap(stats) {
        Ok(cell) => cell.into_inner(),
        Err(rc) => std::mem::replace(&mut *rc.borrow_mut(), Stats::new(false, None)),
    }
}

/// The result of an operation run against the deadlines.
enum Timed<T> {
    Done(T),
    /// `--timeout` elapsed.
    Expired,
    /// The run ended while it was in flight: not counted.
    Cut,
}

async fn bounded<F: Future>(ctx: &Ctx, timeout: Duration, fut: F) -> Timed<F::Output> {
    let limit = Instant::now() + timeout;
    let (at, cut) = match ctx.end {
        Some(end) if end < limit => (end, true),
        _ => (limit, false),
    };
    match monoio::time::timeout_at(monoio::time::Instant::from_std(at), fut).await {
        Ok(v) => Timed::Done(v),
        Err(_) if cut => Timed::Cut,
        Err(_) => Timed::Expired,
    }
}

/// One connection's loop.
async fn drive<C: Client>(
    client: Rc<C>,
    mut conn: Option<C::Conn>,
    slot: Slot,
    ctx: Rc<Ctx>,
    stats: Rc<RefCell<Stats>>,
) {
    let mut rng = Rng::new(
        ctx.seed
            .wrapping_add((slot.index as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)),
    );
    let mut remaining = slot.share;
    let mut k: u32 = 0;
    let mut backoff = BACKOFF_MIN;
    // When the connection last became free (a request ended or it was opened).
    let mut prev_done = ctx.start;
    // Counted requests that ended (successes and failures).
    let mut finished: u64 = 0;
    let timeout_failure = |what: &str, limit: Duration| {
        Failure::new(
            ErrorKind::Timeout,
            format!("{what} took longer than {limit:?}"),
            After::Reconnect,
        )
    };
    loop {
        if remaining == Some(0) {
            break;
        }
        let intended = match ctx.interval {
            Some(every) => {
                let at = every
                    .checked_mul(k)
                    .and_then(|d| ctx.start.checked_add(slot.offset + d));
                let Some(at) = at else {
                    break;
                };
                k = k.saturating_add(1);
                if ctx.end.is_some_and(|end| at >= end) {
                    break;
                }
                if at > Instant::now() {
                    monoio::time::sleep_until(monoio::time::Instant::from_std(at)).await;
                }
                at
            }
            None => {
                let now = Instant::now();
                if ctx.end.is_some_and(|end| now >= end) {
                    break;
                }
                // Closed loop: nothing is sent before the start (warm-up included).
                if now < ctx.start {
                    monoio::time::sleep_until(monoio::time::Instant::from_std(ctx.start)).await;
                    Instant::now()
                } else {
                    now
                }
            }
        };
        let counted = intended >= ctx.measure_start;
        // Open loop: the time this request waited for its connection to be free is the server's;
        // whatever came after (a late timer, a busy generator thread) is the generator's.
        let ready_at = intended.max(prev_done);

        if conn.is_none() {
            let failure = match bounded(&ctx, ctx.connect_timeout, client.connect()).await {
                Timed::Cut => break,
                Timed::Done(Ok(c)) => {
                    conn = Some(c);
                    prev_done = Instant::now();
                    stats.borrow_mut().connections_opened += 1;
                    backoff = BACKOFF_MIN;
                    None
                }
                Timed::Done(Err(f)) => Some(f),
                Timed::Expired => Some(timeout_failure("connection set-up", ctx.connect_timeout)),
            };
            if let Some(f) = failure {
                if counted {
                    stats.borrow_mut().error(&f, Instant::now());
                    finished += 1;
                    if let Some(r) = &mut remaining {
                        *r -= 1;
                    }
                }
                if f.after == After::Stop {
                    break;
                }
                monoio::time::sleep(backoff).await;
                if !ctx.per_request {
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                continue;
            }
        }
        let Some(c) = conn.as_mut() else { continue };
        let sent = Instant::now();
        let res = bounded(&ctx, ctx.timeout, client.request(c, &mut rng)).await;
        let done = Instant::now();
        prev_done = done;
        // Latency is measured from the intended time in closed loop (there it is when the loop
        // came round); in open loop from the send, moved back by the wait for the connection.
        let from = if ctx.interval.is_some() {
            let lag = sent.saturating_duration_since(ready_at);
            if counted {
                stats.borrow_mut().send_lag(lag);
            }
            let waited = ready_at.min(sent).saturating_duration_since(intended);
            sent.checked_sub(waited).unwrap_or(intended)
        } else {
            intended
        };
        let mut keep = !ctx.per_request;
        let mut stop = false;
        {
            let result = match res {
                Timed::Cut => break,
                Timed::Done(r) => r,
                Timed::Expired => Err(timeout_failure("request", ctx.timeout)),
            };
            let mut s = stats.borrow_mut();
            match result {
                Ok(reply) => {
                    if counted {
                        s.rows += reply.rows;
                        match reply.status {
                            Some(status) if status >= 400 => {
                                s.http_status(status);
                                let f = Failure::new(
                                    ErrorKind::HttpStatus((status / 100).min(5) as u8),
                                    format!("HTTP status {status}"),
                                    After::Continue,
                                );
                                s.error(&f, done);
                            }
                            Some(status) => {
                                s.http_status(status);
                                s.success(from, sent, done);
                            }
                            None => s.success(from, sent, done),
                        }
                    }
                    keep &= !reply.closed;
                }
                Err(f) => {
                    if counted {
                        s.error(&f, done);
                    }
                    keep &= f.after == After::Continue;
                    stop = f.after == After::Stop;
                }
            }
        }
        if counted {
            finished += 1;
            if let Some(r) = &mut remaining {
                *r -= 1;
            }
        }
        if !keep {
            if let Some(c) = conn.take() {
                let _ = monoio::time::timeout(CLOSE_LIMIT, client.close(c)).await;
            }
        }
        if stop {
            break;
        }
    }
    if let (Some(every), Some(end)) = (ctx.interval, ctx.end) {
        let scheduled = slots_between(ctx.start + slot.offset, every, ctx.measure_start, end);
        stats.borrow_mut().unsent += scheduled.saturating_sub(finished);
    }
    if let Some(c) = conn.take() {
        let _ = monoio::time::timeout(CLOSE_LIMIT, client.close(c)).await;
    }
}

/// How many of the times `first + k * every` (k >= 0) fall in `[from, to)`.
fn slots_between(first: Instant, every: Duration, from: Instant, to: Instant) -> u64 {
    let every = every.as_nanos().max(1);
    // Slots before `t`: the k with first + k * every < t.
    let before = |t: Instant| -> u64 {
        let span = t.saturating_duration_since(first).as_nanos();
        if t <= first {
            0
        } else {
            span.div_ceil(every) as u64
        }
    };
    before(to).saturating_sub(before(from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_between_counts_the_schedule() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        // Slots at 0, 10, 20, ... ms.
        assert_eq!(slots_between(t0, ms(10), t0, t0 + ms(100)), 10);
        assert_eq!(slots_between(t0, ms(10), t0 + ms(5), t0 + ms(100)), 9);
        assert_eq!(slots_between(t0, ms(10), t0 + ms(10), t0 + ms(101)), 10);
        assert_eq!(slots_between(t0 + ms(50), ms(10), t0, t0 + ms(50)), 0);
        assert_eq!(slots_between(t0 + ms(3), ms(10), t0, t0 + ms(4)), 1);
    }
}
