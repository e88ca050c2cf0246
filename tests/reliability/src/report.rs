//! What a suite tried and found, so its result can be read without running it again: printed
//! straight to stderr (libtest captures only the print macros, so this shows even when the test
//! passes) and written to `<target dir>/reliability/<suite>.txt`.

use std::io::Write;

pub struct Report {
    suite: String,
    lines: Vec<String>,
    started: std::time::Instant,
}

impl Report {
    pub fn new(suite: &str) -> Report {
        Report {
            suite: suite.to_string(),
            lines: Vec::new(),
            started: std::time::Instant::now(),
        }
    }

    pub fn line(&mut self, s: impl Into<String>) {
        self.lines.push(s.into());
    }

    /// Prints and saves the report (with the elapsed time); returns the text.
    pub fn finish(&mut self) -> String {
        let mut text = format!(
            "== {} ({:.1}s)\n",
            self.suite,
            self.started.elapsed().as_secs_f64()
        );
        for l in &self.lines {
            text.push_str("   ");
            text.push_str(l);
            text.push('\n');
        }
        let _ = std::io::stderr().write_all(text.as_bytes());
        let dir = crate::binaries::target_dir().join("reliability");
        if std::fs::create_dir_all(&dir).is_ok() {
            let _ = std::fs::write(dir.join(format!("{}.txt", self.suite)), &text);
        }
        text
    }
}
