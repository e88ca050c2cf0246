//! Network namespaces: open one by path, check it really is a netns,
//! enter it temporarily (per thread) and come back, and create/delete
//! named ones under /run/netns the way `ip netns` does.
//!
//! setns() affects only the calling thread, so every switch here is
//! scoped: either by a `NetnsGuard` that switches back on drop, or by a
//! short-lived thread (`Netns::add`).

use std::fs::File;
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

use crate::error::{Error, Result};

/// Where named namespaces live, shared with iproute2.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// ioctl(NS_GET_NSTYPE) = _IO(0xb7, 0x3): which kind of namespace an fd is.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// An open handle on a network namespace. Holding it keeps the namespace
/// alive, and lets sockets be created inside it.
#[derive(Debug)]
pub struct Netns {
    file: File,
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Netns {
    /// Opens the namespace at `path` (e.g. /run/netns/X or
    /// /proc/<pid>/ns/net). Fails with `is_not_netns()` when the path is
    /// something else, and `is_not_found()` when it does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Netns> {
        let path = path.as_ref();
        let op = || format!("open netns {}", path.display());
        let file = File::open(path).map_err(|e| Error::io(op(), e))?;
        let not_netns = || Error::NotNetns {
            op: op(),
            path: path.to_path_buf(),
        };
        let fs = fstatfs(file.as_fd()).map_err(|e| Error::os(op(), e as i32))?;
        if fs.filesystem_type() != NSFS_MAGIC {
            return Err(not_netns());
        }
        // nsfs also holds mnt/pid/... namespaces: ask which kind this is.
        let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
        if kind >= 0 && kind != libc::CLONE_NEWNET {
            return Err(not_netns());
        }
        let meta = file.metadata().map_err(|e| Error::io(op(), e))?;
        Ok(Netns {
            file,
            path: path.to_path_buf(),
            dev: meta.dev(),
            ino: meta.ino(),
        })
    }

    /// The namespace of the calling thread.
    pub fn current() -> Result<Netns> {
        Netns::open("/proc/thread-self/ns/net")
    }

    /// Opens a named namespace under /run/netns.
    pub fn named(name: &str) -> Result<Netns> {
        check_name(name, "open netns")?;
        Netns::open(Path::new(NETNS_RUN_DIR).join(name))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True when both handles designate the same namespace (same nsfs inode).
    pub fn is_same(&self, other: &Netns) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }

    /// True when this is the calling thread's namespace; a plugin uses it
    /// to refuse configuring its own (host) namespace as a pod's.
    pub fn is_current(&self) -> Result<bool> {
        Ok(self.is_same(&Netns::current()?))
    }

    /// Moves the calling thread into this namespace until the guard drops.
    /// Needed for things bound to the thread's netns at open time, like
    /// /proc/sys/net files. Netlink sockets should rather use
    /// `Netlink::new_in`, which does not leave the thread switched.
    pub fn enter(&self) -> Result<NetnsGuard> {
        let original = Netns::current()?;
        setns(self.file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| Error::os(format!("enter netns {}", self.path.display()), e as i32))?;
        Ok(NetnsGuard {
            original,
            _not_send: PhantomData,
        })
    }

    /// Runs `f` inside this namespace and switches back.
    pub fn run<T>(&self, f: impl FnOnce() -> T) -> Result<T> {
        let guard = self.enter()?;
        let out = f();
        guard.restore()?;
        Ok(out)
    }

