//! A fake Xen for host tests: it records every pagetable hypercall, can
//! refuse any entry of any call, the way Xen refuses a bad update, and,
//! given the guest's memory, carries out `mmu_update` requests there as
//! Xen would (so a build that writes its tables through Xen can be
//! checked by walking them).

extern crate std;

use std::sync::{Arc, Mutex};
use std::vec::Vec;

use crate::abi::{MmuUpdate, MmuextOp};
use crate::p2m::P2m;
use crate::transport::{Hypercalls, SubCall, SubResult};

/// A sub-call of a multicall, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sub {
    MmuUpdate(Vec<MmuUpdate>),
    Mmuext(Vec<MmuextOp>),
    UpdateVaMapping { va: u32, val: u64, flags: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    MmuUpdate(Vec<MmuUpdate>),
    Mmuext(Vec<MmuextOp>),
    UpdateVaMapping { va: u32, val: u64, flags: u32 },
    Multicall(Vec<Sub>),
}

impl Call {
    /// The sub-calls of a multicall, or the call itself as one.
    pub fn subs(&self) -> Vec<Sub> {
        match self {
            Call::MmuUpdate(r) => std::vec![Sub::MmuUpdate(r.clone())],
            Call::Mmuext(o) => std::vec![Sub::Mmuext(o.clone())],
            &Call::UpdateVaMapping { va, val, flags } => std::vec![Sub::UpdateVaMapping { va, val, flags }],
            Call::Multicall(s) => s.clone(),
        }
    }
}

#[derive(Default)]
struct State {
    calls: Vec<Call>,
    /// (call number from 1, entry index, errno). A multicall's entries
    /// are numbered across its sub-calls, in order (an update_va_mapping
    /// is one entry).
    refuse: Vec<(u32, u32, i32)>,
    /// Where mmu_update and update_va_mapping requests land: the guest's
    /// memory and its frame tables.
    mem: Option<(Pages, P2m)>,
    /// The live L3 (a pfn), for update_va_mapping's walk: the boot one
    /// given, then whatever MMUEXT_NEW_BASEPTR loads.
    cr3: u32,
}

#[derive(Default)]
pub struct FakeXen {
    state: Mutex<State>,
}

impl FakeXen {
    pub fn new() -> FakeXen {
        FakeXen::default()
    }

    /// A fake Xen that carries out what `mmu_update` and
    /// `update_va_mapping` are asked for in `mem` (a view of the guest's
    /// memory), finding pages through `p2m`'s m2p, and walking the live
    /// PAE table from `cr3` (a pfn) for update_va_mapping. It checks
    /// nothing: refusals are the test's to ask for.
    pub fn with_memory(mem: &Pages, p2m: P2m, cr3: arch_i386::Pfn) -> FakeXen {
        let x = FakeXen::default();
        let mut s = x.state.lock().unwrap();
        s.mem = Some((mem.clone(), p2m));
        s.cr3 = cr3.0;
        drop(s);
        x
    }

