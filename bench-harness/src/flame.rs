//! Flamegraphs from `perf script` output: stacks folded into `frame;frame;... count` lines and
//! drawn as an SVG (root at the bottom, each frame as wide as the share of samples it is on).
//! Written here rather than taken from a tool so the profile script needs only perf.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::chart::escape;

/// Folds `perf script` output: one entry per distinct stack (root first, thread name as the
/// root frame), with its sample count.
pub fn fold(perf_script: &str) -> BTreeMap<String, u64> {
    let mut folded = BTreeMap::new();
    let mut thread: Option<String> = None;
    let mut frames: Vec<String> = Vec::new();
    let mut flush = |thread: &mut Option<String>, frames: &mut Vec<String>| {
        if let Some(name) = thread.take() {
            let mut stack = vec![name];
            stack.extend(frames.drain(..).rev());
            *folded.entry(stack.join(";")).or_insert(0) += 1;
        }
        frames.clear();
    };
    for line in perf_script.lines() {
        if line.trim().is_empty() {
            flush(&mut thread, &mut frames);
        } else if line.starts_with(char::is_whitespace) {
            if thread.is_some() {
                frames.push(frame_name(line.trim()));
            }
        } else {
            flush(&mut thread, &mut frames);
            // `comm pid/tid [cpu] time: period event:`; the thread name may hold spaces, so
            // take everything before the first field that is all digits (the pid).
            let fields: Vec<&str> = line.split_whitespace().collect();
            let pid_at = fields
                .iter()
                .position(|f| f.split('/').all(|p| p.chars().all(|c| c.is_ascii_digit())))
                .unwrap_or(1);
            thread = Some(fields[..pid_at.max(1)].join(" "));
        }
    }
    flush(&mut thread, &mut frames);
    folded
}

/// `addr symbol+0xoff (dso)` → `symbol`, or `[dso]` when the symbol is unknown.
fn frame_name(line: &str) -> String {
    let rest = line.split_once(' ').map_or("", |(_, r)| r).trim();
    let (symbol, dso) = match rest.rfind(" (") {
        Some(i) => (&rest[..i], rest[i + 2..].trim_end_matches(')')),
        None => (rest, ""),
    };
    let symbol = match symbol.rfind("+0x") {
        Some(i) => &symbol[..i],
        None => symbol,
    };
    if symbol.is_empty() || symbol == "[unknown]" {
        let dso = dso.rsplit('/').next().unwrap_or(dso);
        format!("[{dso}]")
    } else {
        // `;` separates frames in the folded format.
        symbol.replace(';', ":")
    }
}

/// The folded stacks as text, heaviest first.
pub fn folded_text(folded: &BTreeMap<String, u64>) -> String {
    let mut lines: Vec<(&String, &u64)> = folded.iter().collect();
    lines.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    lines
        .iter()
        .map(|(stack, n)| format!("{stack} {n}\n"))
        .collect()
}

#[derive(Default)]
struct Node {
    count: u64,
    children: BTreeMap<String, Node>,
}

const W: f64 = 1200.0;
const ROW: f64 = 17.0;
/// Frames narrower than this share of all samples are left out (and their time stays in the
/// parent), so the file stays small.
const MIN_SHARE: f64 = 0.0005;

/// Draws the folded stacks as a flamegraph.
pub fn svg(folded: &BTreeMap<String, u64>, title: &str) -> String {
    let mut root = Node::default();
    for (stack, &n) in folded {
        root.count += n;
        let mut node = &mut root;
        for frame in stack.split(';') {
            node = node.children.entry(frame.to_string()).or_default();
            node.count += n;
        }
    }
    let depth = max_depth(&root);
    let height = (depth as f64 + 3.0) * ROW + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{height}\" \
         viewBox=\"0 0 {W} {height}\" font-family=\"monospace\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"#fdfdf6\"/>\n\
         <text x=\"{}\" y=\"20\" text-anchor=\"middle\" font-size=\"15\" font-family=\"sans-serif\">{} ({} samples)</text>\n",
        W / 2.0,
        escape(title),
        root.count
    );
    if root.count > 0 {
        let base = height - 10.0 - ROW;
        draw(&mut out, &root, "all", 0.0, W, base, root.count);
    }
    out.push_str("</svg>\n");
    out
}

