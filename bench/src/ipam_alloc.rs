//! Item 5, IPAM alone, comes from podwire-ipam's own benchmark (`crates/ipam/benches/alloc.rs`:
//! one ADD+DEL at the 1st, 1,000th and 4,000th allocation of a /20, podwire-ipam exec'd and
//! in-process against host-local, interleaved in its run). `podwire-bench --ipam-bench` runs it last,
//! and this reads its table back so its ratios join ours.

/// One implementation's medians at each checkpoint (ms).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub name: String,
    pub ms: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct IpamAlloc {
    /// The N of each column (1, 1000, 4000).
    pub checkpoints: Vec<usize>,
    pub rows: Vec<Row>,
    /// The benchmark's output, verbatim, for the report.
    pub raw: String,
}

impl IpamAlloc {
    /// Reads the alloc benchmark's table. `None` when the text has no such table.
    pub fn parse(text: &str) -> Option<IpamAlloc> {
        let mut checkpoints = Vec::new();
        let mut rows = Vec::new();
        for line in text.lines() {
            let cols: Vec<&str> = line
                .split("  ")
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect();
            if checkpoints.is_empty() && cols.iter().any(|c| c.starts_with("N=")) {
                checkpoints = cols
                    .iter()
                    .filter_map(|c| c.strip_prefix("N=")?.parse().ok())
                    .collect();
                continue;
            }
            if cols.len() >= 2 && cols[1].ends_with(" ms") {
                let ms: Vec<f64> = cols[1..]
                    .iter()
                    .filter_map(|c| c.strip_suffix(" ms")?.trim().parse().ok())
                    .collect();
                rows.push(Row {
                    name: cols[0].to_string(),
                    ms,
                });
            }
        }
        (!checkpoints.is_empty() && !rows.is_empty()).then(|| IpamAlloc {
            checkpoints,
            rows,
            raw: text.trim_end().to_string(),
        })
    }

    /// The row whose name starts with `prefix`, e.g. "host-local", "podwire-ipam (exec)".
    pub fn row(&self, prefix: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.name.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
alloc+release of one attachment in 10.200.0.0/20 (4093 addresses), median of 31, at the N-th allocation:
                                     N=1        N=1000        N=4000    N=4000 / N=1
host-local (exec)             6.100 ms      6.500 ms      7.900 ms           1.30x
podwire-ipam (exec)           1.200 ms      1.250 ms      1.300 ms           1.08x
podwire-ipam (in-process)     0.080 ms      0.090 ms      0.095 ms           1.19x
host-local / podwire exec            5.1x          5.2x          6.1x
(total 50.2 s)
";

    #[test]
    fn reads_the_alloc_table() {
        let t = IpamAlloc::parse(SAMPLE).unwrap();
        assert_eq!(t.checkpoints, vec![1, 1000, 4000]);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.row("host-local").unwrap().ms, vec![6.1, 6.5, 7.9]);
        assert_eq!(
            t.row("podwire-ipam (in").unwrap().ms,
            vec![0.08, 0.09, 0.095]
        );
        assert!(t.raw.ends_with("(total 50.2 s)"));
    }

    #[test]
    fn other_text_is_not_a_table() {
        assert_eq!(IpamAlloc::parse("error: could not compile"), None);
    }
}
