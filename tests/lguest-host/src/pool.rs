//! Host pages for shadow pagetables: a fixed block of host RAM handed out
//! a page at a time, with freed pages kept on a list threaded through
//! their first word.

use crate::phys::HostPhys;

/// A zeroed page, by its host-physical address (what shadow entries hold).
pub type Page = u32;

pub struct Pool {
    phys: HostPhys,
    next: u32,
    end: u32,
    free: u32,
    /// Pages in the pool.
    pub total: u32,
    pub in_use: u32,
    pub peak: u32,
}

impl Pool {
    /// The pages of `[start, end)` (page aligned).
    pub const fn new(phys: HostPhys, start: u32, end: u32) -> Pool {
        Pool { phys, next: start, end, free: 0, total: (end - start) >> 12, in_use: 0, peak: 0 }
    }

    pub fn phys(&self) -> HostPhys {
        self.phys
    }

    pub fn alloc(&mut self) -> Option<Page> {
        let page = if self.free != 0 {
            let p = self.free;
            // SAFETY: a free page of the pool: host RAM HostPhys maps, its
            // first word the link we stored.
            self.free = unsafe { (self.phys.ptr(p) as *const u32).read() };
            p
        } else if self.next < self.end {
            let p = self.next;
            self.next += 4096;
            p
        } else {
            return None;
        };
        // SAFETY: a page of the pool nobody else uses, mapped by HostPhys.
        unsafe { core::ptr::write_bytes(self.phys.ptr(page), 0, 4096) };
        self.in_use += 1;
        self.peak = self.peak.max(self.in_use);
        Some(page)
    }

    pub fn free(&mut self, page: Page) {
        // SAFETY: `page` came from alloc and is no longer referenced.
        unsafe { (self.phys.ptr(page) as *mut u32).write(self.free) };
        self.free = page;
        self.in_use -= 1;
    }
}
