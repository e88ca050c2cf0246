//! The node as a picture (SVG): the way out of the node at the top, each network's bridge with
//! its addresses and IPAM use, a veth down to every pod with its interface, addresses and MAC,
//! and what does not add up in red at the bottom. Plain SVG 1.1, no scripts or external fonts,
//! so it renders the same in a browser, rsvg-convert or a slide.

use crate::node::{IssueKind, NetworkView, NodeView, PodView};
use std::fmt::Write;

const POD_W: i32 = 200;
const POD_H: i32 = 96;
const GAP: i32 = 24;
const MARGIN: i32 = 32;
const FONT: &str = "DejaVu Sans, Verdana, Arial, sans-serif";
const MONO: &str = "DejaVu Sans Mono, Menlo, Consolas, monospace";

/// Escapes text for an XML text node or attribute.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

struct Canvas {
    body: String,
}

impl Canvas {
    fn text(&mut self, x: i32, y: i32, size: i32, attrs: &str, s: &str) {
        let _ = writeln!(
            self.body,
            r#"<text x="{x}" y="{y}" font-size="{size}" {attrs}>{}</text>"#,
            esc(s)
        );
    }
    fn rect(&mut self, x: i32, y: i32, w: i32, h: i32, attrs: &str) {
        let _ = writeln!(
            self.body,
            r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="10" {attrs}/>"#
        );
    }
    fn line(&mut self, x1: i32, y1: i32, x2: i32, y2: i32, attrs: &str) {
        let _ = writeln!(
            self.body,
            r#"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" {attrs}/>"#
        );
    }
}

/// Boxes per row: a wider picture no longer fits a slide.
const PER_ROW: usize = 6;
/// From one row of boxes to the next: the row's port line and cables.
const ROW_H: i32 = POD_H + 90;
/// Left of the boxes when there are several rows: where the port line comes down.
const INDENT: i32 = 28;

fn boxes(n: &NetworkView) -> usize {
    n.pods.len() + orphans(n).len()
}

fn network_width(n: &NetworkView) -> i32 {
    let per_row = boxes(n).clamp(1, PER_ROW) as i32;
    let indent = if boxes(n) > PER_ROW { INDENT } else { 0 };
    per_row * POD_W + (per_row - 1) * GAP + indent
}

/// Where box `i` goes: its left edge and top.
fn slot(i: usize, x0: i32, top: i32) -> (i32, i32) {
    let (row, col) = ((i / PER_ROW) as i32, (i % PER_ROW) as i32);
    (x0 + col * (POD_W + GAP), top + row * ROW_H)
}

/// Attachments that hold something (an address, a cache entry) but have no interface: drawn
/// as dashed red boxes with no cable, beside the pods.
fn orphans(n: &NetworkView) -> Vec<(String, String, Vec<String>)> {
    let mut out: Vec<(String, String, Vec<String>)> = Vec::new();
    for i in n.issues.iter().filter(|i| {
        matches!(
            i.kind,
            IssueKind::AllocationWithoutInterface | IssueKind::CacheWithoutPod
        )
    }) {
        let at = match out
            .iter()
            .position(|(c, f, _)| *c == i.container_id && *f == i.ifname)
        {
            Some(at) => at,
            None => {
                out.push((i.container_id.clone(), i.ifname.clone(), Vec::new()));
                out.len() - 1
            }
        };
        let line = match i.kind {
            IssueKind::AllocationWithoutInterface => {
                let ips: Vec<String> = n
                    .ipam
                    .allocations
                    .iter()
                    .filter(|a| {
                        a.container_id.as_deref() == Some(i.container_id.as_str())
                            && a.ifname.as_deref() == Some(i.ifname.as_str())
                    })
                    .map(|a| a.ip.to_string())
                    .collect();
                format!("holds {}", ips.join(" "))
            }
            _ => "in the result cache".to_string(),
        };
        out[at].2.push(line);
    }
    out
}

