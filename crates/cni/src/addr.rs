//! Addresses and subnets read the way Go's parser (and so the reference plugins) reads them: an
//! IPv4 octet written with a leading zero (`010.1.2.0`) is refused, because other tools read it
//! as octal. std's address parser is that strict already; ipnet's CIDR parser is not (it reads
//! `010` as ten), so a CIDR is split here and its address read by std.

use ipnet::IpNet;
use std::net::IpAddr;

/// A subnet or address with prefix, `10.1.2.0/24` or `fd00::/64`. The prefix is decimal digits
/// (Go's `net.ParseCIDR` also takes `/024`, which no tool reads differently).
pub fn parse_net(s: &str) -> Option<IpNet> {
    let (addr, prefix) = s.split_once('/')?;
    let addr: IpAddr = addr.parse().ok()?;
    if prefix.is_empty() || prefix.len() > 3 || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    IpNet::new(addr, prefix.parse().ok()?).ok()
}

/// What to add to "is not an address" when the reason is a leading zero, else "".
pub fn hint(s: &str) -> &'static str {
    let addr = s.split('/').next().unwrap_or("");
    let zero_led = addr.split(['.', ':']).any(|part| {
        part.len() > 1 && part.starts_with('0') && part.bytes().all(|b| b.is_ascii_digit())
    });
    if zero_led && addr.contains('.') {
        " (an IPv4 octet may not have a leading zero: other tools read it as octal)"
    } else {
        ""
    }
}

/// serde for an [`IpNet`] field read with [`parse_net`]: `#[serde(with = "cni::addr::cidr")]`.
pub mod cidr {
    use ipnet::IpNet;
    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(net: &IpNet, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(net)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<IpNet, D::Error> {
        let s = std::borrow::Cow::<str>::deserialize(d)?;
        super::parse_net(&s).ok_or_else(|| {
            D::Error::custom(format!(
                "{s:?} is not an address with a prefix (like 10.1.2.0/24){}",
                super::hint(&s)
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_go_reads() {
        for s in [
            "10.1.2.0/24",
            "0.0.0.0/0",
            "10.1.2.3/32",
            "fd00::/64",
            "::/0",
            "10.0.0.0/08",
        ] {
            assert_eq!(parse_net(s), s.parse::<IpNet>().ok(), "{s}");
            assert!(parse_net(s).is_some(), "{s}");
        }
    }

    #[test]
    fn refuses_leading_zeros_that_ipnet_accepts() {
        for s in [
            "010.1.2.0/24",
            "10.01.2.0/24",
            "10.1.2.00/24",
            "::ffff:010.1.2.3/128",
        ] {
            assert!(parse_net(s).is_none(), "{s}");
            assert!(hint(s).contains("leading zero"), "{s}");
        }
        assert!(
            "010.1.2.0/24".parse::<IpNet>().is_ok(),
            "ipnet alone would take it"
        );
        assert!(
            "010.1.2.3".parse::<IpAddr>().is_err(),
            "std refuses it already"
        );
    }

    #[test]
    fn refuses_other_junk() {
        for s in [
            "10.1.2.0",
            "10.1.2.0/",
            "10.1.2.0/33",
            "10.1.2.0/+4",
            "10.1.2.0/ 4",
            "fd00::/129",
            "",
        ] {
            assert!(parse_net(s).is_none(), "{s}");
        }
        assert_eq!(hint("10.1.2.0/33"), "");
        assert_eq!(hint("fd00:0::/64"), "");
    }

    #[test]
    fn serde_field_refuses_leading_zeros() {
        #[derive(serde::Deserialize, serde::Serialize)]
        struct T {
            #[serde(with = "cidr")]
            n: IpNet,
        }
        let t: T = serde_json::from_str(r#"{"n":"10.1.0.0/16"}"#).unwrap();
        assert_eq!(serde_json::to_string(&t).unwrap(), r#"{"n":"10.1.0.0/16"}"#);
        let e = serde_json::from_str::<T>(r#"{"n":"010.1.0.0/16"}"#)
            .err()
            .unwrap();
        assert!(e.to_string().contains("leading zero"), "{e}");
    }
}
