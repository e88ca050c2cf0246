//! `docs/benchmarks.svg`, written by hand (no plotting dependency): ADD and DEL latency
//! distributions per subject (every sample as a dot, box from p25 to p75, median bar, whiskers
//! p10–p90) on a log scale, and ADD latency against pod index as one bridge fills up.

use std::fmt::Write;

use crate::phases::Series;
use crate::stats::{median, quantile};

const W: f64 = 1000.0;
const LEFT: f64 = 130.0;
const RIGHT: f64 = 30.0;

fn color(label: &str) -> &'static str {
    match label {
        "podwire" => "#1f77b4",
        "reference" => "#d62728",
        "kernel floor" => "#555555",
        _ => "#2ca02c",
    }
}

/// A deterministic jitter in [-0.5, 0.5) for sample `i`.
fn jitter(i: usize) -> f64 {
    ((i as u64).wrapping_mul(2654435761) % 1000) as f64 / 1000.0 - 0.5
}

/// 1-2-5 ticks covering [lo, hi].
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if t >= lo && t <= hi {
                out.push(t);
            }
        }
        decade *= 10.0;
    }
    out
}

fn fmt_tick(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

struct LogAxis {
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn x(&self, v: f64) -> f64 {
        let v = v.clamp(self.lo, self.hi);
        LEFT + (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
            * (W - LEFT - RIGHT)
    }
}

fn distribution_panel(
    svg: &mut String,
    top: f64,
    title: &str,
    rows: &[(&str, Vec<f64>)],
    axis: &LogAxis,
) {
    let row_h = 46.0;
    let height = row_h * rows.len() as f64 + 20.0;
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{}" class="title">{title}</text>"#,
        top - 8.0
    );
    let bottom = top + height;
    for t in log_ticks(axis.lo, axis.hi) {
        let x = axis.x(t);
        let _ = writeln!(
            svg,
            r#"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" class="grid"/><text x="{x:.1}" y="{}" class="tick" text-anchor="middle">{}</text>"#,
            bottom + 14.0,
            fmt_tick(t)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" class="tick" text-anchor="end">ms (log scale)</text>"#,
        W - RIGHT,
        bottom + 28.0
    );
    for (k, (label, v)) in rows.iter().enumerate() {
        let cy = top + 10.0 + row_h * (k as f64 + 0.5);
        let c = color(label);
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{:.1}" class="label" text-anchor="end">{label}</text>"#,
            LEFT - 10.0,
            cy + 4.0
        );
        for (i, s) in v.iter().enumerate() {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="2.2" fill="{c}" fill-opacity="0.45"/>"#,
                axis.x(*s),
                cy + jitter(i) * 26.0
            );
        }
        if v.is_empty() {
            continue;
        }
        let q = |p: f64| axis.x(quantile(v, p).unwrap_or(f64::NAN));
        let (p10, p25, p50, p75, p90) = (q(0.10), q(0.25), q(0.5), q(0.75), q(0.90));
        let _ = writeln!(
            svg,
            r#"<line x1="{p10:.1}" y1="{cy:.1}" x2="{p25:.1}" y2="{cy:.1}" stroke="{c}" stroke-width="1.5"/><line x1="{p75:.1}" y1="{cy:.1}" x2="{p90:.1}" y2="{cy:.1}" stroke="{c}" stroke-width="1.5"/><rect x="{p25:.1}" y="{:.1}" width="{:.1}" height="30" fill="none" stroke="{c}" stroke-width="1.5"/><line x1="{p50:.1}" y1="{:.1}" x2="{p50:.1}" y2="{:.1}" stroke="{c}" stroke-width="3"/><text x="{:.1}" y="{:.1}" class="tick" fill="{c}">{:.2}</text>"#,
            cy - 15.0,
            (p75 - p25).max(1.0),
            cy - 17.0,
            cy + 17.0,
            p50 + 3.0,
            cy - 19.0,
            median(v)
        );
    }
}

/// Median of a sliding window of `w` samples centred on each index.
fn rolling_median(v: &[f64], w: usize) -> Vec<f64> {
    let h = w / 2;
    (0..v.len())
        .map(|i| median(&v[i.saturating_sub(h)..(i + h + 1).min(v.len())]))
        .collect()
}

/// Per pod index, the median over rounds (`v` holds `rounds` runs of `n` pods, concatenated).
fn per_index_median(v: &[f64], n: usize) -> Vec<f64> {
    (0..n.min(v.len()))
        .map(|i| {
            let at: Vec<f64> = v.iter().skip(i).step_by(n).copied().collect();
            median(&at)
        })
        .collect()
}

