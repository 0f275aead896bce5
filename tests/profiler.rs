//! The in-process profiler on a busy thread: the folded file it writes names the function that
//! used the CPU, under the thread's name, without the sampler's own frames. Built only with
//! `--features profiler`.

use std::fs;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use sluice::profiler::{Sampler, Settings};

const MARKER: &str = "profiler_busy_marker";
const THREAD: &str = "busy-worker";

/// CPU work the optimizer cannot remove or inline away.
#[inline(never)]
fn profiler_busy_marker(seed: u64) -> u64 {
    let mut x = seed;
    for _ in 0..100_000 {
        x = black_box(
            x.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        );
    }
    x
}

fn names_marker(stack: &str) -> bool {
    stack.starts_with(&format!("{THREAD};")) && stack.contains(MARKER)
}

#[test]
fn profile_of_a_busy_thread_names_its_function() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("busy.folded");
    let sampler = Sampler::start(&Settings {
        out: out.clone(),
        hz: 499,
    })
    .unwrap();
    assert_eq!(
        fs::read_to_string(&out).unwrap(),
        "",
        "created empty at start"
    );

    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        thread::Builder::new()
            .name(THREAD.into())
            .spawn(move || {
                let mut x = 1;
                while !stop.load(Ordering::Relaxed) {
                    x = profiler_busy_marker(x);
                }
                x
            })
            .unwrap()
    };
    // Run until a sample lands in the marker. The deadline only keeps a broken sampler from
    // hanging the suite; how long it takes is not asserted.
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline && !sampler.folded().unwrap().keys().any(|s| names_marker(s)) {
        thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    worker.join().unwrap();

    let written = sampler.finish().unwrap();
    let text = fs::read_to_string(&out).unwrap();
    assert_eq!(written.path, out);
    assert!(
        text.lines().any(names_marker),
        "no `{MARKER}` stack in:\n{text}"
    );
    assert!(!text.contains("perf_signal_handler"), "{text}");
    let counted: u64 = text
        .lines()
        .map(|l| l.rsplit_once(' ').unwrap().1.parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, written.samples);
}
