//! The page section: the main table, the ratios, the chart.

use super::*;

pub struct Row {
    pub path: &'static str,
    pub v6: bool,
    pub podwire: Figures,
    pub hand: Option<Figures>,
    /// podwire / hand, run by run (the two measured in turns).
    pub ratio: Option<Figures>,
}

pub fn ratio_cells(f: Figures) -> String {
    format!(
        "{} / {} / {}",
        cell(f.one, 2),
        cell(f.four, 2),
        cell(f.rr, 2)
    )
}

pub const HEADING: &str = "## Data path";

pub fn cell(s: Stat, digits: usize) -> String {
    format!("{:.d$} ({:.d$}–{:.d$})", s.median, s.min, s.max, d = digits)
}

pub fn report(rows: &[Row], reps: usize, secs: f64, mtu: u32) -> String {
    let floor = |v6: bool| {
        rows.iter()
            .find(|r| r.v6 == v6 && r.hand.is_none())
            .unwrap()
            .podwire
    };
    let mut s = format!(
        "{HEADING}\n\n`cargo bench -p podwire-cluster-tests --bench datapath` (scripts/bench.sh runs it): \
         the simulated cluster's topology (node namespaces joined by veths to a router's bridges), \
         TCP between two network namespaces of this machine, {reps} runs of {secs} s each \
         (request/response: {} s); median (min–max). Pods' MTU {mtu} (found from the 1500-byte \
         underlay, less 70 for VXLAN over IPv6). \"hand\": the same path built with `ip` \
         commands (bridge, veths, routes, a VXLAN device with static FDB and neighbour entries), \
         what a perfect plugin would leave, measured in turns with podwire's (podwire, hand, \
         then hand, podwire, ...) so that a noisy machine's drift falls on both; podwire / hand, \
         run by run, is podwire's own cost (target ≥ 0.97): median (min–max) for one stream, four streams \
         and request/response. Senders pinned to one CPU, receivers to the other. / floor: against node to node over the same links (aim for pod to pod direct ≥ \
         0.9). ![chart](benchmarks-datapath.svg)\n\n",
        secs / 2.0
    );
    s += "| path | family | 1 stream, Gbit/s | 4 streams, Gbit/s | request/response, 1/s | podwire / hand (1 stream, 4, RR) | / floor (1 stream, 4, RR) |\n";
    s += "| --- | --- | ---: | ---: | ---: | ---: | ---: |\n";
    for r in rows {
        let fam = if r.v6 { "IPv6" } else { "IPv4" };
        let f = r.podwire;
        let fl = floor(r.v6);
        let ratio = |a: Figures, b: Figures| {
            format!(
                "{:.2} / {:.2} / {:.2}",
                a.one.median / b.one.median,
                a.four.median / b.four.median,
                a.rr.median / b.rr.median
            )
        };
        let (vs_hand, vs_floor) = match r.ratio {
            Some(paired) => (ratio_cells(paired), ratio(f, fl)),
            None => ("–".into(), "1".into()),
        };
        let cells = |f: Figures| {
            format!(
                "{} | {} | {}",
                cell(f.one, 2),
                cell(f.four, 2),
                cell(f.rr, 0)
            )
        };
        s += &format!(
            "| {} | {fam} | {} | {vs_hand} | {vs_floor} |\n",
            r.path,
            cells(f)
        );
        if let Some(h) = r.hand {
            s += &format!(
                "| {} (hand) | {fam} | {} | | {} |\n",
                r.path,
                cells(h),
                ratio(h, fl)
            );
        }
    }
    s
}

/// A bar chart of the one-stream medians: podwire beside its hand-built twin, per path.
pub fn chart(rows: &[Row]) -> String {
    let max = rows
        .iter()
        .flat_map(|r| [Some(r.podwire.one.median), r.hand.map(|h| h.one.median)])
        .flatten()
        .fold(0.0f64, f64::max)
        .max(0.1);
    let (w, bar, gap, left) = (720.0, 14.0, 10.0, 230.0);
    let mut y = 30.0;
    let mut body = String::new();
    for r in rows {
        let fam = if r.v6 { "IPv6" } else { "IPv4" };
        body += &format!(
            "<text x='5' y='{:.0}' font-size='12'>{} {fam}</text>\n",
            y + bar,
            r.path
        );
        for (v, color, label) in [
            (Some(r.podwire.one), "#2b6cb0", "podwire"),
            (r.hand.map(|h| h.one), "#a0aec0", "hand"),
        ] {
            let Some(v) = v else { continue };
            let len = (w - left - 90.0) * v.median / max;
            body += &format!(
                "<rect x='{left}' y='{y:.0}' width='{len:.0}' height='{bar}' fill='{color}'/>\
                 <text x='{:.0}' y='{:.0}' font-size='11'>{:.2} Gbit/s {label}</text>\n",
                left + len + 4.0,
                y + bar - 3.0,
                v.median
            );
            y += bar + 2.0;
        }
        y += gap;
    }
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{w}' height='{:.0}' \
         font-family='sans-serif'>\n<text x='5' y='18' font-size='13' font-weight='bold'>TCP, one \
         stream, median Gbit/s: podwire (blue) and the same path by hand (grey)</text>\n{body}</svg>\n",
        y + 10.0
    )
}
