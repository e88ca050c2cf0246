//! Ethernet MAC address, printed and parsed as `aa:bb:cc:dd:ee:ff`.

use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// From a kernel link-layer address; `None` unless it is 6 bytes.
    pub fn from_slice(b: &[u8]) -> Option<MacAddr> {
        Some(MacAddr(b.try_into().ok()?))
    }

    /// A locally administered unicast address from 6 random-ish bytes.
    pub fn local_from(bytes: [u8; 6]) -> MacAddr {
        let mut b = bytes;
        b[0] = (b[0] & 0xfe) | 0x02;
        MacAddr(b)
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// Error parsing a MAC address string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid MAC address {0:?}")]
pub struct ParseMacError(pub String);

impl FromStr for MacAddr {
    type Err = ParseMacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseMacError(s.to_string());
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in out.iter_mut() {
            let p = parts.next().ok_or_else(err)?;
            if p.len() != 2 {
                return Err(err());
            }
            *byte = u8::from_str_radix(p, 16).map_err(|_| err())?;
        }
        if parts.next().is_some() {
            return Err(err());
        }
        Ok(MacAddr(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let m: MacAddr = "0a:58:0A:f4:00:01".parse().unwrap();
        assert_eq!(m.to_string(), "0a:58:0a:f4:00:01");
        assert!("0a:58:0a:f4:00".parse::<MacAddr>().is_err());
        assert!("0a:58:0a:f4:00:01:02".parse::<MacAddr>().is_err());
        assert!("0a:58:0a:f4:00:zz".parse::<MacAddr>().is_err());
    }

    #[test]
    fn local_bit() {
        let m = MacAddr::local_from([0xff; 6]);
        assert_eq!(m.0[0], 0xfe);
        assert_eq!(m.0[0] & 1, 0);
    }
}
