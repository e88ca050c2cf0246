//! The on-disk state, in host-local's layout plus a per-attachment index beside it:
//!
//! ```text
//! <dataDir>/<network>/                 0700
//!     lock                             flock'd around every operation (host-local's lock too)
//!     last_reserved_ip.<set>           where round-robin resumes in range set <set>
//!     <ip>                             "<containerID>\r\n<ifname>", created O_EXCL: the truth
//!     .podwire/by-attachment/<containerID>:<ifname>
//!                                      our index: the attachment's IPs and its boot ID, as a
//!                                      file, or as a hard link of its first <ip> file with
//!                                      the entry in an extended attribute (put_new_entry)
//!     .podwire/reclaimed-boot          the boot whose reboot reclamation has run
//! ```
//!
//! The `<ip>` files are authoritative; the index is a cache of them keyed by attachment, so
//! DEL finds an attachment's addresses without reading every file. It is kept exact by one
//! rule: after every operation that leaves index and files consistent, the network
//! directory's mtime is set to a fixed past instant ([`SYNCED_MTIME`]). Any change to the
//! directory's entries by anyone else since (host-local allocating or releasing, a crash of
//! ours between file and index) moves the mtime to "now", and the next operation rebuilds the
//! index from the files before doing anything (one O(n) pass). Nothing is ever scanned
//! otherwise.

pub mod fsx;

use crate::config::StoreConf;
use cni::{Error, Result};
use fsx::Dir;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::File;
use std::net::IpAddr;

/// The network directory's mtime while the index matches the files: 2000-01-01T00:00:00Z.
/// The kernel stamps any entry change with the current time, which is never this.
pub const SYNCED_MTIME: (i64, i64) = (946_684_800, 0);
/// The stamp of allocations made while the boot ID could not be read: never reclaimed.
pub const UNKNOWN_BOOT: &str = "unknown";

const LOCK: &str = "lock";
const LAST_RESERVED: &str = "last_reserved_ip.";
const OWN_DIR: &str = ".podwire";
const INDEX_DIR: &str = "by-attachment";
const RECLAIMED_BOOT: &str = "reclaimed-boot";
const ENTRY_HEADER: &str = "podwire-ipam attachment v1";
/// The extended attribute that holds an entry made as a second name of an `<ip>` file.
const ENTRY_ATTR: &std::ffi::CStr = c"user.podwire";
/// The attribute value's version tag.
const ATTR_VERSION: &str = "1";

/// Linux's longest file name: an index key must fit in it.
const MAX_NAME: usize = 255;

fn io_err(what: impl std::fmt::Display, e: std::io::Error) -> Error {
    Error::io(format!("{what}: {e}"))
}

/// Who holds an address: host-local's (container ID, interface name). An empty ifname is the
/// legacy form (host-local before CNI 0.4 wrote only the container ID).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Owner {
    pub container_id: String,
    pub ifname: String,
}

impl Owner {
    /// An owner from a request: both names validated (they become a file name).
    pub fn new(container_id: &str, ifname: &str) -> Result<Owner> {
        cni::validate::container_id(container_id)?;
        cni::validate::interface_name(ifname)?;
        let o = Owner {
            container_id: container_id.to_string(),
            ifname: ifname.to_string(),
        };
        if o.key().len() > MAX_NAME {
            return Err(Error::invalid_env(format!(
                "container ID {container_id:?} is too long: with the interface name it must fit in {MAX_NAME} bytes"
            )));
        }
        Ok(o)
    }

    fn legacy(&self) -> Owner {
        Owner {
            container_id: self.container_id.clone(),
            ifname: String::new(),
        }
    }

    pub fn is_legacy(&self) -> bool {
        self.ifname.is_empty()
    }

    /// The content of an `<ip>` file, byte for byte as host-local writes it.
    fn file_content(&self) -> String {
        format!("{}\r\n{}", self.container_id, self.ifname)
    }