fn max_depth(node: &Node) -> usize {
    1 + node.children.values().map(max_depth).max().unwrap_or(0)
}

fn draw(out: &mut String, node: &Node, name: &str, x: f64, width: f64, y: f64, total: u64) {
    let share = node.count as f64 / total as f64;
    let _ = writeln!(
        out,
        "<g><title>{} ({} samples, {:.2}%)</title><rect x=\"{x:.2}\" y=\"{y:.1}\" width=\"{:.2}\" height=\"{}\" fill=\"{}\" rx=\"1\"/>",
        escape(name),
        node.count,
        share * 100.0,
        (width - 0.5).max(0.1),
        ROW - 1.0,
        color(name)
    );
    // About 6.6 px per character at this font size.
    let fits = ((width - 6.0) / 6.6) as usize;
    if fits >= 3 {
        let label: String = if name.chars().count() > fits {
            name.chars()
                .take(fits.saturating_sub(2))
                .collect::<String>()
                + ".."
        } else {
            name.to_string()
        };
        let _ = writeln!(
            out,
            "<text x=\"{:.2}\" y=\"{:.1}\">{}</text>",
            x + 3.0,
            y + ROW - 5.0,
            escape(&label)
        );
    }
    out.push_str("</g>\n");
    let mut cx = x;
    for (child_name, child) in &node.children {
        let cw = width * child.count as f64 / node.count as f64;
        if child.count as f64 / total as f64 >= MIN_SHARE {
            draw(out, child, child_name, cx, cw, y - ROW, total);
        }
        cx += cw;
    }
}

/// A warm colour chosen by the frame's name, so a function has the same colour everywhere.
fn color(name: &str) -> String {
    let h = name.bytes().fold(2166136261u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(16777619)
    });
    let r = 205 + (h % 50);
    let g = 80 + ((h >> 8) % 130);
    let b = 40 + ((h >> 16) % 50);
    format!("rgb({r},{g},{b})")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCRIPT: &str = "\
sluice-shard-0 4242/4243 [000] 100.000001:     1001001 cpu-clock:u: 
\t    55d5c6a0b1c2 sluice::proxy::pg::relay::pump+0x12 (/opt/sluice)
\t    55d5c6a0b000 sluice::runtime::shard::run+0x40 (/opt/sluice)
\t    7f0000000000 [unknown] (/usr/lib/x86_64-linux-gnu/libc.so.6)

sluice-shard-0 4242/4243 [000] 100.001001:     1001001 cpu-clock:u: 
\t    55d5c6a0b1c2 sluice::proxy::pg::relay::pump+0x30 (/opt/sluice)
\t    55d5c6a0b000 sluice::runtime::shard::run+0x40 (/opt/sluice)
\t    7f0000000000 [unknown] (/usr/lib/x86_64-linux-gnu/libc.so.6)

sluice 4242/4242 [001] 100.002001:     1001001 cpu-clock:u: 
\t    55d5c6a0c000 std::thread::park+0x1 (/opt/sluice)
";

    #[test]
    fn stacks_fold_root_first_with_offsets_dropped() {
        let folded = fold(SCRIPT);
        assert_eq!(
            folded.get(
                "sluice-shard-0;[libc.so.6];sluice::runtime::shard::run;sluice::proxy::pg::relay::pump"
            ),
            Some(&2)
        );
        assert_eq!(folded.get("sluice;std::thread::park"), Some(&1));
        assert_eq!(folded.len(), 2);
        let text = folded_text(&folded);
        assert!(text.starts_with("sluice-shard-0;"), "{text}");
    }

    #[test]
    fn svg_draws_each_frame_with_its_share() {
        let svg = svg(&fold(SCRIPT), "pass-through <test>");
        assert!(svg.contains("pass-through &lt;test&gt; (3 samples)"));
        assert!(svg.contains("<title>all (3 samples, 100.00%)</title>"));
        assert!(svg.contains("<title>sluice::proxy::pg::relay::pump (2 samples, 66.67%)</title>"));
        assert!(svg.trim_end().ends_with("</svg>"));
        // Nothing to draw is still a valid picture.
        assert!(super::svg(&BTreeMap::new(), "empty").contains("(0 samples)"));
    }
}