    /// The `nth` call (from 1) refuses its entry `entry` with `errno`;
    /// each use adds one refusal.
    pub fn refuse_entry(&self, nth: u32, entry: u32, errno: i32) {
        self.state.lock().unwrap().refuse.push((nth, entry, errno));
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Records `call`; returns its refused entries (index, errno).
    fn record(&self, call: Call) -> Vec<(u32, i32)> {
        let mut s = self.state.lock().unwrap();
        s.calls.push(call);
        let n = s.calls.len() as u32;
        s.refuse.iter().filter(|r| r.0 == n).map(|r| (r.1, r.2)).collect()
    }

    /// An array call whose entries `first..first + len` (in the call's
    /// numbering) may be refused: (done, rc), stopping at the first
    /// refused one, as Xen does.
    fn stop_at(refused: &[(u32, i32)], first: u32, len: usize) -> (u32, i32) {
        let hit = refused.iter().filter(|r| r.0 >= first && r.0 < first + len as u32).min_by_key(|r| r.0);
        match hit {
            Some(&(entry, errno)) => (entry - first, errno),
            None => (len as u32, 0),
        }
    }

    /// Carries out the first `done` requests in the guest's memory.
    fn apply(&self, reqs: &[MmuUpdate], done: u32) {
        let s = self.state.lock().unwrap();
        let Some((mem, p2m)) = &s.mem else { return };
        for r in &reqs[..done as usize] {
            let pfn = p2m.pfn((r.ptr >> 12) as u32).expect("fake xen: mmu_update of a frame not the guest's");
            mem.write_u64(pfn, ((r.ptr & 0xFFF) / 8) as u32, r.val);
        }
    }

    /// Follows the first `done` ops: a new baseptr is the table
    /// update_va_mapping walks from then on.
    fn apply_ext(&self, ops: &[MmuextOp], done: u32) {
        let mut s = self.state.lock().unwrap();
        for o in &ops[..done as usize] {
            if o.cmd == crate::abi::mmuext::NEW_BASEPTR {
                if let Some((_, p2m)) = &s.mem {
                    s.cr3 = p2m.pfn(o.arg1).expect("fake xen: new baseptr not the guest's").0;
                }
            }
        }
    }

    /// Writes `val` into the pte of `va` in the live table.
    fn apply_va(&self, va: u32, val: u64) {
        let s = self.state.lock().unwrap();
        let Some((mem, p2m)) = &s.mem else { return };
        let next = |table: u32, i: u32| {
            let e = mem.read_u64(arch_i386::Pfn(table), i);
            p2m.pfn(((e & 0x000F_FFFF_FFFF_F000) >> 12) as u32).expect("fake xen: update_va_mapping walk").0
        };
        let l1 = next(next(s.cr3, va >> 30), (va >> 21) & 511);
        mem.write_u64(arch_i386::Pfn(l1), (va >> 12) & 511, val);
    }
}

impl Hypercalls for FakeXen {
    fn mmu_update(&self, reqs: &mut [MmuUpdate], done: &mut u32) -> i32 {
        let refused = self.record(Call::MmuUpdate(reqs.to_vec()));
        let rc;
        (*done, rc) = Self::stop_at(&refused, 0, reqs.len());
        self.apply(reqs, *done);
        rc
    }

    fn mmuext_op(&self, ops: &mut [MmuextOp], done: &mut u32) -> i32 {
        let refused = self.record(Call::Mmuext(ops.to_vec()));
        let rc;
        (*done, rc) = Self::stop_at(&refused, 0, ops.len());
        self.apply_ext(ops, *done);
        rc
    }

    fn update_va_mapping(&self, va: u32, val: u64, flags: u32) -> i32 {
        let refused = self.record(Call::UpdateVaMapping { va, val, flags });
        let (done, rc) = Self::stop_at(&refused, 0, 1);
        if done == 1 {
            self.apply_va(va, val);
        }
        rc
    }

    fn multicall(&self, calls: &mut [SubCall], results: &mut [SubResult]) -> i32 {
        let subs = calls
            .iter()
            .map(|c| match c {
                SubCall::MmuUpdate(r) => Sub::MmuUpdate(r.to_vec()),
                SubCall::Mmuext(o) => Sub::Mmuext(o.to_vec()),
                SubCall::UpdateVaMapping { va, val, flags } => {
                    Sub::UpdateVaMapping { va: *va, val: *val, flags: *flags }
                }
            })
            .collect();
        let refused = self.record(Call::Multicall(subs));
        // Every sub-call runs, whatever the ones before it answered.
        let mut first = 0;
        for (c, r) in calls.iter().zip(results.iter_mut()) {
            let (done, rc) = Self::stop_at(&refused, first, c.len());
            *r = SubResult { rc, done };
            match c {
                SubCall::MmuUpdate(reqs) => self.apply(reqs, done),
                SubCall::Mmuext(ops) => self.apply_ext(ops, done),
                &SubCall::UpdateVaMapping { va, val, .. } if done == 1 => self.apply_va(va, val),
                SubCall::UpdateVaMapping { .. } => {}
            }
            first += c.len() as u32;
        }
        0
    }
}

/// Simulated guest memory for host tests: `n` zeroed frames, pfn i at
/// index i. A clone is another view of the same frames (the fake Xen's).
#[derive(Clone)]
pub struct Pages {
    frames: Arc<[core::cell::UnsafeCell<[u64; 512]>]>,
}

// SAFETY: a test drives one guest, its memory and its fake Xen from one
// thread; the frames are shared only between the guest's view and its
// fake Xen's, never touched from two threads.
unsafe impl Send for Pages {}
// SAFETY: as above.
unsafe impl Sync for Pages {}

impl Pages {
    pub fn new(n: u32) -> Pages {
        let mut v = Vec::with_capacity(n as usize);
        v.resize_with(n as usize, || core::cell::UnsafeCell::new([0u64; 512]));
        Pages { frames: v.into() }
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
