//! Item 9: a port range. Podman publishes `-p 20000-24999:20000-24999/udp` as one mapping per
//! port, so `podwire-portmap` gets 5,000 mappings in one ADD: 10,000 map elements for a
//! dual-stack pod, in one atomic nftables batch, and one conntrack flush per family. Timed
//! here: the portmap plugin alone (exec'd with the main plugin's real result as prevResult),
//! ADD then DEL, `ROUNDS` times on one pod. The reference plugin is not run: its iptables
//! rules for 5,000 ports take minutes.

use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

use crate::chain::{portmap_call, Side};
use crate::scene::{settle, Scene};
use crate::stats::{max, median, min};
use crate::subjects::Flavor;
use crate::table::Table;

/// Ports in the range.
pub const PORTS: u16 = 5000;
/// ADD + DEL rounds.
pub const ROUNDS: usize = 7;
const FIRST_PORT: u16 = 40000;

/// The range as Podman passes it: UDP, host port = container port.
pub fn mappings(first: u16, count: u16) -> Value {
    (first..first + count)
        .map(|p| json!({"hostPort": p, "containerPort": p, "protocol": "udp"}))
        .collect()
}

/// Figures of one run, ms.
#[derive(Debug, Clone, Default)]
pub struct RangeFigures {
    pub add: Vec<f64>,
    pub del: Vec<f64>,
}

/// Runs item 9 inside the scene's node netns.
pub fn measure(scene: &Scene, podwire_dir: &Path, rounds: usize) -> RangeFigures {
    let state = scene.root().join("range");
    let side = Side::new(
        Flavor::Podwire,
        podwire_dir,
        &state,
        "range",
        "bchp9",
        "10.246.9.0/24",
        None,
    );
    let pod = scene.pods("range-", 1).remove(0);
    let prev = side.add_main(&pod);
    let ports = mappings(FIRST_PORT, PORTS);
    settle(Duration::from_secs(5));
    let mut f = RangeFigures::default();
    for _ in 0..rounds {
        let add = portmap_call(&side, "ADD", &pod, &prev, ports.clone());
        f.add.push(add.elapsed.as_secs_f64() * 1e3);
        let del = portmap_call(&side, "DEL", &pod, &prev, ports.clone());
        f.del.push(del.elapsed.as_secs_f64() * 1e3);
    }
    side.del_main(&pod);
    scene.drop_pods(&[pod]);
    f
}

impl RangeFigures {
    pub fn table(&self) -> Table {
        let mut t = Table::new(&[
            "podwire-portmap, 5,000 UDP ports in one call",
            "median ms",
            "min ms",
            "max ms",
            "target",
        ]);
        for (what, v) in [("ADD", &self.add), ("DEL", &self.del)] {
            let m = median(v);
            t.row(vec![
                what.into(),
                format!("{m:.1}"),
                format!("{:.1}", min(v)),
                format!("{:.1}", max(v)),
                format!("≤ 1000 ms{}", if m <= 1000.0 { "" } else { " (missed)" }),
            ]);
        }
        t
    }

    /// The report's section (Markdown).
    pub fn markdown(&self) -> String {
        format!(
            "\n## 9. A 5,000-port range ({} rounds)\n\n\
             `podwire-portmap` alone with the {PORTS} mappings Podman passes for \
             `-p {FIRST_PORT}-{}:{FIRST_PORT}-{}/udp` (one per port; 10,000 map elements for the \
             dual-stack pod, in one atomic batch), ADD then DEL on one pod \
             (`podwire-bench --only range`). The reference plugin is not run.\n\n{}",
            self.add.len(),
            FIRST_PORT + PORTS - 1,
            FIRST_PORT + PORTS - 1,
            self.table().markdown()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_one_mapping_per_port() {
        let m = mappings(40000, 5000);
        let m = m.as_array().unwrap();
        assert_eq!(m.len(), 5000);
        assert_eq!(m[4999]["hostPort"], 44999);
        assert_eq!(m[0]["protocol"], "udp");
    }

    #[test]
    fn missed_targets_say_so() {
        let f = RangeFigures {
            add: vec![1200.0, 1300.0, 1250.0],
            del: vec![100.0, 120.0, 110.0],
        };
        let text = f.table().text();
        assert!(text.contains("1250.0"), "{text}");
        assert!(text.contains("(missed)"), "{text}");
        assert_eq!(text.matches("(missed)").count(), 1, "{text}");
    }
}