    /// Creates a named namespace like `ip netns add NAME`: a fresh netns is
    /// made in a throwaway thread and bind-mounted onto /run/netns/NAME so
    /// it outlives the thread. /run/netns is made a shared mount point so
    /// an unmount in one mount namespace propagates to the others.
    pub fn add(name: &str) -> Result<Netns> {
        let op = format!("add netns {name}");
        check_name(name, &op)?;
        let path = Path::new(NETNS_RUN_DIR).join(name);
        make_run_dir_shared().map_err(|e| e.with_op(op.clone()))?;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(op.clone(), e))?;
        let target = path.clone();
        let made = std::thread::spawn(move || -> Result<()> {
            // This thread dies right after, so its netns change is harmless.
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| Error::os("unshare", e as i32))?;
            let tid = unsafe { libc::gettid() };
            let src = format!("/proc/self/task/{tid}/ns/net");
            mount(
                Some(src.as_str()),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| Error::os("bind-mount netns", e as i32))
        })
        .join()
        .unwrap_or_else(|_| Err(Error::protocol("add netns", "worker thread panicked")));
        if let Err(e) = made {
            let _ = std::fs::remove_file(&path);
            return Err(e.with_op(op));
        }
        Netns::open(&path)
    }

    /// Deletes a named namespace like `ip netns delete NAME`. The namespace
    /// itself lives on while some process or open handle still uses it.
    pub fn delete(name: &str) -> Result<()> {
        let op = format!("delete netns {name}");
        check_name(name, &op)?;
        let path = Path::new(NETNS_RUN_DIR).join(name);
        match umount2(&path, MntFlags::MNT_DETACH) {
            // EINVAL: not a mount point (half-created); still remove the file.
            Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
            Err(e) => return Err(Error::os(op, e as i32)),
        }
        std::fs::remove_file(&path).map_err(|e| Error::io(op, e))
    }

    /// Names of the namespaces under /run/netns, sorted.
    pub fn list() -> Result<Vec<String>> {
        let dir = match std::fs::read_dir(NETNS_RUN_DIR) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io("list netns", e)),
        };
        let mut names = Vec::new();
        for entry in dir {
            let entry = entry.map_err(|e| Error::io("list netns", e))?;
            if let Some(n) = entry.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
}

impl AsFd for Netns {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }
}

/// Puts the calling thread back into its original netns when dropped.
/// Not `Send`: it must be dropped on the thread that entered.
#[must_use = "the thread returns to its namespace when the guard drops"]
pub struct NetnsGuard {
    original: Netns,
    _not_send: PhantomData<*const ()>,
}

impl NetnsGuard {
    /// Switches back now, reporting failure instead of panicking.
    pub fn restore(self) -> Result<()> {
        let mut this = std::mem::ManuallyDrop::new(self);
        let r = this.switch_back();
        // Skip Drop (no second switch, no abort) but close the original netns' fd: forgetting
        // the whole guard leaked one fd per `Netlink::new_in`.
        // SAFETY: `this` is never used again and `original` is dropped exactly once.
        unsafe { std::ptr::drop_in_place(&mut this.original) };
        r
    }

    fn switch_back(&self) -> Result<()> {
        setns(self.original.file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
            Error::os(
                format!("return to netns {}", self.original.path.display()),
                e as i32,
            )
        })
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        if let Err(e) = self.switch_back() {
            // A thread stranded in a pod's netns would silently configure
            // the wrong namespace afterwards: never carry on.
            eprintln!("podwire-kernel: {e}");
            std::process::abort();
        }
    }
}

fn check_name(name: &str, op: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        return Err(Error::invalid(op, format!("invalid netns name {name:?}")));
    }
    Ok(())
}

/// Makes /run/netns exist and be a shared mount point (iproute2 logic).
fn make_run_dir_shared() -> Result<()> {
    static LOCK: Mutex<()> = Mutex::new(());
    let _held = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let op = "prepare /run/netns";
    std::fs::create_dir_all(NETNS_RUN_DIR).map_err(|e| Error::io(op, e))?;
    let shared = || {
        mount(
            Some(""),
            NETNS_RUN_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => return Ok(()),
        Err(nix::errno::Errno::EINVAL) => {} // not a mount point yet
        Err(e) => return Err(Error::os(op, e as i32)),
    }
    mount(
        Some(NETNS_RUN_DIR),
        NETNS_RUN_DIR,
        Some("none"),
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| Error::os(op, e as i32))?;
    shared().map_err(|e| Error::os(op, e as i32))
}
