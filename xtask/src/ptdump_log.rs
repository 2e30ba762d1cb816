//! The kernel's `ptdump:` lines, read back for the picture
//! (`ptdump_svg.rs`). The kernel prints, per half of an address space it
//! dumps (the kernel half of the live pagetable, then the user halves of
//! init and of a grandchild at its exit):
//!
//! ```text
//! ptdump: kernel half of the live pagetable (root pfn 0x1ac):
//! ptdump: 0xc0100000-0xc013b000   236K ro x  ker GLB  4K -> pfn 0x100
//! ptdump: kept 0xc0000000-0xc0800000 (entries of the boot pagetable)
//! ptdump: tables pte pfn 0x1ae-0x1ea (60) ro built
//! ```
//!
//! A header opens a half; the lines after it belong to it. Lines of a
//! kind this reader does not know are left alone, so the kernel can say
//! more without breaking the picture.

/// One boot's dump.
#[derive(Debug, Default, PartialEq)]
pub struct Dump {
    pub backend: String,
    /// "PAE", "2-level".
    pub paging: String,
    /// Where the fixmap and pkmap are (the `layout:` line).
    pub fixmap: Option<(u64, u64)>,
    pub pkmap: Option<u64>,
    pub halves: Vec<Half>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Half {
    /// "kernel half of the live pagetable".
    pub what: String,
    pub root_pfn: u64,
    pub ranges: Vec<Range>,
    /// Virtual ranges whose entries were kept from the boot pagetable.
    pub kept: Vec<(u64, u64)>,
    pub tables: Vec<Tables>,
    /// Runs the kernel counted but did not list (a user half's, past its
    /// limit): they lie above the last listed one.
    pub unlisted: u64,
}

/// A run of mappings alike in permissions and page size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    pub start: u64,
    pub end: u64,
    pub pfn: u64,
    pub rw: bool,
    pub nx: bool,
    pub user: bool,
    pub global: bool,
    /// Bytes a page maps: 4 KiB, or the large-page size.
    pub page: u64,
}

/// A run of pagetable pages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tables {
    /// "pgd", "pmd", "pte".
    pub level: String,
    pub first_pfn: u64,
    pub end_pfn: u64,
    /// Read-only in the kernel's direct map; None: not in it.
    pub readonly: Option<bool>,
    pub built: bool,
}

fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).ok()
}

/// "4K", "2M", "129652K" -> bytes.
fn size(s: &str) -> Option<u64> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: u64 = n.parse().ok()?;
    match unit {
        "K" => Some(n << 10),
        "M" => Some(n << 20),
        _ => None,
    }
}

/// "0xc0000000-0xc0100000" -> (start, end).
fn span(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once('-')?;
    Some((hex(a)?, hex(b)?))
}

fn range(words: &[&str]) -> Option<Range> {
    // 0x..-0x.. SIZE RW|ro NX|x ker|USR [GLB] PAGE -> pfn 0x..
    let (start, end) = span(words.first()?)?;
    let rest = &words[2..];
    let global = rest.get(3) == Some(&"GLB");
    let page = rest.get(if global { 4 } else { 3 })?;
    Some(Range {
        start,
        end,
        rw: *rest.first()? == "RW",
        nx: *rest.get(1)? == "NX",
        user: *rest.get(2)? == "USR",
        global,
        page: size(page)?,
        pfn: hex(words.last()?)?,
    })
}

fn tables(words: &[&str]) -> Option<Tables> {
    // tables LEVEL pfn 0x..-0x.. (N) ro|RW|unmapped built|kept
    let (first_pfn, end_pfn) = span(words.get(3)?)?;
    Some(Tables {
        level: words.get(1)?.to_string(),
        first_pfn,
        end_pfn,
        readonly: match *words.get(5)? {
            "ro" => Some(true),
            "RW" => Some(false),
            _ => None,
        },
        built: *words.get(6)? == "built",
    })
}

