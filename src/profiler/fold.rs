//! Sampled stacks folded into `thread;frame;...;frame count` lines: root first, the thread's
//! name as the root frame, as `perf script` folding gives them (so both draw alike).

use std::collections::BTreeMap;

use pprof::{Frames, Report, Symbol};

/// The handler that takes each sample; it and everything it called are the profiler's own.
const HANDLER: &str = "perf_signal_handler";
/// glibc's return-from-signal trampoline, between the handler and the interrupted code.
const TRAMPOLINE: &str = "__restore_rt";

/// One entry per distinct folded stack, with its sample count.
pub fn fold(report: &Report) -> BTreeMap<String, u64> {
    let mut folded = BTreeMap::new();
    for (frames, &count) in &report.data {
        if let Ok(count @ 1..) = u64::try_from(count) {
            *folded.entry(fold_frames(frames)).or_insert(0) += count;
        }
    }
    folded
}

/// One sample's stack as a folded line (without the count).
pub fn fold_frames(frames: &Frames) -> String {
    // Innermost first; each frame lists its inlined functions innermost first, too.
    let names = frames
        .frames
        .iter()
        .flat_map(|frame| frame.iter().map(symbol_name));
    fold_stack(&frames.thread_name_or_id(), names)
}

/// `names` (innermost first) as a folded stack under `thread`, with the sampler's own frames
/// (the signal handler and the trampoline that entered it) left out.
pub fn fold_stack(thread: &str, names: impl IntoIterator<Item = String>) -> String {
    let names: Vec<String> = names.into_iter().collect();
    let start = match names.iter().rposition(|n| n.contains(HANDLER)) {
        Some(handler) => {
            let after = handler + 1;
            match names.get(after) {
                Some(n) if n.starts_with(TRAMPOLINE) => after + 1,
                _ => after,
            }
        }
        None => 0,
    };
    let mut stack = clean(thread);
    for name in names[start..].iter().rev() {
        stack.push(';');
        stack.push_str(&clean(name));
    }
    stack
}

/// The folded stacks as text, heaviest first, one `stack count` line each.
pub fn folded_text(folded: &BTreeMap<String, u64>) -> String {
    let mut lines: Vec<(&String, &u64)> = folded.iter().collect();
    lines.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    lines.iter().map(|(s, n)| format!("{s} {n}\n")).collect()
}

fn symbol_name(symbol: &Symbol) -> String {
    if symbol.name.is_none() {
        return "[unknown]".into();
    }
    let name = symbol.name();
    // Legacy Rust symbols keep their `::h0123456789abcdef` hash when demangled; it differs
    // between builds and only makes the graph harder to read.
    match name.rsplit_once("::h") {
        Some((path, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            path.to_string()
        }
        _ => name,
    }
}

/// A frame name that cannot break the line format: `;` separates frames and a newline ends
/// the line (the count follows the last space, so spaces are harmless).
fn clean(name: &str) -> String {
    name.replace(';', ":").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn symbol(raw: &str) -> Symbol {
        Symbol {
            name: Some(raw.as_bytes().to_vec()),
            addr: None,
            lineno: None,
            filename: None,
        }
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stack_is_root_first_under_the_thread_without_the_sampler() {
        let stack = fold_stack(
            "sluice-shard-0",
            names(&[
                "backtrace::backtrace::trace_unsynchronized",
                "pprof::profiler::perf_signal_handler",
                "__restore_rt",
                "sluice::proxy::pg::relay::pump",
                "sluice::runtime::shard::run",
                "std::thread::lifecycle",
            ]),
        );
        assert_eq!(
            stack,
            "sluice-shard-0;std::thread::lifecycle;sluice::runtime::shard::run;sluice::proxy::pg::relay::pump"
        );
    }

    #[test]
    fn stack_without_the_handler_is_kept_whole() {
        let stack = fold_stack("main", names(&["b", "a"]));
        assert_eq!(stack, "main;a;b");
        assert_eq!(fold_stack("main", Vec::new()), "main");
    }

    #[test]
    fn separators_in_names_cannot_split_frames() {
        assert_eq!(fold_stack("t;1", names(&["f<a;b>"])), "t:1;f<a:b>");
    }

    #[test]
    fn symbols_are_demangled_without_hash_and_inlined_frames_kept_in_order() {
        let frames = Frames {
            frames: vec![
                vec![symbol("pprof::profiler::perf_signal_handler")],
                vec![symbol("__restore_rt")],
                // Inlined: `inner` was inlined into `outer`, listed innermost first.
                vec![
                    symbol("_ZN3app5inner17h0123456789abcdefE"),
                    symbol("_ZN3app5outer17hfedcba9876543210E"),
                ],
                vec![Symbol {
                    name: None,
                    addr: None,
                    lineno: None,
                    filename: None,
                }],
            ],
            thread_name: "sluice-shard-1".into(),
            thread_id: 7,
            sample_timestamp: std::time::SystemTime::UNIX_EPOCH,
        };
        assert_eq!(
            fold_frames(&frames),
            "sluice-shard-1;[unknown];app::outer;app::inner"
        );
    }

    #[test]
    fn a_short_h_suffix_is_not_a_hash() {
        assert_eq!(symbol_name(&symbol("app::hash")), "app::hash");
        assert_eq!(
            symbol_name(&symbol("app::hello_world_1234")),
            "app::hello_world_1234"
        );
    }

    #[test]
    fn text_is_heaviest_first() {
        let folded = BTreeMap::from([("t;a".to_string(), 2), ("t;b".to_string(), 5)]);
        assert_eq!(folded_text(&folded), "t;b 5\nt;a 2\n");
        assert_eq!(folded_text(&BTreeMap::new()), "");
    }
}