/// Draws the node. `title` names it (e.g. the host name).
pub fn render(node: &NodeView, title: &str) -> String {
    let inner = node
        .networks
        .iter()
        .map(network_width)
        .max()
        .unwrap_or(POD_W)
        .max(640);
    let width = inner + 2 * MARGIN;
    let mut c = Canvas {
        body: String::new(),
    };
    let mut y = MARGIN;
    // Title and the way out.
    c.text(
        MARGIN,
        y + 6,
        22,
        r##"font-weight="bold" fill="#1f2937""##,
        &format!("node {title}"),
    );
    y += 22;
    let outs: Vec<String> = node
        .routes
        .iter()
        .filter(|r| !r.to_pods)
        .map(|r| r.describe(false))
        .collect();
    let out_h = 34 + 18 * outs.len().max(1) as i32 + 18 * node.tunnels.len() as i32;
    c.rect(
        MARGIN,
        y,
        inner,
        out_h,
        r##"fill="#eef2ff" stroke="#6366f1" stroke-width="1.5""##,
    );
    c.text(
        MARGIN + 14,
        y + 22,
        14,
        r##"font-weight="bold" fill="#3730a3""##,
        "the way out of the node",
    );
    let mut ty = y + 42;
    if outs.is_empty() {
        c.text(
            MARGIN + 14,
            ty,
            13,
            r##"fill="#6b7280""##,
            "no route leaves the node",
        );
        ty += 18;
    }
    for o in &outs {
        c.text(
            MARGIN + 14,
            ty,
            13,
            &format!(r##"font-family="{MONO}" fill="#1f2937""##),
            o,
        );
        ty += 18;
    }
    for t in &node.tunnels {
        let s = t.describe();
        c.text(
            MARGIN + 14,
            ty,
            13,
            &format!(r##"font-family="{MONO}" fill="#7c2d12""##),
            &s,
        );
        ty += 18;
    }
    y += out_h;
    for n in &node.networks {
        y = network(&mut c, n, y + 30, inner);
    }
    if node.networks.is_empty() {
        c.text(
            MARGIN,
            y + 40,
            14,
            r##"fill="#6b7280""##,
            "no podwire network under NETCONFPATH",
        );
        y += 50;
    }
    let height = y + MARGIN;
    format!(
        r##"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="{FONT}">
<title>{}</title>
<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>
{}</svg>
"##,
        esc(&format!("podwire node {title}")),
        c.body
    )
}

/// Draws one network from `y`; returns where it ends.
fn network(c: &mut Canvas, n: &NetworkView, y: i32, inner: i32) -> i32 {
    let b = &n.bridge;
    // The uplink from the bridge to the way out.
    let mid = MARGIN + inner / 2;
    c.line(
        mid,
        y - 30,
        mid,
        y,
        r##"stroke="#6366f1" stroke-width="3""##,
    );
    let bh = 60;
    let fill = if b.present { "#ecfdf5" } else { "#fef2f2" };
    let stroke = if b.present { "#059669" } else { "#dc2626" };
    c.rect(
        MARGIN,
        y,
        inner,
        bh,
        &format!(r#"fill="{fill}" stroke="{stroke}" stroke-width="2""#),
    );
    let head = format!(
        "bridge {}{}  ·  network {}",
        b.name,
        if b.present { "" } else { " (missing)" },
        n.name
    );
    c.text(
        MARGIN + 14,
        y + 24,
        16,
        r##"font-weight="bold" fill="#065f46""##,
        &head,
    );
    let mut facts = Vec::new();
    if !b.addresses.is_empty() {
        facts.push(b.addresses.join(" "));
    }
    if let Some(m) = b.mtu {
        facts.push(format!("mtu {m}"));
    }
    facts.push(format!("{} port(s)", b.ports));
    for r in &n.ipam.ranges {
        facts.push(format!("{}: {}/{} used", r.subnet, r.used, r.size));
    }
    c.text(
        MARGIN + 14,
        y + 46,
        13,
        &format!(r##"font-family="{MONO}" fill="#374151""##),
        &facts.join("  ·  "),
    );
    let py = y + bh + 70;
    let total = network_width(n);
    let many = boxes(n) > PER_ROW;
    let x0 = MARGIN + (inner - total) / 2 + if many { INDENT } else { 0 };
    let rows = boxes(n).div_ceil(PER_ROW).max(1) as i32;
    // Rows after the first hang from a port line of their own, fed down the left side.
    if many {
        let bus = r##"stroke="#059669" stroke-width="3""##;
        let down = x0 - INDENT / 2;
        let last_bus = py - 40 + (rows - 1) * ROW_H;
        c.line(down, y + bh, down, last_bus, bus);
        for r in 1..rows {
            let bus_y = py - 40 + r * ROW_H;
            let in_row = (boxes(n) - r as usize * PER_ROW).min(PER_ROW) as i32;
            let right = x0 + (in_row - 1) * (POD_W + GAP) + POD_W / 2;
            c.line(down, bus_y, right, bus_y, bus);
        }
    }
    for (i, p) in n.pods.iter().enumerate() {
        let (x, top) = slot(i, x0, py);
        let from = if top == py { y + bh } else { top - 40 };
        pod(c, p, x, from, top);
    }
    for (j, (cid, ifname, lines)) in orphans(n).iter().enumerate() {
        let (x, py) = slot(n.pods.len() + j, x0, py);
        c.rect(
            x,
            py,
            POD_W,
            POD_H,
            r##"fill="#fff7f7" stroke="#dc2626" stroke-width="2" stroke-dasharray="6 4""##,
        );
        c.text(
            x + 12,
            py + 22,
            14,
            r##"font-weight="bold" fill="#991b1b""##,
            &format!("{} {ifname}", crate::short_id(cid)),
        );
        c.text(
            x + 12,
            py + 42,
            12,
            r##"fill="#b91c1c""##,
            "no interface on the node",
        );
        for (k, l) in lines.iter().enumerate() {
            c.text(
                x + 12,
                py + 60 + 18 * k as i32,
                12,
                &format!(r##"font-family="{MONO}" fill="#7f1d1d""##),
                &truncate(l, 26),
            );
        }
    }
    if n.pods.is_empty() && orphans(n).is_empty() {
        c.text(MARGIN + 14, py + 20, 13, r##"fill="#6b7280""##, "no pods");
    }
    let mut y = py + (rows - 1) * ROW_H + POD_H + 16;
    for issue in &n.issues {
        let who = if issue.container_id.is_empty() {
            String::new()
        } else {
            format!(" {}/{}", crate::short_id(&issue.container_id), issue.ifname)
        };
        // The detail's first clause: the rest is in `node show`.
        let detail = issue.detail.split(" (").next().unwrap_or_default();
        let line = format!("⚠ {}{who}: {detail}", issue.kind.as_str());
        c.text(
            MARGIN,
            y + 14,
            12,
            r##"fill="#b91c1c""##,
            &truncate(&line, (inner / 7) as usize),
        );
        y += 20;
    }
    y
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

fn pod(c: &mut Canvas, p: &PodView, x: i32, bridge_bottom: i32, y: i32) {
    let cx = x + POD_W / 2;
    let ok = p.pod_index.is_some();
    c.line(
        cx,
        bridge_bottom,
        cx,
        y,
        r##"stroke="#059669" stroke-width="3""##,
    );
    // The host veth's name beside its cable (a short cable from a row's port line: name only).
    let name_y = if y - bridge_bottom >= 60 {
        bridge_bottom + 26
    } else {
        (bridge_bottom + y) / 2 + 4
    };
    c.text(
        cx + 6,
        name_y,
        12,
        &format!(r##"font-family="{MONO}" fill="#047857""##),
        &p.host_veth,
    );
    if y - bridge_bottom >= 60 {
        c.text(
            cx + 6,
            bridge_bottom + 42,
            11,
            r##"fill="#6b7280""##,
            "veth",
        );
    }
    let (fill, stroke) = if ok {
        ("#f0f9ff", "#0284c7")
    } else {
        ("#fef2f2", "#dc2626")
    };
    c.rect(
        x,
        y,
        POD_W,
        POD_H,
        &format!(r#"fill="{fill}" stroke="{stroke}" stroke-width="2""#),
    );
    c.text(
        x + 12,
        y + 22,
        14,
        r##"font-weight="bold" fill="#0c4a6e""##,
        &format!("pod {}", crate::short_id(&p.container_id)),
    );
    let mut ly = y + 42;
    let mono = format!(r##"font-family="{MONO}" fill="#1f2937""##);
    let ips = if p.ips.is_empty() {
        "no address".to_string()
    } else {
        p.ips.join(" ")
    };
    c.text(
        x + 12,
        ly,
        12,
        &mono,
        &truncate(&format!("{} {ips}", p.ifname), 26),
    );
    ly += 18;
    c.text(
        x + 12,
        ly,
        12,
        &mono,
        p.mac.as_deref().unwrap_or("pod end not found"),
    );
    ly += 18;
    let ns = p
        .netns
        .as_deref()
        .map(|n| n.rsplit('/').next().unwrap_or(n).to_string())
        .unwrap_or_else(|| "netns ?".into());
    c.text(
        x + 12,
        ly,
        11,
        r##"fill="#6b7280""##,
        &truncate(&format!("netns {ns}"), 30),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(esc(r#"a<b>&"c'"#), "a&lt;b&gt;&amp;&quot;c&apos;");
        assert_eq!(esc("x\u{1}y"), "x y");
    }

    fn pod(i: usize) -> PodView {
        PodView {
            container_id: format!("{i:02}{}", "c".repeat(62)),
            ifname: "eth0".into(),
            host_veth: format!("veth{i:08x}"),
            host_index: 10 + i as u32,
            host_mac: None,
            netns: Some(format!("/run/netns/pod{i}")),
            pod_index: Some(2),
            mac: Some("02:00:00:00:00:01".into()),
            mtu: Some(1500),
            ips: vec![format!("10.244.1.{}/24", i + 2)],
            routes: vec![],
            allocated: vec![],
        }
    }

    #[test]
    fn many_pods_wrap_into_rows_that_fit_a_slide() {
        let net = NetworkView {
            name: "n".into(),
            file: None,
            bridge: crate::node::BridgeView {
                name: "cni0".into(),
                present: true,
                index: Some(3),
                mac: None,
                mtu: Some(1500),
                up: true,
                addresses: vec!["10.244.1.1/24".into()],
                ports: 14,
                mtu_source: None,
            },
            ipam: crate::node::IpamView {
                kind: "podwire-ipam".into(),
                data_dir: None,
                ranges: vec![],
                allocations: vec![],
            },
            pods: (0..14).map(pod).collect(),
            issues: vec![],
        };
        let node = NodeView {
            networks: vec![net],
            routes: vec![],
            tunnels: vec![],
            peer_paths: vec![],
            nftables: vec![],
            port_mappings: vec![],
            errors: vec![],
        };
        let svg = render(&node, "n");
        let width: i32 = svg
            .split("width=\"")
            .nth(1)
            .and_then(|w| w.split('"').next())
            .unwrap()
            .parse()
            .unwrap();
        assert!(width <= 1500, "{width}");
        for i in 0..14 {
            let id = format!("{i:02}{}", "c".repeat(10));
            assert!(svg.contains(&format!("pod {id}<")), "pod {id} not drawn");
        }
        if let Some(out) = std::env::var_os("PODWIRE_SVG_OUT") {
            std::fs::write(out, &svg).unwrap();
        }
    }

    #[test]
    fn an_empty_node_still_draws() {
        let node = NodeView {
            networks: vec![],
            routes: vec![],
            tunnels: vec![],
            peer_paths: vec![],
            nftables: vec![],
            port_mappings: vec![],
            errors: vec![],
        };
        let svg = render(&node, "n<1>");
        assert!(svg.starts_with("<?xml"));
        assert!(svg.contains("node n&lt;1&gt;"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }
}