    /// Reads an `<ip>` file as host-local does (whitespace-trimmed); `None` if it names no
    /// valid owner.
    fn parse_file(bytes: &[u8]) -> Option<Owner> {
        let text = std::str::from_utf8(bytes).ok()?.trim();
        let (id, ifname) = text.split_once("\r\n").unwrap_or((text, ""));
        cni::validate::container_id(id).ok()?;
        if !ifname.is_empty() {
            cni::validate::interface_name(ifname).ok()?;
        }
        let o = Owner {
            container_id: id.to_string(),
            ifname: ifname.to_string(),
        };
        (o.key().len() <= MAX_NAME).then_some(o)
    }

    /// The index file name: `:` can be in neither a container ID nor an interface name.
    fn key(&self) -> String {
        format!("{}:{}", self.container_id, self.ifname)
    }

    fn from_key(key: &str) -> Option<Owner> {
        let (id, ifname) = key.split_once(':')?;
        cni::validate::container_id(id).ok()?;
        if !ifname.is_empty() {
            cni::validate::interface_name(ifname).ok()?;
        }
        Some(Owner {
            container_id: id.to_string(),
            ifname: ifname.to_string(),
        })
    }
}

impl std::fmt::Display for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_legacy() {
            write!(f, "container {}", self.container_id)
        } else {
            write!(f, "container {} ifname {}", self.container_id, self.ifname)
        }
    }
}

/// One index entry: the attachment's addresses and the boot it was made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub boot: String,
    pub ips: Vec<IpAddr>,
}

impl Entry {
    fn encode(&self) -> String {
        let mut s = format!("{ENTRY_HEADER}\nboot {}\n", self.boot);
        for ip in &self.ips {
            s.push_str(&format!("ip {ip}\n"));
        }
        s
    }

    fn decode(bytes: &[u8]) -> Option<Entry> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        if lines.next()? != ENTRY_HEADER {
            return None;
        }
        let mut boot = None;
        let mut ips = Vec::new();
        for line in lines {
            match line.split_once(' ')? {
                ("boot", b) if !b.is_empty() => boot = Some(b.to_string()),
                ("ip", a) => ips.push(a.parse().ok()?),
                _ => return None,
            }
        }
        Some(Entry { boot: boot?, ips })
    }

    /// The compact form kept in an extended attribute: `1 <boot> <ip>...`. A boot ID and one
    /// IPv4 address fit in the inode itself on ext4 (64 bytes), so no block is allocated.
    fn encode_attr(&self) -> String {
        let mut s = format!("{ATTR_VERSION} {}", self.boot);
        for ip in &self.ips {
            let _ = write!(s, " {ip}");
        }
        s
    }

    fn decode_attr(bytes: &[u8]) -> Option<Entry> {
        let mut words = std::str::from_utf8(bytes).ok()?.split(' ');
        if words.next()? != ATTR_VERSION {
            return None;
        }
        let boot = words.next().filter(|b| !b.is_empty())?.to_string();
        let ips = words.map(|w| w.parse().ok()).collect::<Option<Vec<_>>>()?;
        Some(Entry { boot, ips })
    }

    fn same(&self, other: &Entry) -> bool {
        let a: HashSet<_> = self.ips.iter().collect();
        let b: HashSet<_> = other.ips.iter().collect();
        self.boot == other.boot && a == b
    }
}

/// What the index holds under a key.
enum Stored {
    Missing,
    /// A name that decodes as no entry.
    Damaged,
    Entry(Entry),
}

/// What an `<ip>` file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Free,
    Owner(Owner),
    /// The file exists but names no valid owner: its address stays taken.
    Corrupt,
}

/// Every address of a network's state directory and who holds it (`None`: the file names no
/// valid owner), read without the lock and without writing anything: for tools that show the
/// state (`podwirectl node show`), never for allocating. A missing directory holds none.
pub fn read_allocations(conf: &StoreConf) -> Result<Vec<(IpAddr, Option<Owner>)>> {
    let dir = conf.data_dir.join(&conf.network);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("cannot list {}", dir.display()), e)),
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(ip) = name.to_str().and_then(parse_ip_name) else {
            continue;
        };
        // Released between listing and reading: not held.
        if let Ok(bytes) = std::fs::read(entry.path()) {
            out.push((ip, Owner::parse_file(&bytes)));
        }
    }
    out.sort();
    Ok(out)
}

/// One network's state, locked for as long as this lives.
pub struct Store {
    dir: Dir,
    own: Dir,
    index: Dir,
    boot: String,
    network: String,
    _lock: File,
}

