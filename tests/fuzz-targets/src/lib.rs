//! Fuzz target bodies, one module a target, each a `fn(&[u8])`.
//!
//! A body parses its input the way the kernel does at boot, then checks
//! the parser's own contract: what parsed is what the parser promises
//! (a validated memory map has no zero-length, wrapping or overlapping
//! entry; the boot allocator never hands out a frame twice or outside free
//! RAM), and what did not parse is an error value. A panic is a finding.
//!
//! The bodies live in a host crate, not in `fuzz/`, so that plain `cargo
//! test` replays every corpus input and every regression through exactly
//! the code libFuzzer ran (`tests/replay.rs`), without libFuzzer.

pub mod bootmem;
pub mod bootparams;
pub mod cmdline;
mod contract;
pub mod lguest_host;
pub mod memmap;
pub mod multiboot;
pub mod pagetable;
pub mod pvh;
pub mod seeds;
pub mod xen_start_info;

/// Every target by name: the name is `fuzz/fuzz_targets/NAME.rs`, its corpus
/// `fuzz/corpus/NAME/` and its regressions `fuzz/regressions/NAME/`.
/// A target's body: any bytes in, a panic out only on a finding.
pub type Body = fn(&[u8]);

pub const TARGETS: &[(&str, Body)] = &[
    ("multiboot", multiboot::run),
    ("pvh", pvh::run),
    ("bootparams", bootparams::run),
    ("xen_start_info", xen_start_info::run),
    ("cmdline", cmdline::run),
    ("memmap", memmap::run),
    ("bootmem", bootmem::run),
    ("lguest_host", lguest_host::run),
    ("pagetable", pagetable::run),
];
