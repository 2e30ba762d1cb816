//! A fake lguest host for host tests: it owns the shared page, drains the
//! async ring before every trap (as 2.6.24's `do_async_hcalls` does) and
//! records every call, queued or trapped, in the order the host does them.

extern crate std;

use core::cell::UnsafeCell;
use std::boxed::Box;
use std::sync::Mutex;
use std::vec::Vec;

use crate::abi::{LguestData, RING_SIZE, STATUS_DONE};
use crate::transport::Host;

/// (call, arg1, arg2, arg3, came through the ring)
pub type Done = (u32, u32, u32, u32, bool);

pub struct FakeHost {
    data: Box<UnsafeCell<LguestData>>,
    state: Mutex<(usize, Vec<Done>)>,
}

// SAFETY: tests drive one guest from one thread; the page is only touched
// through volatile accesses by the guest code and by `drain`.
unsafe impl Sync for FakeHost {}

impl Default for FakeHost {
    fn default() -> Self {
        FakeHost::new()
    }
}

impl FakeHost {
    pub fn new() -> FakeHost {
        FakeHost { data: Box::new(UnsafeCell::new(LguestData::INIT)), state: Mutex::new((0, Vec::new())) }
    }

    pub fn done(&self) -> Vec<Done> {
        self.state.lock().unwrap().1.clone()
    }

    fn drain(&self, state: &mut (usize, Vec<Done>)) {
        let d = self.data.get();
        for _ in 0..RING_SIZE {
            let n = state.0;
            // SAFETY: the page is ours; n < RING_SIZE.
            unsafe {
                if (*d).hcall_status[n] == STATUS_DONE {
                    break;
                }
                let c = (*d).hcalls[n];
                state.1.push((c.eax, c.edx, c.ebx, c.ecx, true));
                (*d).hcall_status[n] = STATUS_DONE;
            }
            state.0 = (n + 1) % RING_SIZE;
        }
    }
}

impl Host for FakeHost {
    fn trap(&self, call: u32, arg1: u32, arg2: u32, arg3: u32) -> u32 {
        let mut s = self.state.lock().unwrap();
        self.drain(&mut s);
        s.1.push((call, arg1, arg2, arg3, false));
        0
    }

    fn data(&self) -> *mut LguestData {
        self.data.get()
    }

    fn data_pa(&self) -> u32 {
        0x1000
    }
}

/// Simulated guest memory: `n` zeroed frames, pfn i at index i.
pub struct Pages {
    frames: Box<[UnsafeCell<[u32; 1024]>]>,
}

impl Pages {
    pub fn new(n: u32) -> Pages {
        let mut v = Vec::with_capacity(n as usize);
        v.resize_with(n as usize, || UnsafeCell::new([0u32; 1024]));
        Pages { frames: v.into_boxed_slice() }
    }
    pub fn read(&self, pfn: u32, i: u32) -> u32 {
        // SAFETY: a frame of ours, i < 1024; tests are single-threaded.
        unsafe { (*self.frames[pfn as usize].get())[i as usize] }
    }
    pub fn write(&self, pfn: u32, i: u32, v: u32) {
        // SAFETY: as above.
        unsafe { (*self.frames[pfn as usize].get())[i as usize] = v }
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

impl crate::Lguest<FakeHost> {
    /// A guest of the fake host, running on the pgdir at `pgdir` as if the
    /// Launcher had started it there.
    pub fn faked(pgdir: arch_i386::Pfn) -> crate::Lguest<FakeHost> {
        let lg = crate::Lguest::new(FakeHost::new());
        lg.cr3.store(pgdir.0, core::sync::atomic::Ordering::Relaxed);
        lg
    }

    pub fn host(&self) -> &FakeHost {
        &self.hc.host
    }
}
