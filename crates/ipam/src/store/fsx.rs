//! A directory handle whose every operation is relative to its file descriptor and never
//! follows a symlink (`openat` + `O_NOFOLLOW`): swapping a path component for a link cannot
//! redirect a write. New files are 0600, new directories 0700.

use std::ffi::{CStr, CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

pub struct Dir {
    fd: OwnedFd,
}

/// A regular file's content and, when asked for, one of its extended attributes.
#[derive(Debug, PartialEq, Eq)]
pub struct FileData {
    pub content: Vec<u8>,
    pub attr: Option<Vec<u8>>,
}

fn cstr(name: &str) -> io::Result<CString> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a plain file name"),
        ));
    }
    CString::new(name).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in name"))
}

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

impl Dir {
    /// Opens (creating with 0700 if missing) the configured data directory. It is the admin's
    /// choice and may itself be reached through a symlink; nothing below it is.
    pub fn open_root(path: &Path) -> io::Result<Dir> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)?;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(path)?;
        Ok(Dir { fd: f.into() })
    }

    fn openat(&self, name: &str, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
        let c = cstr(name)?;
        // SAFETY: a valid dirfd and NUL-terminated name; the returned fd is owned by us.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                libc::c_uint::from(mode),
            )
        })?;
        // SAFETY: fd was just returned by openat and is not owned elsewhere.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Opens a subdirectory, creating it (0700) when `create`; says whether it was created.
    /// A symlink is an error.
    pub fn subdir(&self, name: &str, create: bool) -> io::Result<(Dir, bool)> {
        let mut created = false;
        if create {
            let c = cstr(name)?;
            // SAFETY: valid dirfd and name.
            let r = unsafe { libc::mkdirat(self.fd.as_raw_fd(), c.as_ptr(), 0o700) };
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(e);
                }
            } else {
                created = true;
            }
        }
        let fd = self.openat(name, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        Ok((Dir { fd }, created))
    }

    /// Writes `content` to a fresh `.tmp.<pid>.<name>` (0600, never through a link) and returns
    /// that name; a leftover of a killed process with our pid is cleared first. On a failed write
    /// the temporary file is removed again.
    fn write_temp(&self, name: &str, content: &[u8]) -> io::Result<String> {
        let tmp = format!(".tmp.{}.{name}", std::process::id());
        let _ = self.remove(&tmp);
        let fd = self.openat(&tmp, libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL, 0o600)?;
        if let Err(e) = File::from(fd).write_all(content) {
            let _ = self.remove(&tmp);
            return Err(e);
        }
        Ok(tmp)
    }

    /// Creates `name` holding `content` only if it does not exist: `Ok(false)` if it does.
    /// The content is written under a temporary name and then linked into place (link(2) never
    /// replaces): a process killed part-way leaves at worst a `.tmp.` file, never an empty
    /// `name`, which (naming no owner) would keep its address taken for ever.
    pub fn create_new(&self, name: &str, content: &[u8]) -> io::Result<bool> {
        let tmp = self.write_temp(name, content)?;
        let linked = {
            crate::fault::point("ipam-file");
            let (from, to) = (cstr(&tmp)?, cstr(name)?);
            // SAFETY: valid dirfds and names; flags 0: a symlink is linked as itself.
            check(unsafe {
                libc::linkat(
                    self.fd.as_raw_fd(),
                    from.as_ptr(),
                    self.fd.as_raw_fd(),
                    to.as_ptr(),
                    0,
                )
            })
        };
        let _ = self.remove(&tmp);
        match linked {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Opens a regular file for reading; `None` if it does not exist. A symlink or anything
    /// other than a regular file is an error, never silently skipped.
    fn open_regular(&self, name: &str) -> io::Result<Option<File>> {
        let fd = match self.openat(name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
                return Err(io::Error::other("is a symlink"))
            }
            Err(e) => return Err(e),
        };
        let f = File::from(fd);
        if !f.metadata()?.is_file() {
            return Err(io::Error::other("is not a regular file"));
        }
        Ok(Some(f))
    }

    /// Reads a regular file; `None` if it does not exist. A symlink or anything other than a
    /// regular file is an error, never silently skipped.
    pub fn read(&self, name: &str) -> io::Result<Option<Vec<u8>>> {
        Ok(self.read_with_attr(name, None)?.map(|d| d.content))
    }

    /// Reads a regular file as [`Dir::read`] does, and its extended attribute `attr` when asked
    /// for (`None` when the file has none, or the file system keeps none).
    pub fn read_with_attr(&self, name: &str, attr: Option<&CStr>) -> io::Result<Option<FileData>> {
        let Some(mut f) = self.open_regular(name)? else {
            return Ok(None);
        };
        let mut content = Vec::new();
        f.read_to_end(&mut content)?;
        let attr = match attr {
            Some(attr) => get_attr(&f, attr)?,
            None => None,
        };
        Ok(Some(FileData { content, attr }))
    }

    /// Sets the extended attribute `attr` of the regular file `name` (never through a link).
    pub fn set_attr(&self, name: &str, attr: &CStr, value: &[u8]) -> io::Result<()> {
        let f = self
            .open_regular(name)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        // SAFETY: valid fd, NUL-terminated name, and a buffer of value.len() bytes.
        check(unsafe {
            libc::fsetxattr(
                f.as_raw_fd(),
                attr.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        })
        .map(|_| ())
    }

    /// Makes `to` in `into` a second name of this directory's file `name` (link(2), which never
    /// replaces, and a symlink is linked as itself): `Ok(false)` if `to` exists.
    pub fn link_into(&self, name: &str, into: &Dir, to: &str) -> io::Result<bool> {
        let (from, to) = (cstr(name)?, cstr(to)?);
        // SAFETY: valid dirfds and names; flags 0: links are not followed.
        let r = unsafe {
            libc::linkat(
                self.fd.as_raw_fd(),
                from.as_ptr(),
                into.fd.as_raw_fd(),
                to.as_ptr(),
                0,
            )
        };
        match check(r) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Whether an entry of that name exists (of any type, links not followed).
    pub fn exists(&self, name: &str) -> io::Result<bool> {
        let c = cstr(name)?;
        // SAFETY: zeroed stat is a valid out-buffer; valid dirfd and name.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let r = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::NotFound {
            Ok(false)
        } else {
            Err(e)
        }
    }

    /// Overwrites (or creates, 0600) `name` in place, as host-local does for `last_reserved_ip`.
    /// No O_TRUNC: on ext4 a truncate to 0 followed by a rewrite forces block allocation and
    /// writeback at close (auto_da_alloc), and the next truncate waits for that I/O and frees
    /// the block again: 0.2–3 ms per ADD. Overwriting and cutting the tail only when the new
    /// content is shorter keeps the file's block and touches only the page cache.
    pub fn write_in_place(&self, name: &str, content: &[u8]) -> io::Result<()> {
        let fd = self.openat(name, libc::O_WRONLY | libc::O_CREAT, 0o600)?;
        let f = File::from(fd);
        std::os::unix::fs::FileExt::write_all_at(&f, content, 0)?;
        if f.metadata()?.len() > content.len() as u64 {
            f.set_len(content.len() as u64)?;
        }
        Ok(())
    }

    /// Replaces `name` atomically (temp file + rename): readers see the old or the new content.
    pub fn write_atomic(&self, name: &str, content: &[u8]) -> io::Result<()> {
        let tmp = self.write_temp(name, content)?;
        let renamed = (|| {
            let (from, to) = (cstr(&tmp)?, cstr(name)?);
            // SAFETY: valid dirfds and names; renameat replaces a link itself, never its target.
            check(unsafe {
                libc::renameat(
                    self.fd.as_raw_fd(),
                    from.as_ptr(),
                    self.fd.as_raw_fd(),
                    to.as_ptr(),
                )
            })
            .map(|_| ())
        })();
        if renamed.is_err() {
            let _ = self.remove(&tmp);
        }
        renamed
    }

    /// Removes a file: `Ok(false)` if it was already gone.
    pub fn remove(&self, name: &str) -> io::Result<bool> {
        let c = cstr(name)?;
        // SAFETY: valid dirfd and name.
        let r = unsafe { libc::unlinkat(self.fd.as_raw_fd(), c.as_ptr(), 0) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::NotFound {
            Ok(false)
        } else {
            Err(e)
        }
    }

    /// The names in the directory (not `.`/`..`; names that are not UTF-8 are skipped: no
    /// file we or host-local write has one).
    pub fn list(&self) -> io::Result<Vec<String>> {
        // A fresh open file description of the directory itself, so the listing has its own
        // offset.
        // SAFETY: valid dirfd; "." names the directory itself.
        let raw = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c".".as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: raw is an open directory fd whose ownership passes to the DIR stream.
        let dirp = unsafe { libc::fdopendir(raw) };
        if dirp.is_null() {
            let e = io::Error::last_os_error();
            // SAFETY: fdopendir failed, so we still own raw.
            unsafe { libc::close(raw) };
            return Err(e);
        }
        let mut names = Vec::new();
        let result = loop {
            // SAFETY: errno is thread-local; readdir signals errors only through it.
            unsafe { *libc::__errno_location() = 0 };
            // SAFETY: dirp is a valid, open DIR stream.
            let ent = unsafe { libc::readdir(dirp) };
            if ent.is_null() {
                let e = io::Error::last_os_error();
                break if e.raw_os_error().unwrap_or(0) == 0 {
                    Ok(())
                } else {
                    Err(e)
                };
            }
            // SAFETY: d_name is NUL-terminated within the dirent readdir returned.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
            let bytes = name.to_bytes();
            if bytes == b"." || bytes == b".." {
                continue;
            }
            if let Some(s) = OsStr::from_bytes(bytes).to_str() {
                names.push(s.to_string());
            }
        };
        // SAFETY: dirp is valid and closed exactly once (this also closes raw).
        unsafe { libc::closedir(dirp) };
        result.map(|_| names)
    }

    /// Opens (creating, 0600) a file and takes an exclusive `flock` on it: held until the
    /// returned file is dropped. The same lock host-local takes.
    pub fn lock(&self, name: &str) -> io::Result<File> {
        let f = File::from(self.openat(name, libc::O_RDWR | libc::O_CREAT, 0o600)?);
        f.lock()?;
        Ok(f)
    }

    /// The directory's modification time as (seconds, nanoseconds).
    pub fn mtime(&self) -> io::Result<(i64, i64)> {
        // SAFETY: zeroed stat is a valid out-buffer; valid fd.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        check(unsafe { libc::fstat(self.fd.as_raw_fd(), &mut st) })?;
        Ok((st.st_mtime, st.st_mtime_nsec))
    }

    /// Sets the directory's modification time (its access time is left alone).
    pub fn set_mtime(&self, secs: i64, nsecs: i64) -> io::Result<()> {
        let times = [
            libc::timespec {
                tv_sec: 0,
                tv_nsec: libc::UTIME_OMIT,
            },
            libc::timespec {
                tv_sec: secs as _,
                tv_nsec: nsecs as _,
            },
        ];
        // SAFETY: valid fd and a two-element timespec array.
        check(unsafe { libc::futimens(self.fd.as_raw_fd(), times.as_ptr()) }).map(|_| ())
    }
}

/// The most of an attribute read: ours are under 100 bytes.
const MAX_ATTR: usize = 256;

/// The extended attribute `attr` of an open file; `None` if it has none, the file system keeps
/// none, or it is longer than any we write (then it is not ours).
fn get_attr(f: &File, attr: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; MAX_ATTR];
    // SAFETY: valid fd, NUL-terminated name, and a writable buffer of buf.len() bytes.
    let n = unsafe {
        libc::fgetxattr(
            f.as_raw_fd(),
            attr.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n >= 0 {
        buf.truncate(n as usize);
        return Ok(Some(buf));
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENODATA | libc::ENOTSUP | libc::ERANGE) => Ok(None),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tmp(std::path::PathBuf);
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    fn tmp(tag: &str) -> Tmp {
        let p = std::env::temp_dir().join(format!("podwire-fsx-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        Tmp(p)
    }

    #[test]
    fn files_are_private_and_links_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let t = tmp("perm");
        let root = Dir::open_root(&t.0.join("a/b")).unwrap();
        let (sub, created) = root.subdir("net", true).unwrap();
        assert!(created);
        assert!(!root.subdir("net", true).unwrap().1);
        assert!(sub.create_new("x", b"hello").unwrap());
        assert!(!sub.create_new("x", b"again").unwrap());
        assert_eq!(sub.read("x").unwrap().unwrap(), b"hello");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&t.0.join("a/b/net/x")), 0o600);
        assert_eq!(mode(&t.0.join("a/b/net")), 0o700);
        std::os::unix::fs::symlink("/etc/hostname", t.0.join("a/b/net/link")).unwrap();
        assert!(sub.read("link").is_err());
        assert!(sub.write_in_place("link", b"x").is_err());
        assert!(sub.exists("link").unwrap());
        std::os::unix::fs::symlink("/tmp", t.0.join("a/b/dirlink")).unwrap();
        assert!(root.subdir("dirlink", true).is_err());
        assert!(root.subdir("dirlink", false).is_err());
        assert!(sub.read("../x").is_err());
    }

    #[test]
    fn links_and_attributes() {
        let t = tmp("attr");
        let d = Dir::open_root(&t.0).unwrap();
        let (sub, _) = d.subdir("idx", true).unwrap();
        assert!(d.create_new("a", b"owner").unwrap());
        d.set_attr("a", c"user.podwire-test", b"v1").unwrap();
        assert!(d.link_into("a", &sub, "k").unwrap());
        assert!(!d.link_into("a", &sub, "k").unwrap(), "link never replaces");
        let file = |content: &[u8], attr: Option<&[u8]>| FileData {
            content: content.to_vec(),
            attr: attr.map(<[u8]>::to_vec),
        };
        assert_eq!(
            sub.read_with_attr("k", Some(c"user.podwire-test")).unwrap(),
            Some(file(b"owner", Some(b"v1")))
        );
        assert_eq!(
            d.read_with_attr("a", Some(c"user.podwire-other")).unwrap(),
            Some(file(b"owner", None))
        );
        assert_eq!(d.read_with_attr("gone", Some(c"user.x")).unwrap(), None);
        assert!(d.set_attr("gone", c"user.x", b"1").is_err());
        // Removing one name leaves the other, content and attribute.
        assert!(d.remove("a").unwrap());
        assert_eq!(sub.read("k").unwrap().unwrap(), b"owner");
        std::os::unix::fs::symlink("/etc/hostname", t.0.join("ln")).unwrap();
        assert!(
            d.set_attr("ln", c"user.x", b"1").is_err(),
            "never through a symlink"
        );
    }

    #[test]
    fn write_in_place_leaves_exactly_the_new_content() {
        let t = tmp("inplace");
        let d = Dir::open_root(&t.0).unwrap();
        d.write_in_place("last", b"10.1.0.100").unwrap();
        d.write_in_place("last", b"10.1.0.99").unwrap();
        assert_eq!(d.read("last").unwrap().unwrap(), b"10.1.0.99");
        d.write_in_place("last", b"10.1.0.101").unwrap();
        assert_eq!(d.read("last").unwrap().unwrap(), b"10.1.0.101");
        d.write_in_place("last", b"10.1.0.102").unwrap();
        assert_eq!(d.read("last").unwrap().unwrap(), b"10.1.0.102");
    }

    #[test]
    fn list_write_remove_and_mtime() {
        let t = tmp("list");
        let d = Dir::open_root(&t.0).unwrap();
        d.write_atomic("b", b"1").unwrap();
        d.write_atomic("b", b"2").unwrap();
        d.write_in_place("c", b"33").unwrap();
        let mut names = d.list().unwrap();
        names.sort();
        assert_eq!(names, ["b", "c"]);
        assert_eq!(d.read("b").unwrap().unwrap(), b"2");
        assert!(d.remove("b").unwrap());
        assert!(!d.remove("b").unwrap());
        assert_eq!(d.read("b").unwrap(), None);
        d.set_mtime(946684800, 0).unwrap();
        assert_eq!(d.mtime().unwrap(), (946684800, 0));
        d.write_in_place("e", b"").unwrap();
        assert_ne!(
            d.mtime().unwrap(),
            (946684800, 0),
            "a new entry moves mtime"
        );
    }
}