/// Canonical text of an address: the `<ip>` file name (Go's `net.IP.String()` is RFC 5952 too).
fn ip_name(ip: IpAddr) -> String {
    ip.to_string()
}

fn parse_ip_name(name: &str) -> Option<IpAddr> {
    let ip: IpAddr = name.parse().ok()?;
    (ip.to_string() == name).then_some(ip)
}

impl Store {
    /// Opens `<dataDir>/<network>`, creating it (0700) if needed, takes the lock, and brings
    /// the index up to date when anything changed behind its back. `boot` stamps new entries.
    pub fn open(conf: &StoreConf, boot: &str) -> Result<Store> {
        cni::validate::network_name(&conf.network)?;
        let mut s = cni::trace::step("ipam.lock");
        let root = Dir::open_root(&conf.data_dir).map_err(|e| {
            io_err(
                format!("cannot open dataDir {}", conf.data_dir.display()),
                e,
            )
        })?;
        let where_ = conf.data_dir.join(&conf.network);
        let at = |what: &str| format!("{what} {}", where_.display());
        let (dir, _) = root
            .subdir(&conf.network, true)
            .map_err(|e| io_err(at("cannot open state directory"), e))?;
        let lock = dir
            .lock(LOCK)
            .map_err(|e| io_err(at("cannot lock state directory"), e))?;
        let mtime = dir
            .mtime()
            .map_err(|e| io_err(at("cannot stat state directory"), e))?;
        let (own, made_own) = dir
            .subdir(OWN_DIR, true)
            .map_err(|e| io_err(at("cannot open .podwire in"), e))?;
        let (index, made_index) = own
            .subdir(INDEX_DIR, true)
            .map_err(|e| io_err(at("cannot open .podwire/by-attachment in"), e))?;
        let store = Store {
            dir,
            own,
            index,
            boot: boot.to_string(),
            network: conf.network.clone(),
            _lock: lock,
        };
        s.detail(format_args!("{}/{LOCK}", where_.display()));
        s.end();
        if mtime != SYNCED_MTIME || made_own || made_index {
            let mut s = cni::trace::step("ipam.scan");
            store.reconcile()?;
            s.detail("index rebuilt from the address files");
        }
        Ok(store)
    }

    /// Marks index and files consistent. Call only when they are: skipping it is always safe
    /// (the next operation rebuilds the index).
    pub fn finish(self) {
        if let Err(e) = self.dir.set_mtime(SYNCED_MTIME.0, SYNCED_MTIME.1) {
            cni::log::warn(&format!(
                "network {}: cannot mark the index in sync ({e}); the next call rebuilds it",
                self.network
            ));
        }
    }

    /// Rebuilds the index from the `<ip>` files. Entries keep their boot stamp; attachments
    /// seen for the first time get the current boot (we cannot know theirs, so they are never
    /// taken for stale by reboot reclamation).
    pub fn reconcile(&self) -> Result<()> {
        let names = self
            .dir
            .list()
            .map_err(|e| io_err(format!("network {}: cannot list state", self.network), e))?;
        let mut held: HashMap<Owner, Vec<IpAddr>> = HashMap::new();
        let mut unreadable = HashSet::new();
        for name in names {
            if name.starts_with(".tmp.") {
                // Left by a process killed mid-write (we hold the lock: no writer is active).
                let _ = self.dir.remove(&name);
                continue;
            }
            let Some(ip) = parse_ip_name(&name) else {
                continue;
            };
            match self.holder(ip) {
                Ok(Holder::Owner(o)) => held.entry(o).or_default().push(ip),
                Ok(Holder::Free) => {}
                Ok(Holder::Corrupt) => cni::log::warn(&format!(
                    "network {}: allocation file {ip} names no valid owner; its address stays reserved",
                    self.network
                )),
                Err(e) => {
                    cni::log::warn(&format!("{e}; its address stays reserved"));
                    unreadable.insert(ip);
                }
            }
        }
        let mut old = HashMap::new();
        for key in self.index_keys()? {
            match (Owner::from_key(&key), self.read_entry(&key)) {
                (Some(o), Ok(Some(e))) => {
                    old.insert(o, e);
                }
                // A damaged entry or a stray name: rewritten below if its files exist.
                (_, Ok(None)) | (None, _) => {
                    let _ = self.index.remove(&key);
                }
                (Some(_), Err(e)) => cni::log::warn(&e.to_string()),
            }
        }
        // An unreadable file keeps the entry that listed it: DEL and GC then report it
        // instead of forgetting it.
        for (owner, e) in &old {
            for ip in e.ips.iter().filter(|ip| unreadable.contains(*ip)) {
                held.entry(owner.clone()).or_default().push(*ip);
            }
        }
        for (owner, mut ips) in held {
            ips.sort_by_key(|ip| (ip.is_ipv6(), *ip));
            let boot = old
                .get(&owner)
                .map(|e| e.boot.clone())
                .unwrap_or_else(|| self.boot.clone());
            let entry = Entry { boot, ips };
            if old.remove(&owner).is_some_and(|e| e.same(&entry)) {
                continue;
            }
            self.put_entry(&owner, &entry)?;
        }
        for owner in old.keys() {
            self.index
                .remove(&owner.key())
                .map_err(|e| io_err(format!("cannot remove index entry {}", owner.key()), e))?;
        }
        Ok(())
    }

