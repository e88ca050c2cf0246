//! `resolvConf`: a resolv.conf whose nameservers, domain, search list and options go into
//! the result's `dns`, as host-local does.

use cni::{Dns, Error, Result};
use std::path::Path;

pub fn parse(text: &str) -> Dns {
    let mut dns = Dns::default();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let mut words = line.split_whitespace();
        let rest = |w: std::str::SplitWhitespace| w.map(str::to_string).collect::<Vec<_>>();
        match words.next() {
            Some("nameserver") => dns.nameservers.extend(words.next().map(str::to_string)),
            Some("domain") => dns.domain = words.next().unwrap_or("").to_string(),
            Some("search") => dns.search = rest(words),
            Some("options") => dns.options.extend(rest(words)),
            _ => {}
        }
    }
    dns
}

pub fn read(path: &Path) -> Result<Dns> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read resolvConf {}: {e}", path.display())))?;
    Ok(parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_four_keywords() {
        let d = parse(
            "# comment\nnameserver 10.0.0.10\nnameserver fd00::10\n; other\ndomain example.com\n\
             search a.example b.example\noptions ndots:5 timeout:1\nsortlist x\n",
        );
        assert_eq!(d.nameservers, ["10.0.0.10", "fd00::10"]);
        assert_eq!(d.domain, "example.com");
        assert_eq!(d.search, ["a.example", "b.example"]);
        assert_eq!(d.options, ["ndots:5", "timeout:1"]);
        assert!(parse("").is_empty());
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_it() {
        let e = read(Path::new("/nonexistent/resolv.conf")).unwrap_err();
        assert_eq!(e.code.number(), 5);
        assert!(e.msg.contains("/nonexistent/resolv.conf"));
    }
}
