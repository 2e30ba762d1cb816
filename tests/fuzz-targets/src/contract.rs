//! The contracts every boot-information target checks after parsing, written
//! independently of the parsers' own checks so that a wrong check is caught
//! too, not only a crash.

use paravirt::cmdline::{CmdLine, CMDLINE_MAX};
use paravirt::memmap::{MemoryMap, RegionKind};
use paravirt::BootInfo;

const FOUR_GIB: u64 = 1 << 32;

/// A map that `validate` accepted: every entry non-empty and not wrapping,
/// no two overlapping, some RAM below 4 GiB; the queries built on that
/// (`ram_end_below_4g`, `is_ram`) agree with it.
pub fn valid_map(m: &MemoryMap) {
    let r = m.regions();
    assert!(!r.is_empty(), "validated map is empty");
    for e in r {
        assert!(e.len != 0, "validated map has a zero-length entry {e:?}");
        assert!(e.start.checked_add(e.len).is_some(), "validated map has a wrapping entry {e:?}");
    }
    let mut sorted: std::vec::Vec<_> = r.to_vec();
    sorted.sort_by_key(|e| e.start);
    for w in sorted.windows(2) {
        assert!(w[0].start + w[0].len <= w[1].start, "validated map overlaps: {:?} and {:?}", w[0], w[1]);
    }
    assert!(r.iter().any(|e| e.kind == RegionKind::Ram && e.start < FOUR_GIB), "no low RAM: {m:?}");
    let end = m.ram_end_below_4g();
    assert!(end > 0 && end <= FOUR_GIB, "ram_end_below_4g {end:#x} for {m:?}");
    for e in r.iter().filter(|e| e.kind == RegionKind::Ram) {
        assert!(m.is_ram(e.start, e.end()), "is_ram says no to its own RAM entry {e:?}");
    }
    for e in r.iter().filter(|e| e.kind != RegionKind::Ram) {
        assert!(!m.is_ram(e.start, e.end()), "is_ram says yes to a non-RAM entry {e:?}");
    }
}

/// A command line keeps at most `CMDLINE_MAX` bytes, and what it shows is
/// text that was in the input.
pub fn cmdline(c: &CmdLine) {
    let s = c.as_str();
    assert!(s.len() <= CMDLINE_MAX, "command line of {} bytes", s.len());
    assert!(!s.contains('\0'), "command line holds a NUL: {s:?}");
    if let Some(at) = c.invalid_at {
        assert_eq!(s.len(), at, "the line shown does not stop at its first non-UTF-8 byte");
    }
}

/// After a protocol's parse: no error means the map is valid; the command
/// line keeps its contract either way.
pub fn boot_info(b: &BootInfo) {
    cmdline(&b.cmdline);
    if b.info_error.is_none() {
        valid_map(&b.memory);
    }
}
