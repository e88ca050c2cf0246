//! Minimal netlink attribute (TLV) writer and reader, for the messages
//! the rust-netlink crates do not model (nf_tables, extended acks).

pub(crate) const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// Appends attributes to a byte buffer, 4-byte aligned as netlink wants.
#[derive(Default)]
pub(crate) struct AttrWriter {
    pub buf: Vec<u8>,
}

impl AttrWriter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn bytes(&mut self, kind: u16, value: &[u8]) -> &mut Self {
        let len = 4 + value.len();
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.buf.extend_from_slice(value);
        self.pad();
        self
    }

    /// A NUL-terminated string, as the kernel's NLA_STRING/NLA_NUL_STRING want.
    pub fn str(&mut self, kind: u16, value: &str) -> &mut Self {
        let mut v = Vec::with_capacity(value.len() + 1);
        v.extend_from_slice(value.as_bytes());
        v.push(0);
        self.bytes(kind, &v)
    }

    /// nf_tables integers are big-endian.
    pub fn be32(&mut self, kind: u16, value: u32) -> &mut Self {
        self.bytes(kind, &value.to_be_bytes())
    }

    pub fn be64(&mut self, kind: u16, value: u64) -> &mut Self {
        self.bytes(kind, &value.to_be_bytes())
    }

    /// A nested attribute whose content is written by `f`.
    pub fn nest(&mut self, kind: u16, f: impl FnOnce(&mut AttrWriter)) -> &mut Self {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        let mut inner = AttrWriter {
            buf: std::mem::take(&mut self.buf),
        };
        f(&mut inner);
        self.buf = inner.buf;
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self.buf[start + 2..start + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
}

/// Iterates `(type, value)` over a buffer of attributes; stops at the
/// first malformed one (the kernel never sends those).
pub(crate) fn iter(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > buf.len() {
            return None;
        }
        let value = &buf[4..len];
        let next = ((len + 3) & !3).min(buf.len());
        buf = &buf[next..];
        Some((kind, value))
    })
}

/// The value of the first attribute of type `kind`.
pub(crate) fn find(buf: &[u8], kind: u16) -> Option<&[u8]> {
    iter(buf).find(|(k, _)| *k == kind).map(|(_, v)| v)
}

pub(crate) fn as_str(v: &[u8]) -> String {
    let s = v.split(|b| *b == 0).next().unwrap_or_default();
    String::from_utf8_lossy(s).into_owned()
}

pub(crate) fn as_be32(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(..4)?.try_into().ok()?))
}

pub(crate) fn as_be64(v: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_round_trip() {
        let mut w = AttrWriter::new();
        w.str(1, "abc").nest(2, |n| {
            n.be32(1, 7);
        });
        let attrs: Vec<_> = iter(&w.buf).collect();
        assert_eq!(attrs.len(), 2);
        assert_eq!(as_str(attrs[0].1), "abc");
        assert_eq!(attrs[1].0, 2);
        assert_eq!(as_be32(find(attrs[1].1, 1).unwrap()), Some(7));
        assert_eq!(w.buf.len() % 4, 0);
    }
}
