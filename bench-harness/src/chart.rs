//! `chart.svg`: for each case, throughput (mean TPS) and p99 latency by target as horizontal
//! bars, each panel scaled to its own case so small and large cases read alike. Plain SVG
//! written by hand: no plotting dependency.

use crate::report::Row;

const WIDTH: u32 = 960;
const LABEL_W: u32 = 150;
const PANEL_W: u32 = 330;
const GAP: u32 = 60;
const BAR_H: u32 = 18;
const BAR_GAP: u32 = 6;
const CASE_HEAD: u32 = 34;
const TOP: u32 = 56;
const PALETTE: &[&str] = &[
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#9c755f",
];

/// The chart of a run's rows.
pub fn svg(scenario: &str, rows: &[Row]) -> String {
    let cases = ordered(rows.iter().map(|r| r.case.as_str()));
    let targets = ordered(rows.iter().map(|r| r.target.as_str()));
    let block = CASE_HEAD + targets.len() as u32 * (BAR_H + BAR_GAP) + 16;
    let height = TOP + cases.len() as u32 * block + 10;
    let tps_x = LABEL_W;
    let p99_x = LABEL_W + PANEL_W + GAP;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" \
         viewBox=\"0 0 {WIDTH} {height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"10\" y=\"22\" font-size=\"16\" font-weight=\"bold\">{}</text>\n\
         <text x=\"{tps_x}\" y=\"46\" font-weight=\"bold\">throughput (TPS, mean of rounds; longer is better)</text>\n\
         <text x=\"{p99_x}\" y=\"46\" font-weight=\"bold\">p99 latency (ms; shorter is better)</text>\n",
        escape(scenario)
    );
    for (ci, case) in cases.iter().enumerate() {
        let y0 = TOP + ci as u32 * block;
        out.push_str(&format!(
            "<text x=\"10\" y=\"{}\" font-weight=\"bold\">{}</text>\n\
             <line x1=\"10\" x2=\"{}\" y1=\"{}\" y2=\"{}\" stroke=\"#ccc\"/>\n",
            y0 + 20,
            escape(case),
            WIDTH - 10,
            y0 + 4,
            y0 + 4
        ));
        let in_case: Vec<&Row> = rows.iter().filter(|r| r.case == *case).collect();
        let max_tps = in_case
            .iter()
            .map(|r| r.tps_mean())
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let max_p99 = in_case
            .iter()
            .filter_map(|r| r.p99_ms())
            .fold(0.0, f64::max);
        for (ti, target) in targets.iter().enumerate() {
            let y = y0 + CASE_HEAD + ti as u32 * (BAR_H + BAR_GAP);
            let color = PALETTE[ti % PALETTE.len()];
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n",
                LABEL_W - 8,
                y + BAR_H - 4,
                escape(target)
            ));
            let Some(row) = in_case.iter().find(|r| r.target == *target) else {
                continue;
            };
            let tps = row.tps_mean();
            out.push_str(&bar(tps_x, y, tps, max_tps, color, &value(tps, 0, "")));
            match row.p99_ms() {
                Some(p99) => {
                    out.push_str(&bar(p99_x, y, p99, max_p99, color, &value(p99, 3, " ms")))
                }
                None => out.push_str(&format!(
                    "<text x=\"{p99_x}\" y=\"{}\" fill=\"#999\">no result</text>\n",
                    y + BAR_H - 4
                )),
            }
        }
    }
    out.push_str("</svg>\n");
    out
}

/// A bar of `v` out of `max` in a panel at `x`, with its value printed after it.
fn bar(x: u32, y: u32, v: f64, max: f64, color: &str, text: &str) -> String {
    if !v.is_finite() || max <= 0.0 {
        return format!(
            "<text x=\"{x}\" y=\"{}\" fill=\"#999\">failed</text>\n",
            y + BAR_H - 4
        );
    }
    let w = ((v / max) * f64::from(PANEL_W - 70)).round().max(1.0) as u32;
    format!(
        "<rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{BAR_H}\" fill=\"{color}\"/>\n\
         <text x=\"{}\" y=\"{}\">{text}</text>\n",
        x + w + 5,
        y + BAR_H - 4
    )
}

fn value(v: f64, digits: usize, unit: &str) -> String {
    format!("{v:.digits$}{unit}")
}

/// Distinct values in first-seen order.
fn ordered<'a>(items: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Text made safe inside SVG/XML elements and attribute values.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(target: &str, case: &str, tps: &[f64], lat: &[u64]) -> Row {
        Row {
            target: target.into(),
            case: case.into(),
            tps: tps.to_vec(),
            latencies_us: lat.to_vec(),
            ..Row::default()
        }
    }

    #[test]
    fn every_case_and_target_is_drawn_and_bars_scale_within_a_case() {
        let rows = [
            row("direct", "simple c=1", &[1000.0], &[100, 200]),
            row("sluice", "simple c=1", &[500.0], &[300, 400]),
            row("direct", "simple c=32 <x>", &[40000.0], &[900]),
            row("sluice", "simple c=32 <x>", &[], &[]),
        ];
        let svg = svg("select-only", &rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains(">simple c=1<") && svg.contains(">simple c=32 &lt;x&gt;<"));
        // The larger TPS of a case gets the full bar, half the TPS half of it.
        let full = PANEL_W - 70;
        assert!(svg.contains(&format!("width=\"{full}\"")));
        assert!(svg.contains(&format!("width=\"{}\"", full / 2)));
        assert!(svg.contains(">1000<") && svg.contains(">500<"));
        // A target without results says so instead of drawing a bar.
        assert!(svg.contains(">failed<") && svg.contains(">no result<"));
    }
}
