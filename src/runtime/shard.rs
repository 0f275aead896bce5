//! One shard: a pinned thread running a monoio runtime with its own listeners and sessions.

use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use monoio::net::TcpListener;
use monoio::{FusionDriver, FusionRuntime, RuntimeBuilder};
use tracing::{info, warn};

use super::{RuntimeError, Shutdown};
use crate::approvals::{Approvals, Webhook};
use crate::audit::Audit;
use crate::identity::Revocations;
use crate::metrics::{ShardMetrics, StatsInbox};
use crate::proxy::sessions::SessionRegistry;
use crate::proxy::state::{CancelRegistry, ShardCtx, Snapshot};
use crate::record::Recorder;

/// How often a shard looks at the shutdown flag, at requests for its statistics and at the
/// revocation set (so a revoked token's sessions end well within a second).
const SHUTDOWN_POLL: Duration = Duration::from_millis(50);

/// Everything a shard thread starts with.
pub struct Shard {
    pub id: usize,
    pub core: Option<core_affinity::CoreId>,
    pub sockets: Vec<std::net::TcpListener>,
    pub snapshot: Arc<ArcSwap<Snapshot>>,
    pub cancels: Arc<CancelRegistry>,
    pub shutdown: Arc<Shutdown>,
    pub drain_timeout: Duration,
    /// Where the control plane asks for this shard's statistics.
    pub stats: StatsInbox,
    pub revocations: Arc<Revocations>,
    pub sessions: Arc<SessionRegistry>,
    pub audit: Audit,
    pub approvals: Arc<Approvals>,
    pub webhook: Webhook,
    pub recorder: Recorder,
}

impl Shard {
    /// Runs the shard on the current thread until shutdown.
    pub fn run(self) -> Result<(), RuntimeError> {
        if let Some(core) = self.core {
            if !core_affinity::set_for_current(core) {
                warn!(
                    shard = self.id,
                    core = core.id,
                    "could not pin shard to core"
                );
            }
        }
        let id = self.id;
        let err = |source| RuntimeError::Shard { shard: id, source };
        // The ring is only ever used from this thread, and completions need not interrupt it:
        // with COOP_TASKRUN the kernel runs completion work when the shard next enters it
        // instead of sending an interrupt for each one, which measured 4-10% more throughput
        // under pgbench. Kernels before 6.0 lack these flags; the ring is then built without.
        let tuned = || {
            let mut urb = io_uring::IoUring::builder();
            urb.setup_coop_taskrun()
                .setup_taskrun_flag()
                .setup_single_issuer();
            RuntimeBuilder::<FusionDriver>::new()
                .enable_timer()
                .with_entries(4096)
                .uring_builder(urb)
                .build()
        };
        let plain = || {
            RuntimeBuilder::<FusionDriver>::new()
                .enable_timer()
                .with_entries(4096)
                .build()
        };
        let (runtime, ring) = match tuned() {
            Ok(rt) => (rt, "io_uring (coop taskrun, single issuer)"),
            Err(_) => (plain().map_err(err)?, "io_uring"),
        };
        match runtime {
            FusionRuntime::Uring(mut rt) => {
                info!(shard = id, core = ?self.core.map(|c| c.id), driver = ring, "shard started");
                rt.block_on(self.main())
            }
            FusionRuntime::Legacy(mut rt) => {
                info!(shard = id, core = ?self.core.map(|c| c.id), driver = "legacy (epoll)", "shard started");
                rt.block_on(self.main())
            }
        }
    }

    async fn main(self) -> Result<(), RuntimeError> {
        let ctx = Rc::new(ShardCtx {
            id: self.id,
            snapshot: self.snapshot,
            cancels: self.cancels,
            drain: Default::default(),
            force: Default::default(),
            live: Default::default(),
            catalog: Default::default(),
            metrics: Rc::new(ShardMetrics::default()),
            revocations: self.revocations,
            revoked: Default::default(),
            sessions: self.sessions,
            audit: self.audit,
            approvals: self.approvals,
            decided: Default::default(),
            webhook: self.webhook,
            recorder: self.recorder,
        });
        let answer_stats = || {
            self.stats
                .answer(|| ctx.metrics.snapshot(ctx.id, ctx.live.get() as u64))
        };
        for (index, socket) in self.sockets.into_iter().enumerate() {
            let listener = TcpListener::from_std(socket).map_err(|source| RuntimeError::Shard {
                shard: self.id,
                source,
            })?;
            monoio::spawn(accept_loop(listener, index, ctx.clone()));
        }
        let mut revocations_seen = ctx.revocations.generation();
        let mut decisions_seen = ctx.approvals.generation();
        while !self.shutdown.requested() {
            monoio::time::sleep(SHUTDOWN_POLL).await;
            answer_stats();
            let generation = ctx.revocations.generation();
            if generation != revocations_seen {
                revocations_seen = generation;
                ctx.revoked.fire();
            }
            let generation = ctx.approvals.generation();
            if generation != decisions_seen {
                decisions_seen = generation;
                ctx.decided.fire();
            }
        }
        info!(shard = ctx.id, live = ctx.live.get(), "draining");
        ctx.drain.fire();
        let deadline = Instant::now() + self.drain_timeout;
        while ctx.live.get() > 0 && Instant::now() < deadline {
            monoio::time::sleep(Duration::from_millis(10)).await;
        }
        if ctx.live.get() > 0 {
            warn!(
                shard = ctx.id,
                live = ctx.live.get(),
                "drain timeout: closing remaining sessions"
            );
            ctx.force.fire();
            let hard = Instant::now() + Duration::from_secs(2);
            while ctx.live.get() > 0 && Instant::now() < hard {
                monoio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        // Let the runtime submit the closes of sockets dropped by the last sessions.
        monoio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    }
}

async fn accept_loop(listener: TcpListener, index: usize, ctx: Rc<ShardCtx>) {
    loop {
        let accepted = monoio::select! {
            r = listener.accept() => r,
            _ = ctx.drain.wait() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                monoio::spawn(crate::proxy::pg::serve(tcp, peer, index, ctx.clone()));
            }
            Err(e) => {
                // Out of descriptors or memory: back off instead of spinning.
                warn!(shard = ctx.id, error = %e, "accept failed");
                monoio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