    /// Index file names (temporary files, which start with '.', left out and cleaned up).
    fn index_keys(&self) -> Result<Vec<String>> {
        let names = self
            .index
            .list()
            .map_err(|e| io_err(format!("network {}: cannot list index", self.network), e))?;
        Ok(names
            .into_iter()
            .filter(|n| {
                if n.starts_with(".tmp.") {
                    let _ = self.index.remove(n);
                }
                !n.starts_with('.')
            })
            .collect())
    }

    /// An index entry; `Ok(None)` if there is none or it does not decode (reconcile then
    /// rebuilds it from the files, which are the truth).
    fn read_entry(&self, key: &str) -> Result<Option<Entry>> {
        Ok(match self.stored_entry(key)? {
            Stored::Entry(e) => Some(e),
            Stored::Missing | Stored::Damaged => None,
        })
    }

    fn stored_entry(&self, key: &str) -> Result<Stored> {
        let found = self
            .index
            .read_with_attr(key, Some(ENTRY_ATTR))
            .map_err(|e| io_err(format!("cannot read index entry {key}"), e))?;
        let Some(data) = found else {
            return Ok(Stored::Missing);
        };
        // An entry file, or a second name of an `<ip>` file (its content is the owner) with
        // the entry in its attribute: see put_new_entry.
        Ok(Entry::decode(&data.content)
            .or_else(|| data.attr.as_deref().and_then(Entry::decode_attr))
            .map_or(Stored::Damaged, Stored::Entry))
    }

    /// The entry for an attachment, straight from the index.
    pub fn entry(&self, owner: &Owner) -> Result<Option<Entry>> {
        let key = owner.key();
        match self.stored_entry(&key)? {
            Stored::Entry(e) => Ok(Some(e)),
            Stored::Missing => Ok(None),
            Stored::Damaged => {
                // Rebuild from the files and read again.
                self.reconcile()?;
                self.read_entry(&key)
            }
        }
    }

    /// The entry of an attachment that had none, made without creating a file: a second name
    /// of its first `<ip>` file (which this operation created, so it names this owner), the
    /// entry in that file's extended attribute. Creating a file costs an inode allocation,
    /// which on ext4 without a journal scans past every inode freed in the last minute (0.15
    /// ms and more per ADD on a node that churns pods); a link and an attribute do not. Falls
    /// back to an entry file where links or attributes are refused, or a stale name is in the
    /// way. The `<ip>` file's content is never written here: it stays host-local's.
    pub fn put_new_entry(&self, owner: &Owner, entry: &Entry) -> Result<()> {
        if let Some(first) = entry.ips.first() {
            let name = ip_name(*first);
            let linked = self
                .dir
                .set_attr(&name, ENTRY_ATTR, entry.encode_attr().as_bytes())
                .and_then(|_| self.dir.link_into(&name, &self.index, &owner.key()));
            if let Ok(true) = linked {
                return Ok(());
            }
        }
        self.put_entry(owner, entry)
    }