pub fn parse(log: &str) -> Result<Dump, String> {
    let mut d = Dump::default();
    for line in log.lines() {
        if let Some(b) = line.strip_prefix("backend: ") {
            d.backend = b.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(p) = line.strip_prefix("paging: ") {
            d.paging = p.split_whitespace().next().unwrap_or("").to_string();
        } else if let Some(l) = line.strip_prefix("layout: ") {
            let after = |key: &str| l.split(key).nth(1).and_then(|r| r.split([',', ' ']).next());
            d.fixmap = after("fixmap ").and_then(span);
            d.pkmap = after("pkmap ").and_then(hex);
        }
        let Some(rest) = line.strip_prefix("ptdump: ") else { continue };
        let words: Vec<&str> = rest.split_whitespace().collect();
        if let Some(header) = rest.strip_suffix("):") {
            let (what, root) =
                header.split_once(" (root pfn ").ok_or(format!("bad ptdump header: {line}"))?;
            d.halves.push(Half {
                what: what.to_string(),
                root_pfn: hex(root).ok_or(format!("bad root in: {line}"))?,
                ..Half::default()
            });
            continue;
        }
        let Some(half) = d.halves.last_mut() else { continue };
        match words.first() {
            Some(&"kept") => {
                half.kept.push(words.get(1).and_then(|s| span(s)).ok_or(format!("bad line: {line}"))?)
            }
            Some(&"tables") => half.tables.push(tables(&words).ok_or(format!("bad line: {line}"))?),
            Some(w) if w.starts_with("0x") => {
                half.ranges.push(range(&words).ok_or(format!("bad line: {line}"))?)
            }
            Some(n) if rest.ends_with(" more runs, not listed") => {
                half.unlisted = n.parse().map_err(|_| format!("bad line: {line}"))?
            }
            _ => {}
        }
    }
    if d.halves.is_empty() {
        return Err("the log has no ptdump: lines (did the boot reach the self-check?)".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
backend: xen (highest priority detected)
paging: PAE nx=1 large=0 global=0
layout: lowmem 128 MiB (max_low_pfn 0x8000), highmem 0 MiB, fixmap 0xf53df000-0xf53ff000, pkmap 0xf4c00000
ptdump: kernel half of the live pagetable (root pfn 0x1ac):
ptdump: 0xc0100000-0xc013b000   236K ro x  ker      4K -> pfn 0x100
ptdump: 0xc0200000-0xc7e00000   124M RW NX ker GLB  2M -> pfn 0x200
ptdump: 0xc0163000-0xc8000000 129652K RW x  USR      4K -> pfn 0x163
ptdump: kept 0xc0000000-0xc0800000 (entries of the boot pagetable)
ptdump: tables pte pfn 0x1ae-0x1ea (60) ro built
ptdump: tables pmd pfn 0x3d0-0x3d3 (3) RW kept
ptdump: user half of process 1 (root pfn 0x2000):
ptdump: 0x08048000-0x0804a000     8K ro x  USR      4K -> pfn 0x5000
ptdump: 55 more runs, not listed
ptdump: something new the reader does not know
selfcheck: ok
";

    #[test]
    fn reads_every_kind_of_line_into_its_half() {
        let d = parse(LOG).unwrap();
        assert_eq!((d.backend.as_str(), d.paging.as_str()), ("xen", "PAE"));
        assert_eq!(d.fixmap, Some((0xf53df000, 0xf53ff000)));
        assert_eq!(d.pkmap, Some(0xf4c00000));
        assert_eq!(d.halves.len(), 2);
        let k = &d.halves[0];
        assert_eq!((k.what.as_str(), k.root_pfn), ("kernel half of the live pagetable", 0x1ac));
        assert_eq!(
            k.ranges[0],
            Range {
                start: 0xc0100000,
                end: 0xc013b000,
                pfn: 0x100,
                rw: false,
                nx: false,
                user: false,
                global: false,
                page: 4096
            }
        );
        assert!(k.ranges[1].rw && k.ranges[1].nx && k.ranges[1].global && k.ranges[1].page == 2 << 20);
        assert!(k.ranges[2].user && k.ranges[2].end == 0xc8000000);
        assert_eq!(k.kept, [(0xc0000000, 0xc0800000)]);
        assert_eq!(k.tables.len(), 2);
        assert_eq!(
            k.tables[0],
            Tables {
                level: "pte".into(),
                first_pfn: 0x1ae,
                end_pfn: 0x1ea,
                readonly: Some(true),
                built: true
            }
        );
        assert!(!k.tables[1].built && k.tables[1].readonly == Some(false));
        assert_eq!(d.halves[1].what, "user half of process 1");
        assert_eq!(d.halves[1].ranges.len(), 1);
        assert_eq!((d.halves[0].unlisted, d.halves[1].unlisted), (0, 55));
    }

    #[test]
    fn a_log_without_a_dump_says_so() {
        assert!(parse("Test result: FAILURE: early\n").unwrap_err().contains("no ptdump"));
    }
}
