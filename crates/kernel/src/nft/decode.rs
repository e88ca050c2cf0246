//! Rules read back: each expression of a listed rule decoded into what it does, so a caller
//! can recognise the rules it wrote (and tell when someone changed them) without a text parser.

use super::expr::Cmp;
use super::msg::*;
use crate::attr;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_DATA_VERDICT: u16 = 2;

/// One expression of a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expr {
    Meta {
        key: u32,
        dreg: u32,
    },
    Payload {
        base: u32,
        offset: u32,
        len: u32,
        dreg: u32,
    },
    Cmp {
        sreg: u32,
        op: Cmp,
        data: Vec<u8>,
    },
    Bitwise {
        mask: Vec<u8>,
        xor: Vec<u8>,
    },
    /// A set lookup; `dreg` Some(0): a verdict map.
    Lookup {
        set: String,
        sreg: u32,
        dreg: Option<u32>,
        inverted: bool,
    },
    Ct {
        key: u32,
        dreg: u32,
    },
    /// An anonymous `counter` with its values.
    Counter {
        packets: u64,
        bytes: u64,
    },
    /// `counter name X` (or another object by type).
    Objref {
        ty: u32,
        name: String,
    },
    Limit {
        rate: u64,
        unit: u64,
        burst: u32,
        ty: u32,
    },
    Log {
        group: Option<u16>,
        prefix: Option<String>,
    },
    /// A verdict (`accept` 1, `drop` 0, `jump` -3, `goto` -4, `return` -5).
    Verdict {
        code: i32,
        chain: Option<String>,
    },
    /// Anything else, by name.
    Other(String),
}

/// A rule as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRule {
    pub chain: String,
    pub handle: u64,
    /// Raw userdata.
    pub userdata: Option<Vec<u8>>,
    pub exprs: Vec<Expr>,
}

impl DecodedRule {
    /// The rule's comment, if its userdata is one.
    pub fn comment(&self) -> Option<String> {
        self.userdata.as_deref().and_then(comment_of)
    }
}

fn u32_of(d: &[u8], k: u16) -> u32 {
    attr::find(d, k).and_then(attr::as_be32).unwrap_or(0)
}

fn value_of(d: &[u8], k: u16) -> Vec<u8> {
    attr::find(d, k)
        .and_then(|v| attr::find(v, NFTA_DATA_VALUE))
        .map(<[u8]>::to_vec)
        .unwrap_or_default()
}

/// Decodes one expression (NFTA_EXPR_NAME + NFTA_EXPR_DATA).
pub fn decode_expr(e: &[u8]) -> Expr {
    let name = attr::find(e, NFTA_EXPR_NAME)
        .map(attr::as_str)
        .unwrap_or_default();
    let d = attr::find(e, NFTA_EXPR_DATA).unwrap_or_default();
    match name.as_str() {
        "meta" => Expr::Meta {
            key: u32_of(d, 2),
            dreg: u32_of(d, 1),
        },
        "payload" => Expr::Payload {
            dreg: u32_of(d, 1),
            base: u32_of(d, 2),
            offset: u32_of(d, 3),
            len: u32_of(d, 4),
        },
        "cmp" => match Cmp::from_u32(u32_of(d, 2)) {
            Some(op) => Expr::Cmp {
                sreg: u32_of(d, 1),
                op,
                data: value_of(d, 3),
            },
            None => Expr::Other(name),
        },
        "bitwise" => Expr::Bitwise {
            mask: value_of(d, 4),
            xor: value_of(d, 5),
        },
        "lookup" => Expr::Lookup {
            set: attr::find(d, 1).map(attr::as_str).unwrap_or_default(),
            sreg: u32_of(d, 2),
            dreg: attr::find(d, 3).and_then(attr::as_be32),
            inverted: u32_of(d, 5) & 1 != 0,
        },
        "ct" => Expr::Ct {
            key: u32_of(d, 2),
            dreg: u32_of(d, 1),
        },
        "counter" => Expr::Counter {
            bytes: attr::find(d, 1).and_then(attr::as_be64).unwrap_or(0),
            packets: attr::find(d, 2).and_then(attr::as_be64).unwrap_or(0),
        },
        "objref" => Expr::Objref {
            ty: u32_of(d, 1),
            name: attr::find(d, 2).map(attr::as_str).unwrap_or_default(),
        },
        "limit" => Expr::Limit {
            rate: attr::find(d, 1).and_then(attr::as_be64).unwrap_or(0),
            unit: attr::find(d, 2).and_then(attr::as_be64).unwrap_or(0),
            burst: u32_of(d, 3),
            ty: u32_of(d, 4),
        },
        "log" => Expr::Log {
            group: attr::find(d, 1)
                .and_then(|g| Some(u16::from_be_bytes(g.get(..2)?.try_into().ok()?))),
            prefix: attr::find(d, 2).map(attr::as_str),
        },
        "immediate" if u32_of(d, 1) == 0 => {
            let v = attr::find(d, 2)
                .and_then(|data| attr::find(data, NFTA_DATA_VERDICT))
                .unwrap_or_default();
            Expr::Verdict {
                code: u32_of(v, 1) as i32,
                chain: attr::find(v, 2).map(attr::as_str),
            }
        }
        _ => Expr::Other(name),
    }
}

