//! Benchmarks that run outside podwire-bench (the agent's scale, spoofCheck's cost) write their
//! own section of docs/benchmarks.md; podwire-bench writes the rest of the page.

use std::path::Path;

/// Puts `section` (which starts with `heading`, a `## ` line) into the page at `path`, in place
/// of an earlier section with that heading, else before "## Method".
pub fn write_section(path: &Path, heading: &str, section: &str) {
    let page = std::fs::read_to_string(path).unwrap_or_default();
    let mut kept = String::new();
    let mut skipping = false;
    for line in page.lines() {
        if line.starts_with("## ") {
            skipping = line.starts_with(heading);
        }
        if !skipping {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    let out = match kept.find("\n## Method") {
        Some(i) => format!("{}\n{section}\n{}", &kept[..i], &kept[i + 1..]),
        None => format!("{kept}\n{section}"),
    };
    std::fs::write(path, out).unwrap();
}

/// A benchmark's `--name value` argument, or `default` (the benches take a few flags and no
/// parser).
pub fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_replaces_its_earlier_self_and_goes_before_method() {
        let path = std::env::temp_dir().join(format!("{}.md", crate::unique("pwpage")));
        std::fs::write(&path, "# B\n\n## Results\nr\n\n## X\nold\n\n## Method\nm\n").unwrap();
        write_section(&path, "## X", "## X\nnew\n");
        write_section(&path, "## Y", "## Y\ny\n");
        let page = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(!page.contains("old"), "{page}");
        let (x, y, m) = (
            page.find("new").unwrap(),
            page.find("## Y").unwrap(),
            page.find("## Method").unwrap(),
        );
        assert!(x < m && y < m, "{page}");
        assert_eq!(page.matches("## X").count(), 1, "{page}");
    }
}
