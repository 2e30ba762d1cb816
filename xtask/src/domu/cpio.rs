//! A newc ("070701") cpio archive, the format Linux unpacks as its
//! initramfs (Documentation/driver-api/early-userspace/buffer-format.rst):
//! each entry is a 110-byte ASCII header, the NUL-terminated name and the
//! data, both padded to 4 bytes; `TRAILER!!!` ends the archive. Owner root,
//! mtime 0: the same inputs give the same bytes. Parent directories are
//! added before their first entry, each once.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
const S_IFCHR: u32 = 0o020_000;

pub struct Cpio<W: Write> {
    out: W,
    ino: u32,
    dirs: BTreeSet<String>,
}

impl<W: Write> Cpio<W> {
    pub fn new(out: W) -> Self {
        Cpio { out, ino: 0, dirs: BTreeSet::new() }
    }

    /// The directories above `name` that are not in the archive yet.
    fn parents(&mut self, name: &str) -> io::Result<()> {
        let missing: Vec<String> = Path::new(name)
            .ancestors()
            .skip(1)
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| !p.is_empty() && !self.dirs.contains(p))
            .collect();
        for d in missing.into_iter().rev() {
            self.dirs.insert(d.clone());
            self.header(&d, S_IFDIR | 0o755, 2, (0, 0), &[])?;
        }
        Ok(())
    }

    fn entry(&mut self, path: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        self.parents(name)?;
        self.header(name, mode, nlink, rdev, data)
    }

    fn header(&mut self, name: &str, mode: u32, nlink: u32, rdev: (u32, u32), data: &[u8]) -> io::Result<()> {
        self.ino += 1;
        let (size, namesize) = (data.len() as u32, name.len() as u32 + 1);
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check
        let fields = [self.ino, mode, 0, 0, nlink, 0, size, 0, 0, rdev.0, rdev.1, namesize, 0];
        let mut header = String::from("070701");
        for f in fields {
            header.push_str(&format!("{f:08X}"));
        }
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(110 + name.len() + 1)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    fn pad(&mut self, len: usize) -> io::Result<()> {
        self.out.write_all(&[0; 3][..(4 - len % 4) % 4])
    }

    /// A directory (once, however often it is asked for).
    pub fn dir(&mut self, path: &str) -> io::Result<()> {
        let name = path.trim_start_matches('/');
        if self.dirs.contains(name) {
            return Ok(());
        }
        self.entry(name, S_IFDIR | 0o755, 2, (0, 0), &[])?;
        self.dirs.insert(name.to_string());
        Ok(())
    }

    pub fn file(&mut self, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
        self.entry(path, S_IFREG | mode, 1, (0, 0), data)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> io::Result<()> {
        self.entry(path, S_IFLNK | 0o777, 1, (0, 0), target.as_bytes())
    }

    pub fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> io::Result<()> {
        self.entry(path, S_IFCHR | mode, 1, (major, minor), &[])
    }

    /// Writes the trailer; returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.header("TRAILER!!!", 0, 1, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The entries of a newc archive: (name, mode, data), read back the way
    /// Linux's unpacker reads them.
    fn entries(mut b: &[u8]) -> Vec<(String, u32, Vec<u8>)> {
        let mut v = Vec::new();
        let total = b.len();
        loop {
            assert_eq!(&b[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&b[6 + 8 * i..14 + 8 * i]).unwrap(), 16).unwrap()
            };
            let (mode, size, namesize) = (field(1), field(6) as usize, field(11) as usize);
            let name = String::from_utf8(b[110..110 + namesize - 1].to_vec()).unwrap();
            assert_eq!(b[110 + namesize - 1], 0);
            let data_at = (110 + namesize).next_multiple_of(4);
            let data = b[data_at..data_at + size].to_vec();
            b = &b[(data_at + size).next_multiple_of(4)..];
            assert_eq!((total - b.len()) % 4, 0, "entries stay 4-byte aligned");
            if name == "TRAILER!!!" {
                assert!(b.is_empty());
                return v;
            }
            v.push((name, mode, data));
        }
    }

    #[test]
    fn round_trip() {
        let mut c = Cpio::new(Vec::new());
        c.dir("/bin").unwrap();
        c.file("/init", 0o755, b"#!/bin/sh\n").unwrap();
        c.symlink("/bin/sh", "busybox").unwrap();
        c.char_dev("/dev/null", 0o666, 1, 3).unwrap();
        c.file("/usr/lib/x/y", 0o644, b"12345").unwrap();
        c.dir("/usr/lib").unwrap();
        let out = c.finish().unwrap();
        let dir = |n: &str| (n.to_string(), 0o040_755, vec![]);
        assert_eq!(
            entries(&out),
            vec![
                dir("bin"),
                ("init".into(), 0o100_755, b"#!/bin/sh\n".to_vec()),
                ("bin/sh".into(), 0o120_777, b"busybox".to_vec()),
                dir("dev"),
                ("dev/null".into(), 0o020_666, vec![]),
                dir("usr"),
                dir("usr/lib"),
                dir("usr/lib/x"),
                ("usr/lib/x/y".into(), 0o100_644, b"12345".to_vec()),
            ]
        );
    }
}
