//! A fake Xen for host tests: it records every pagetable hypercall and can
//! refuse one entry of the Nth call, the way Xen refuses a bad update.

extern crate std;

use std::sync::Mutex;
use std::vec::Vec;

use crate::abi::{MmuUpdate, MmuextOp, MulticallEntry};
use crate::transport::Hypercalls;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    MmuUpdate(Vec<MmuUpdate>),
    Mmuext(Vec<MmuextOp>),
    Multicall(Vec<MulticallEntry>),
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// (call number from 1, entry index, errno)
    refuse: Option<(u32, u32, i32)>,
}

#[derive(Default)]
pub struct FakeXen {
    state: Mutex<State>,
}

impl FakeXen {
    pub fn new() -> FakeXen {
        FakeXen::default()
    }

    /// The `nth` call (from 1) refuses its entry `entry` with `errno`.
    pub fn refuse_entry(&self, nth: u32, entry: u32, errno: i32) {
        self.state.lock().unwrap().refuse = Some((nth, entry, errno));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The failing entry of this call, if it is the one to refuse.
    fn record(&self, call: Call) -> Option<(u32, i32)> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(call);
        let n = s.calls.len() as u32;
        match s.refuse {
            Some((nth, entry, errno)) if nth == n => Some((entry, errno)),
            _ => None,
        }
    }
}

impl Hypercalls for FakeXen {
    fn mmu_update(&self, reqs: &mut [MmuUpdate], done: &mut u32) -> i32 {
        match self.record(Call::MmuUpdate(reqs.to_vec())) {
            Some((entry, errno)) if (entry as usize) < reqs.len() => {
                *done = entry;
                errno
            }
            _ => {
                *done = reqs.len() as u32;
                0
            }
        }
    }

    fn mmuext_op(&self, ops: &mut [MmuextOp], done: &mut u32) -> i32 {
        match self.record(Call::Mmuext(ops.to_vec())) {
            Some((entry, errno)) if (entry as usize) < ops.len() => {
                *done = entry;
                errno
            }
            _ => {
                *done = ops.len() as u32;
                0
            }
        }
    }

    fn multicall(&self, calls: &mut [MulticallEntry]) -> i32 {
        let refused = self.record(Call::Multicall(calls.to_vec()));
        for (i, c) in calls.iter_mut().enumerate() {
            c.result = match refused {
                Some((entry, errno)) if entry as usize == i => errno as u32,
                _ => 0,
            };
        }
        0
    }
}

/// Simulated guest memory for host tests: `n` zeroed frames, pfn i at
/// index i.
pub struct Pages {
    frames: std::boxed::Box<[core::cell::UnsafeCell<[u64; 512]>]>,
}

impl Pages {
    pub fn new(n: u32) -> Pages {
        let mut v = Vec::with_capacity(n as usize);
        v.resize_with(n as usize, || core::cell::UnsafeCell::new([0u64; 512]));
        Pages { frames: v.into_boxed_slice() }
    }
    pub fn read_u64(&self, pfn: arch_i386::Pfn, i: u32) -> u64 {
        // SAFETY: a frame of ours, i < 512; tests are single-threaded.
        unsafe { (*self.frames[pfn.0 as usize].get())[i as usize] }
    }
    pub fn write_u64(&self, pfn: arch_i386::Pfn, i: u32, v: u64) {
        // SAFETY: as above.
        unsafe { (*self.frames[pfn.0 as usize].get())[i as usize] = v }
    }
}

// SAFETY: every frame is its own 4096-byte cell that lives as long as the
// Pages; `reachable` answers exactly for the frames that exist.
unsafe impl paravirt::PhysMem for Pages {
    fn page(&self, pfn: arch_i386::Pfn) -> *mut u8 {
        self.frames[pfn.0 as usize].get() as *mut u8
    }
    fn reachable(&self, pfn: arch_i386::Pfn) -> bool {
        (pfn.0 as usize) < self.frames.len()
    }
}

/// A p2m for `pages` frames whose machine frames are `mfn_of(pfn)`, and
/// the matching m2p; leaked, as the kernel's tables live forever.
pub fn table(pages: u32, mfn_of: impl Fn(u32) -> u32) -> crate::p2m::P2m {
    let p2m: Vec<u32> = (0..pages).map(&mfn_of).collect();
    let max = p2m.iter().copied().max().unwrap_or(0);
    let mut m2p = std::vec![u32::MAX; max as usize + 1];
    for (pfn, &mfn) in p2m.iter().enumerate() {
        m2p[mfn as usize] = pfn as u32;
    }
    let (p2m, m2p) =
        (std::boxed::Box::leak(p2m.into_boxed_slice()), std::boxed::Box::leak(m2p.into_boxed_slice()));
    // SAFETY: both slices are leaked, so they live forever, and have the
    // lengths given.
    unsafe { crate::p2m::P2m::new(p2m.as_ptr(), pages, m2p.as_ptr(), max) }
}