    /// Writes an attachment's entry as a file, replacing any entry it had (temp file + rename:
    /// an entry that is a second name of an `<ip>` file is replaced as a name, never written
    /// through).
    pub fn put_entry(&self, owner: &Owner, entry: &Entry) -> Result<()> {
        self.index
            .write_atomic(&owner.key(), entry.encode().as_bytes())
            .map_err(|e| io_err(format!("cannot write index entry for {owner}"), e))
    }

    pub fn entries(&self) -> Result<Vec<(Owner, Entry)>> {
        let mut out = Vec::new();
        for key in self.index_keys()? {
            if let (Some(o), Some(e)) = (Owner::from_key(&key), self.read_entry(&key)?) {
                out.push((o, e));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Who holds `ip`, read from its file. An unreadable file is an error, never "free".
    pub fn holder(&self, ip: IpAddr) -> Result<Holder> {
        match self.dir.read(&ip_name(ip)) {
            Ok(None) => Ok(Holder::Free),
            Ok(Some(bytes)) => Ok(Owner::parse_file(&bytes)
                .map(Holder::Owner)
                .unwrap_or(Holder::Corrupt)),
            Err(e) => Err(io_err(
                format!("network {}: cannot read allocation file {ip}", self.network),
                e,
            )),
        }
    }

    /// The attachment's addresses whose files still name it (the index entry checked against
    /// the truth).
    pub fn owned_ips(&self, owner: &Owner) -> Result<Vec<IpAddr>> {
        let Some(entry) = self.entry(owner)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for ip in entry.ips {
            if self.holder(ip)? == Holder::Owner(owner.clone()) {
                out.push(ip);
            }
        }
        Ok(out)
    }

    /// Claims `ip` for `owner` by creating its file exclusively: `Ok(false)` if taken.
    pub fn try_reserve(&self, ip: IpAddr, owner: &Owner) -> Result<bool> {
        self.dir
            .create_new(&ip_name(ip), owner.file_content().as_bytes())
            .map_err(|e| {
                io_err(
                    format!(
                        "network {}: cannot create allocation file {ip}",
                        self.network
                    ),
                    e,
                )
            })
    }

    /// Whether `ip` has a file (of any kind or content: only a missing file is free).
    pub fn is_taken(&self, ip: IpAddr) -> Result<bool> {
        self.dir.exists(&ip_name(ip)).map_err(|e| {
            io_err(
                format!("network {}: cannot stat allocation file {ip}", self.network),
                e,
            )
        })
    }

    /// Removes an address's file (undoing our own `try_reserve`).
    pub fn unreserve(&self, ip: IpAddr) -> Result<()> {
        self.dir
            .remove(&ip_name(ip))
            .map(|_| ())
            .map_err(|e| io_err(format!("cannot remove allocation file {ip}"), e))
    }

    /// Where round-robin resumes in range set `set`. Unreadable means "from the start", as in
    /// host-local: it costs round-robin once, never an address.
    pub fn last_reserved(&self, set: usize) -> Option<IpAddr> {
        let bytes = self
            .dir
            .read(&format!("{LAST_RESERVED}{set}"))
            .ok()
            .flatten()?;
        std::str::from_utf8(&bytes).ok()?.trim().parse().ok()
    }

    pub fn set_last_reserved(&self, set: usize, ip: IpAddr) -> Result<()> {
        self.dir
            .write_in_place(&format!("{LAST_RESERVED}{set}"), ip_name(ip).as_bytes())
            .map_err(|e| io_err(format!("cannot write {LAST_RESERVED}{set}"), e))
    }

    /// Releases an attachment's addresses: each file is removed only if it still names this
    /// owner (a file now held by someone else, or corrupt, is left alone). The entry goes once
    /// every file was dealt with; an unreadable file is an error and keeps the entry.
    pub fn release(&self, owner: &Owner) -> Result<Vec<IpAddr>> {
        let Some(entry) = self.entry(owner)? else {
            return Ok(Vec::new());
        };
        let mut released = Vec::new();
        for ip in entry.ips {
            match self.holder(ip)? {
                Holder::Owner(o) if &o == owner => {
                    self.unreserve(ip)?;
                    released.push(ip);
                }
                Holder::Free => {}
                other => cni::log::warn(&format!(
                    "network {}: {ip} was indexed for {owner} but its file says {other:?}; left in place",
                    self.network
                )),
            }
        }
        self.index
            .remove(&owner.key())
            .map_err(|e| io_err(format!("cannot remove index entry for {owner}"), e))?;
        Ok(released)
    }

    /// DEL's lookup, as host-local's: the exact (container, ifname), else a legacy
    /// container-only allocation.
    pub fn release_attachment(&self, owner: &Owner) -> Result<Vec<IpAddr>> {
        let released = self.release(owner)?;
        if !released.is_empty() || self.entry(owner)?.is_some() {
            return Ok(released);
        }
        self.release(&owner.legacy())
    }

    /// Reboot reclamation: once per boot, releases every allocation stamped with another
    /// boot. Returns how many attachments were released (0 when already done this boot).
    pub fn reclaim_other_boots(&self) -> Result<usize> {
        if self.boot == UNKNOWN_BOOT {
            return Err(Error::io(
                "reclaimAfterReboot is set but the boot ID cannot be read",
            ));
        }
        let marker = format!("boot {}\n", self.boot);
        let done = self.own.read(RECLAIMED_BOOT).ok().flatten();
        if done.as_deref() == Some(marker.as_bytes()) {
            return Ok(0);
        }
        let mut released = 0;
        for (owner, entry) in self.entries()? {
            if entry.boot == self.boot || entry.boot == UNKNOWN_BOOT {
                continue;
            }
            // One entry that cannot be released must not block every ADD of this boot:
            // it is reported and left to GC.
            match self.release(&owner) {
                Ok(ips) => {
                    cni::log::info(&format!(
                        "network {}: reclaimed {ips:?} of {owner}, allocated in boot {} (now {})",
                        self.network, entry.boot, self.boot
                    ));
                    released += 1;
                }
                Err(e) => cni::log::warn(&format!(
                    "network {}: cannot reclaim {owner} after reboot: {e}",
                    self.network
                )),
            }
        }
        self.own
            .write_atomic(RECLAIMED_BOOT, marker.as_bytes())
            .map_err(|e| io_err("cannot write .podwire/reclaimed-boot", e))?;
        Ok(released)
    }

    pub fn boot(&self) -> &str {
        &self.boot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    struct Tmp(PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn setup(tag: &str) -> (Tmp, StoreConf) {
        let p = std::env::temp_dir().join(format!("podwire-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        let conf = StoreConf {
            network: "net1".into(),
            data_dir: p.clone(),
            reclaim_after_reboot: false,
            boot_id_file: PathBuf::new(),
        };
        (Tmp(p), conf)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn owner(id: &str) -> Owner {
        Owner::new(id, "eth0").unwrap()
    }

    #[test]
    fn owner_parsing_matches_host_local() {
        assert_eq!(Owner::parse_file(b"abc\r\neth0"), Some(owner("abc")));
        assert_eq!(Owner::parse_file(b"  abc\r\neth0\n"), Some(owner("abc")));
        assert_eq!(
            Owner::parse_file(b"abc"),
            Some(Owner {
                container_id: "abc".into(),
                ifname: String::new()
            })
        );
        assert_eq!(Owner::parse_file(b""), None);
        assert_eq!(Owner::parse_file(b"a/b\r\neth0"), None);
        assert_eq!(Owner::parse_file(b"\xff\xfe"), None);
        assert_eq!(owner("abc").file_content(), "abc\r\neth0");
        assert_eq!(
            Owner::from_key("a_b.c:e_1"),
            Some(Owner::new("a_b.c", "e_1").unwrap())
        );
        assert!(Owner::new(&"x".repeat(251), "eth0").is_err());
    }

    #[test]
    fn entries_round_trip_and_reject_garbage() {
        let e = Entry {
            boot: "b1".into(),
            ips: vec![ip("10.0.0.2"), ip("fd00::2")],
        };
        assert_eq!(Entry::decode(e.encode().as_bytes()), Some(e));
        assert_eq!(Entry::decode(b"junk"), None);
        assert_eq!(
            Entry::decode(format!("{ENTRY_HEADER}\nip 1.2.3.4\n").as_bytes()),
            None
        );
        assert_eq!(
            Entry::decode(format!("{ENTRY_HEADER}\nboot b\nip x\n").as_bytes()),
            None
        );
    }

    #[test]
    fn reserve_index_release_and_sync_marker() {
        let (t, conf) = setup("basic");
        let s = Store::open(&conf, "boot1").unwrap();
        assert!(s.try_reserve(ip("10.0.0.2"), &owner("c1")).unwrap());
        assert!(!s.try_reserve(ip("10.0.0.2"), &owner("c2")).unwrap());
        s.put_entry(
            &owner("c1"),
            &Entry {
                boot: "boot1".into(),
                ips: vec![ip("10.0.0.2")],
            },
        )
        .unwrap();
        s.finish();
        let dir = t.0.join("net1");
        assert_eq!(
            std::fs::read(dir.join("10.0.0.2")).unwrap(),
            b"c1\r\neth0".to_vec()
        );
        use std::os::unix::fs::MetadataExt;
        assert_eq!(std::fs::metadata(&dir).unwrap().mtime(), SYNCED_MTIME.0);
        let s = Store::open(&conf, "boot1").unwrap();
        assert_eq!(s.owned_ips(&owner("c1")).unwrap(), [ip("10.0.0.2")]);
        assert_eq!(
            s.release_attachment(&owner("c1")).unwrap(),
            [ip("10.0.0.2")]
        );
        assert!(s.release_attachment(&owner("c1")).unwrap().is_empty());
        assert!(!dir.join("10.0.0.2").exists());
        s.finish();
    }

    #[test]
    fn a_new_entry_is_a_second_name_of_its_first_file() {
        let (t, conf) = setup("linked");
        let s = Store::open(&conf, "boot1").unwrap();
        let e = Entry {
            boot: "e48aaa2e-c9b3-4660-95ad-7fa8e0930b00".into(),
            ips: vec![ip("10.0.0.2"), ip("fd00::2")],
        };
        assert_eq!(
            Entry::decode_attr(e.encode_attr().as_bytes()),
            Some(e.clone())
        );
        assert_eq!(Entry::decode_attr(b"2 b 10.0.0.2"), None);
        assert_eq!(Entry::decode_attr(b"1 b x"), None);
        assert!(s.try_reserve(ip("10.0.0.2"), &owner("c1")).unwrap());
        assert!(s.try_reserve(ip("fd00::2"), &owner("c1")).unwrap());
        s.put_new_entry(&owner("c1"), &e).unwrap();
        s.finish();
        let dir = t.0.join("net1");
        let key = dir.join(".podwire/by-attachment/c1:eth0");
        use std::os::unix::fs::MetadataExt;
        let ino = |p: &std::path::Path| std::fs::metadata(p).unwrap().ino();
        assert_eq!(
            ino(&key),
            ino(&dir.join("10.0.0.2")),
            "no file created for it"
        );
        assert_eq!(
            std::fs::read(dir.join("10.0.0.2")).unwrap(),
            b"c1\r\neth0".to_vec(),
            "the <ip> file is still host-local's"
        );
        let s = Store::open(&conf, "boot1").unwrap();
        assert_eq!(s.entry(&owner("c1")).unwrap(), Some(e.clone()));
        let mut owned = s.owned_ips(&owner("c1")).unwrap();
        owned.sort();
        assert_eq!(owned, [ip("10.0.0.2"), ip("fd00::2")]);
        // Replacing it replaces the name, never the <ip> file's content.
        let e2 = Entry {
            boot: "b2".into(),
            ips: e.ips.clone(),
        };
        s.put_entry(&owner("c1"), &e2).unwrap();
        assert_eq!(s.entry(&owner("c1")).unwrap(), Some(e2));
        assert_eq!(std::fs::read(dir.join("10.0.0.2")).unwrap(), b"c1\r\neth0");
        s.put_new_entry(&owner("c1"), &e).unwrap();
        assert_eq!(
            s.entry(&owner("c1")).unwrap(),
            Some(e),
            "a name in the way: replaced"
        );
        let mut released = s.release_attachment(&owner("c1")).unwrap();
        released.sort();
        assert_eq!(released, [ip("10.0.0.2"), ip("fd00::2")]);
        assert!(!key.exists());
        assert!(!dir.join("10.0.0.2").exists());
        s.finish();
    }

    #[test]
    fn foreign_files_are_indexed_on_the_next_open() {
        let (t, conf) = setup("foreign");
        Store::open(&conf, "boot1").unwrap().finish();
        let dir = t.0.join("net1");
        // What host-local writes, behind our back.
        std::fs::write(dir.join("10.0.0.9"), "hl1\r\neth0").unwrap();
        std::fs::write(dir.join("fd00::9"), "hl1\r\neth0").unwrap();
        std::fs::write(dir.join("10.0.0.10"), "old-style").unwrap();
        std::fs::write(dir.join("10.0.0.11"), "").unwrap();
        let s = Store::open(&conf, "boot2").unwrap();
        let mut ips = s.owned_ips(&owner("hl1")).unwrap();
        ips.sort();
        assert_eq!(ips, [ip("10.0.0.9"), ip("fd00::9")]);
        assert_eq!(s.entry(&owner("hl1")).unwrap().unwrap().boot, "boot2");
        // Legacy container-only files are released by DEL of any ifname, as host-local does.
        assert_eq!(
            s.release_attachment(&Owner::new("old-style", "net9").unwrap())
                .unwrap(),
            [ip("10.0.0.10")]
        );
        // A corrupt file stays: its address is never handed out.
        assert_eq!(s.holder(ip("10.0.0.11")).unwrap(), Holder::Corrupt);
        assert!(s.is_taken(ip("10.0.0.11")).unwrap());
        s.finish();
        // host-local releasing our allocation is noticed too.
        std::fs::remove_file(dir.join("10.0.0.9")).unwrap();
        let s = Store::open(&conf, "boot2").unwrap();
        assert_eq!(s.owned_ips(&owner("hl1")).unwrap(), [ip("fd00::9")]);
    }

    #[test]
    fn a_deleted_index_is_rebuilt() {
        let (t, conf) = setup("rebuild");
        let s = Store::open(&conf, "b").unwrap();
        s.try_reserve(ip("10.0.0.2"), &owner("c1")).unwrap();
        s.put_entry(
            &owner("c1"),
            &Entry {
                boot: "b".into(),
                ips: vec![ip("10.0.0.2")],
            },
        )
        .unwrap();
        s.finish();
        std::fs::remove_dir_all(t.0.join("net1/.podwire/by-attachment")).unwrap();
        let s = Store::open(&conf, "b").unwrap();
        assert_eq!(s.owned_ips(&owner("c1")).unwrap(), [ip("10.0.0.2")]);
        // A damaged entry is rebuilt from the files too.
        std::fs::write(t.0.join("net1/.podwire/by-attachment/c1:eth0"), "garbage").unwrap();
        assert_eq!(s.owned_ips(&owner("c1")).unwrap(), [ip("10.0.0.2")]);
        // A damaged entry with no files behind it goes away instead of lingering.
        let stray = t.0.join("net1/.podwire/by-attachment/zz:eth0");
        std::fs::write(&stray, "garbage").unwrap();
        assert_eq!(s.entry(&owner("zz")).unwrap(), None);
        assert!(!stray.exists());
    }

    #[test]
    fn an_unreadable_file_is_an_error_not_free() {
        let (t, conf) = setup("unreadable");
        let s = Store::open(&conf, "b").unwrap();
        std::fs::create_dir(t.0.join("net1/10.0.0.5")).unwrap();
        let e = s.holder(ip("10.0.0.5")).unwrap_err();
        assert_eq!(e.code.number(), 5);
        assert!(s.is_taken(ip("10.0.0.5")).unwrap());
        assert!(!s.try_reserve(ip("10.0.0.5"), &owner("x")).unwrap());
    }

    #[test]
    fn symlinked_network_dir_is_refused() {
        let (t, conf) = setup("symlink");
        std::fs::create_dir_all(&t.0).unwrap();
        std::os::unix::fs::symlink("/tmp", t.0.join("net1")).unwrap();
        let e = Store::open(&conf, "b").err().unwrap();
        assert_eq!(e.code.number(), 5);
    }
}