/// Decodes a NEWRULE message's attributes.
pub(crate) fn decode_rule(a: &[u8]) -> DecodedRule {
    DecodedRule {
        chain: attr::find(a, NFTA_RULE_CHAIN)
            .map(attr::as_str)
            .unwrap_or_default(),
        handle: attr::find(a, NFTA_RULE_HANDLE)
            .and_then(attr::as_be64)
            .unwrap_or(0),
        userdata: attr::find(a, NFTA_RULE_USERDATA).map(<[u8]>::to_vec),
        exprs: attr::find(a, NFTA_RULE_EXPRESSIONS)
            .map(|list| {
                attr::iter(list)
                    .filter(|(k, _)| *k == NFTA_LIST_ELEM)
                    .map(|(_, e)| decode_expr(e))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Decodes the expressions an [`super::Exprs`] writer produced (for tests of encoders).
pub fn decode_exprs(buf: &[u8]) -> Vec<Expr> {
    attr::iter(buf)
        .filter(|(k, _)| *k == NFTA_LIST_ELEM)
        .map(|(_, e)| decode_expr(e))
        .collect()
}

/// The expressions `f` writes, decoded: for unit tests of rule encoders built on [`super::Exprs`].
pub fn encode_for_test(f: impl FnOnce(&mut super::Exprs<'_>)) -> Vec<Expr> {
    let mut w = crate::attr::AttrWriter::new();
    f(&mut super::Exprs::new(&mut w));
    decode_exprs(&w.buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attr::AttrWriter;
    use crate::nft::{Exprs, Field};

    fn written(f: impl FnOnce(&mut Exprs<'_>)) -> Vec<Expr> {
        let mut w = AttrWriter::new();
        f(&mut Exprs::new(&mut w));
        decode_exprs(&w.buf)
    }

    #[test]
    fn ct_direction_and_state() {
        assert_eq!(
            written(|e| e.ct_direction_reply()),
            vec![
                Expr::Ct { key: 1, dreg: 1 },
                Expr::Cmp {
                    sreg: 1,
                    op: Cmp::Eq,
                    data: vec![1]
                }
            ]
        );
        let related = written(|e| e.ct_state_any(crate::nft::CT_STATE_RELATED));
        assert_eq!(related[0], Expr::Ct { key: 0, dreg: 1 });
        assert_eq!(
            related[1],
            Expr::Bitwise {
                mask: 4u32.to_ne_bytes().to_vec(),
                xor: vec![0; 4]
            }
        );
    }

    #[test]
    fn icmpv6_range_limit_log_verdicts() {
        let x = written(|e| {
            e.icmpv6_type_between(133, 137);
            e.accept();
        });
        assert_eq!(
            x[4],
            Expr::Payload {
                base: 2,
                offset: 0,
                len: 1,
                dreg: 1
            }
        );
        assert_eq!(
            x[5],
            Expr::Cmp {
                sreg: 1,
                op: Cmp::Gte,
                data: vec![133]
            }
        );
        assert_eq!(
            x.last(),
            Some(&Expr::Verdict {
                code: 1,
                chain: None
            })
        );
        let l = written(|e| {
            e.limit_per_second(10, 20);
            e.log_group(1024, "podwire ingress deny x/a ");
        });
        assert_eq!(
            l,
            vec![
                Expr::Limit {
                    rate: 10,
                    unit: 1,
                    burst: 20,
                    ty: 0
                },
                Expr::Log {
                    group: Some(1024),
                    prefix: Some("podwire ingress deny x/a ".into())
                }
            ]
        );
        assert_eq!(
            written(|e| e.jump("pod/x/a/ingress")),
            vec![Expr::Verdict {
                code: -3,
                chain: Some("pod/x/a/ingress".into())
            }]
        );
    }

    #[test]
    fn concatenated_lookups_and_vmaps() {
        let x = written(|e| {
            e.concat_lookup(
                &[Field::Ip6Daddr, Field::L4Proto, Field::ThDport],
                "s",
                0,
                false,
            )
        });
        // Address in registers 8-11, protocol in 12, port in 13, looked up from 8.
        assert_eq!(
            x[0],
            Expr::Payload {
                base: 1,
                offset: 24,
                len: 16,
                dreg: 8
            }
        );
        assert_eq!(x[1], Expr::Meta { key: 16, dreg: 12 });
        assert_eq!(
            x[2],
            Expr::Payload {
                base: 2,
                offset: 2,
                len: 2,
                dreg: 13
            }
        );
        assert_eq!(
            x[3],
            Expr::Lookup {
                set: "s".into(),
                sreg: 8,
                dreg: None,
                inverted: false
            }
        );
        let v = written(|e| e.concat_vmap(&[Field::IpDaddr], "ingress-v4"));
        assert_eq!(
            v[1],
            Expr::Lookup {
                set: "ingress-v4".into(),
                sreg: 8,
                dreg: Some(0),
                inverted: false
            }
        );
    }
}
