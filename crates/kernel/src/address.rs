//! IP addresses on links (IPv4 with broadcast, IPv6), as `ipnet::IpNet`:
//! the host address plus the prefix length of its subnet.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage, AddressScope};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use crate::error::Result;
use crate::netlink::Netlink;

/// Address family selector for listings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(addr: IpAddr) -> IpFamily {
        if addr.is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        }
    }

    pub(crate) fn af(self) -> AddressFamily {
        match self {
            IpFamily::V4 => AddressFamily::Inet,
            IpFamily::V6 => AddressFamily::Inet6,
        }
    }
}

/// An address assigned to a link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Address {
    pub index: u32,
    /// Host address and prefix length, e.g. 10.251.0.5/24.
    pub net: IpNet,
    /// IFA_F_* flags (see the `is_*` helpers).
    pub flags: u32,
    /// IFA_LABEL (IPv4 only).
    pub label: Option<String>,
}

impl Address {
    /// IPv6 duplicate address detection has not finished yet.
    pub fn is_tentative(&self) -> bool {
        self.flags & AddressFlags::Tentative.bits() != 0
    }
    /// IPv6 duplicate address detection found a conflict.
    pub fn is_dad_failed(&self) -> bool {
        self.flags & AddressFlags::Dadfailed.bits() != 0
    }
}

/// Extra knobs for adding an address.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddressOptions {
    /// IPv6: skip duplicate address detection (usable at once).
    pub nodad: bool,
    /// Do not create the prefix route of the subnet.
    pub noprefixroute: bool,
}

fn message(index: u32, net: IpNet, opts: AddressOptions) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = net.prefix_len();
    msg.header.scope = AddressScope::Universe;
    match net {
        IpNet::V4(v4) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes.push(AddressAttribute::Local(net.addr()));
            msg.attributes.push(AddressAttribute::Address(net.addr()));
            // /31 and /32 have no broadcast address (RFC 3021).
            if v4.prefix_len() < 31 {
                msg.attributes
                    .push(AddressAttribute::Broadcast(v4.broadcast()));
            }
        }
        IpNet::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            msg.attributes.push(AddressAttribute::Address(net.addr()));
        }
    }
    let mut flags = AddressFlags::empty();
    if opts.nodad {
        flags |= AddressFlags::Nodad;
    }
    if opts.noprefixroute {
        flags |= AddressFlags::Noprefixroute;
    }
    if !flags.is_empty() {
        msg.attributes.push(AddressAttribute::Flags(flags));
    }
    msg
}

impl Netlink {
    /// Adds an address; fails with `is_exists()` if the link already has it.
    pub fn address_add(&self, index: u32, net: IpNet) -> Result<()> {
        self.address_add_with(index, net, AddressOptions::default())
    }

    pub fn address_add_with(&self, index: u32, net: IpNet, opts: AddressOptions) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewAddress(message(index, net, opts)),
            NLM_F_CREATE | NLM_F_EXCL,
            &format!("add address {net} to link #{index}"),
        )
    }

    /// Adds the address or updates it if present (idempotent).
    pub fn address_replace(&self, index: u32, net: IpNet) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewAddress(message(index, net, AddressOptions::default())),
            NLM_F_CREATE | NLM_F_REPLACE,
            &format!("replace address {net} on link #{index}"),
        )
    }

    /// Removes an address; `is_not_found()` if the link does not have it.
    pub fn address_delete(&self, index: u32, net: IpNet) -> Result<()> {
        self.request(
            RouteNetlinkMessage::DelAddress(message(index, net, AddressOptions::default())),
            0,
            &format!("delete address {net} from link #{index}"),
        )
    }

    /// Addresses of one link (`Some(index)`) or of all links, optionally
    /// of one family only.
    pub fn addresses(&self, index: Option<u32>, family: Option<IpFamily>) -> Result<Vec<Address>> {
        let mut req = AddressMessage::default();
        if let Some(f) = family {
            req.header.family = f.af();
        }
        // With strict checking (set on every route socket) the kernel dumps this one
        // interface instead of walking every interface of the netns; without it (kernels
        // before 4.20) the index is ignored and the filter below does the work.
        if let Some(i) = index {
            req.header.index = i;
        }
        let replies = self.dump(RouteNetlinkMessage::GetAddress(req), "list addresses")?;
        let mut out = Vec::new();
        for m in replies {
            let RouteNetlinkMessage::NewAddress(a) = m else {
                continue;
            };
            if index.is_some_and(|i| i != a.header.index) {
                continue;
            }
            if let Some(addr) = from_message(&a) {
                if family.is_none_or(|f| f == IpFamily::of(addr.net.addr())) {
                    out.push(addr);
                }
            }
        }
        Ok(out)
    }
}

fn from_message(msg: &AddressMessage) -> Option<Address> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    let mut flags = u32::from(msg.header.flags.bits());
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Local(a) => local = Some(*a),
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Label(l) => label = Some(l.clone()),
            AddressAttribute::Flags(f) => flags = f.bits(),
            _ => {}
        }
    }
    // IFA_LOCAL is the host's own address; IFA_ADDRESS is the peer's on
    // point-to-point links and equal to it otherwise.
    let addr = local.or(address)?;
    let net = IpNet::new(addr, msg.header.prefix_len).ok()?;
    Some(Address {
        index: msg.header.index,
        net,
        flags,
        label,
    })
}

/// Every address of the calling thread's netns, of one family, through getifaddrs(3): for a
/// program that needs only the addresses, without rtnetlink's message parser in its binary.
pub fn local_addresses(family: IpFamily) -> Result<Vec<IpAddr>> {
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list we free below.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(crate::Error::io(
            "list the node's addresses",
            std::io::Error::last_os_error(),
        ));
    }
    let mut out = Vec::new();
    let mut cur = head;
    while !cur.is_null() {
        // SAFETY: a node of the list getifaddrs returned, alive until freeifaddrs.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points at a sockaddr whose family says which kind it is.
        let addr = unsafe {
            match (i32::from((*ifa.ifa_addr).sa_family), family) {
                (libc::AF_INET, IpFamily::V4) => {
                    let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
                    IpAddr::from(u32::from_be(sin.sin_addr.s_addr).to_be_bytes())
                }
                (libc::AF_INET6, IpFamily::V6) => {
                    let sin6 = &*(ifa.ifa_addr as *const libc::sockaddr_in6);
                    IpAddr::from(sin6.sin6_addr.s6_addr)
                }
                _ => continue,
            }
        };
        out.push(addr);
    }
    // SAFETY: the list getifaddrs allocated, freed once.
    unsafe { libc::freeifaddrs(head) };
    Ok(out)
}