fn growth_panel(svg: &mut String, top: f64, growth: &[Series], n: usize) {
    let height = 200.0;
    let bottom = top + height;
    let n = n.max(2);
    let all: Vec<f64> = growth.iter().flat_map(|s| s.add_ms()).collect();
    let ymax = (quantile(&all, 0.98).unwrap_or(1.0) * 1.2).max(0.1);
    let x = |i: usize| LEFT + (i as f64) / ((n - 1) as f64) * (W - LEFT - RIGHT);
    let y = |v: f64| bottom - (v.min(ymax) / ymax) * height;
    let _ = writeln!(
        svg,
        r#"<text x="{LEFT}" y="{}" class="title">ADD latency as one bridge fills up to {n} pods (dots: every ADD of every round; line: rolling median)</text>"#,
        top - 8.0
    );
    let step = nice_step(ymax / 5.0);
    let mut t = 0.0;
    while t <= ymax {
        let yy = y(t);
        let _ = writeln!(
            svg,
            r#"<line x1="{LEFT}" y1="{yy:.1}" x2="{}" y2="{yy:.1}" class="grid"/><text x="{}" y="{:.1}" class="tick" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            fmt_ms_tick(t)
        );
        t += step;
    }
    for i in (0..n).step_by(25).chain([n - 1]) {
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{}" class="tick" text-anchor="middle">{}</text>"#,
            x(i),
            bottom + 14.0,
            i + 1
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" class="tick" text-anchor="end">pod index</text><text x="{}" y="{}" class="tick" text-anchor="end">ms</text>"#,
        W - RIGHT,
        bottom + 28.0,
        LEFT - 40.0,
        top + height / 2.0
    );
    for s in growth {
        let c = color(s.label);
        let v = s.add_ms();
        for (k, ms) in v.iter().enumerate() {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.8" fill="{c}" fill-opacity="0.35"/>"#,
                x(k % n),
                y(*ms)
            );
        }
        let pts: Vec<String> = rolling_median(&per_index_median(&v, n), 9)
            .iter()
            .enumerate()
            .map(|(i, m)| format!("{:.1},{:.1}", x(i), y(*m)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{c}" stroke-width="2"/>"#,
            pts.join(" ")
        );
    }
    // Legend.
    for (k, s) in growth.iter().enumerate() {
        let lx = LEFT + 10.0 + 150.0 * k as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{lx:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" class="label">{}</text>"#,
            top + 4.0,
            color(s.label),
            lx + 16.0,
            top + 14.0,
            s.label
        );
    }
}

fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * mag >= raw {
            return m * mag;
        }
    }
    10.0 * mag
}

fn fmt_ms_tick(v: f64) -> String {
    if v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The whole chart. `seq` are the sequential series (ADD/DEL distributions); `growth` the
/// growth run.
pub fn chart(title: &str, seq: &[Series], growth: &[Series], growth_pods: usize) -> String {
    let shown: Vec<&Series> = seq.iter().filter(|s| s.label != "process").collect();
    let add: Vec<(&str, Vec<f64>)> = shown.iter().map(|s| (s.label, s.add_ms())).collect();
    let del: Vec<(&str, Vec<f64>)> = shown.iter().map(|s| (s.label, s.del_ms())).collect();
    let all: Vec<f64> = add
        .iter()
        .chain(&del)
        .flat_map(|(_, v)| v.iter().copied())
        .filter(|v| *v > 0.0)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(0.0, f64::max);
    let (lo, hi) = if lo.is_finite() && hi > 0.0 {
        (lo / 1.3, hi * 1.3)
    } else {
        (0.1, 100.0)
    };
    let axis = LogAxis { lo, hi };
    let row_h = 46.0 * shown.len() as f64 + 20.0;
    let top_add = 72.0;
    let top_del = top_add + row_h + 60.0;
    let top_growth = top_del + row_h + 70.0;
    let h = top_growth + 250.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif">"#
    );
    svg.push_str(
        "<style>.title{font-size:14px;font-weight:bold}.label{font-size:13px}.tick{font-size:11px;fill:#444}.grid{stroke:#ddd;stroke-width:1}</style>\n",
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    // The title's first line is the headline, the rest (the machine) goes on a second line.
    let (head, rest) = title.split_once(" — ").unwrap_or((title, ""));
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" class="title" font-size="16">{}</text><text x="{}" y="38" class="tick">{}</text>"#,
        LEFT,
        escape(head),
        LEFT,
        escape(rest)
    );
    distribution_panel(
        &mut svg,
        top_add,
        "ADD latency per pod (dots: each ADD; box: p25–p75, bar: median, whiskers: p10–p90)",
        &add,
        &axis,
    );
    distribution_panel(&mut svg, top_del, "DEL latency per pod", &del, &axis);
    growth_panel(&mut svg, top_growth, growth, growth_pods);
    svg.push_str("</svg>\n");
    svg
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::Sample;
    use std::time::Duration;

    fn series(label: &'static str, ms: &[f64]) -> Series {
        let s = |v: &f64| Sample {
            elapsed: Duration::from_secs_f64(v / 1e3),
            cpu: Duration::ZERO,
            max_rss_kib: None,
        };
        Series {
            label,
            add: ms.iter().map(s).collect(),
            del: ms.iter().map(|v| s(&(v * 2.0))).collect(),
        }
    }

    #[test]
    fn ticks_follow_1_2_5() {
        assert_eq!(log_ticks(0.8, 25.0), vec![1.0, 2.0, 5.0, 10.0, 20.0]);
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(3.0), 5.0);
    }

    #[test]
    fn the_chart_is_one_svg_with_a_dot_per_sample() {
        let seq = vec![
            series("podwire", &[1.0, 2.0, 3.0]),
            series("reference", &[10.0, 12.0]),
        ];
        let growth = vec![series("podwire", &[1.0; 20])];
        let svg = chart("a <b> & c", &seq, &growth, 10);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        // 5 ADD + 5 DEL dots, 20 growth dots.
        assert_eq!(svg.matches("<circle").count(), 30);
        assert!(svg.contains("a &lt;b&gt; &amp; c"));
        assert_eq!(
            rolling_median(&[1.0, 9.0, 1.0, 1.0], 3),
            vec![1.0, 1.0, 1.0, 1.0]
        );
    }
}
