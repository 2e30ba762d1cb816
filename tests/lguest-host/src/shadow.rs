//! Shadow pagetables: the heart of lguest.
//!
//! The guest must not decide what the MMU maps: its pagetables name
//! guest-physical frames, and a frame it does not own must never become
//! reachable. So the MMU never sees them. The host keeps its own 2-level
//! tables, one shadow pgdir per guest pgdir it has seen (a few, keyed by
//! the guest pgdir's address, like 2.6.24's four), each starting empty but
//! for the Switcher. When the guest touches an address its shadow does not
//! map, it page-faults into the host, which walks the guest's tables
//! ([`crate::gpt`]); if they allow the access, the host installs the
//! translation guest-frame -> host-frame with the guest's permissions and
//! lets the guest retry. If they do not, the fault was the guest's own and
//! is delivered to it.
//!
//! A shadow is a cache, so it must be told when the guest's tables change:
//! SET_PTE updates the entry (for kernel addresses in every shadow, since
//! all pgdirs share the kernel's mappings; for user addresses in that
//! pgdir's shadow), SET_PMD drops a top-level entry, FLUSH_TLB drops user
//! entries of the current shadow or everything, NEW_PGTABLE switches
//! shadows. A guest that changes an entry and does not say so keeps
//! running on the stale one, as on real lguest, which is what the audit
//! ([`crate::audit`]) looks for, in every shadow as it is evicted and in
//! those kept at the end.
//!
//! The guest's accessed and dirty bits are not maintained: shadow entries
//! are created with A and D set and the guest's entries are left alone.

use crate::audit::Findings;
use crate::fatal::{fatal, Result};
use crate::gpt::{self, Walk, ACCESSED, DIRTY, P, RW, USER};
use crate::guest_mem::GuestMem;
use crate::layout::SWITCHER_PGD_INDEX;
use crate::phys::HostPhys;
use crate::pool::{Page, Pool};

/// Shadow pgdirs kept at once (2.6.24: 4).
pub const SLOTS: usize = 4;

#[derive(Clone, Copy)]
struct Slot {
    /// Guest-physical address of the guest pgdir it shadows.
    gpgdir: u32,
    /// The shadow pgdir (host-physical).
    spgdir: Page,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    /// Faults the guest's tables allowed: shadow entries filled.
    pub filled: u32,
    /// Shadow entries rewritten or cleared by SET_PTE.
    pub set_pte_applied: u32,
    pub pmd_dropped: u32,
    pub flushes_all: u32,
    pub flushes_user: u32,
    pub switches: u32,
    pub evictions: u32,
    /// Times the page pool ran dry and every shadow was dropped.
    pub pool_resets: u32,
}

/// A shadow entry the guest's own tables do not back.
#[derive(Clone, Copy, Debug)]
pub struct Mismatch {
    pub gpgdir: u32,
    pub va: u32,
    /// The guest frame and permissions the shadow maps.
    pub frame: u32,
    pub perm: u32,
    /// What the guest's tables say now.
    pub guest: Walk,
}

pub struct Shadows {
    mem: GuestMem,
    pool: Pool,
    t: Tables,
    slots: [Option<Slot>; SLOTS],
    current: usize,
    evict_next: usize,
    switcher_pde: u32,
    /// From lguest_data: above it, all pgdirs map the same.
    pub kernel_address: u32,
    pub stats: Stats,
    /// What the audit of each shadow found as it was evicted.
    pub evicted: Findings,
}

/// Shadow table pages, by host-physical address.
#[derive(Clone, Copy)]
struct Tables(HostPhys);

impl Tables {
    fn entry(&self, table: Page, index: u32) -> *mut u32 {
        assert!(index < 1024);
        (self.0.ptr(table) as *mut u32).wrapping_add(index as usize)
    }

    fn read(&self, table: Page, index: u32) -> u32 {
        // SAFETY: a shadow table page from the pool (host RAM HostPhys
        // maps), index < 1024.
        unsafe { self.entry(table, index).read_volatile() }
    }

    fn write(&self, table: Page, index: u32, v: u32) {
        // SAFETY: as for read; the MMU only reads these while the guest
        // runs, and the guest is stopped.
        unsafe { self.entry(table, index).write_volatile(v) }
    }
}

impl Shadows {
    /// Shadows for a guest starting on the pgdir at `gpgdir`.
    pub fn new(mem: GuestMem, pool: Pool, switcher_pde: u32, gpgdir: u32) -> Result<Shadows> {
        let mut s = Shadows {
            mem,
            t: Tables(pool.phys()),
            pool,
            slots: [None; SLOTS],
            current: 0,
            evict_next: 1,
            switcher_pde,
            kernel_address: arch_i386::layout::PAGE_OFFSET,
            stats: Stats::default(),
            evicted: Findings::default(),
        };
        s.slots[0] = Some(s.new_slot(gpgdir)?);
        Ok(s)
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    fn new_slot(&mut self, gpgdir: u32) -> Result<Slot> {
        let spgdir = self.alloc()?;
        self.t.write(spgdir, SWITCHER_PGD_INDEX, self.switcher_pde);
        Ok(Slot { gpgdir, spgdir })
    }

    fn alloc(&mut self) -> Result<Page> {
        if let Some(p) = self.pool.alloc() {
            return Ok(p);
        }
        // Out of pages: drop every shadow mapping (they refill on demand).
        self.stats.pool_resets += 1;
        for i in 0..SLOTS {
            self.release_all(i);
        }
        self.pool
            .alloc()
            .ok_or_else(|| fatal!("out of shadow pagetable pages ({} in the pool)", self.pool.total))
    }

    fn slot(&self, i: usize) -> Slot {
        self.slots[i].expect("slot in use")
    }

    /// CR3 for running the guest.
    pub fn cr3(&self) -> u32 {
        self.slot(self.current).spgdir
    }

    /// The guest pgdir the guest runs on.
    pub fn gpgdir(&self) -> u32 {
        self.slot(self.current).gpgdir
    }

    fn release_pgd(&mut self, i: usize, index: u32) {
        let spgdir = self.slot(i).spgdir;
        let e = self.t.read(spgdir, index);
        if e & P != 0 {
            self.pool.free(e & !0xFFF);
            self.t.write(spgdir, index, 0);
        }
    }

    fn release_all(&mut self, i: usize) {
        if self.slots[i].is_some() {
            for index in 0..SWITCHER_PGD_INDEX {
                self.release_pgd(i, index);
            }
        }
    }

    /// The host-side pte for guest `frame` with permissions `perm`.
    fn spte(&self, va: u32, frame: u32, perm: u32) -> Result<u32> {
        if frame >= self.mem.pages() {
            return Err(fatal!(
                "the guest maps {:#010x} to frame {:#x}, beyond its {} MiB",
                va,
                frame,
                self.mem.size >> 20
            ));
        }
        Ok(((self.mem.base >> 12) + frame) << 12 | perm | ACCESSED | DIRTY)
    }

    /// A page fault at `va` (error code `err`): fills the shadow entry if
    /// the guest's tables allow the access. False: the fault is the guest's.
    pub fn fault(&mut self, va: u32, err: u32) -> Result<bool> {
        if va >> 22 >= SWITCHER_PGD_INDEX {
            return Ok(false);
        }
        let (frame, perm) = match gpt::walk(&self.mem, self.gpgdir(), va)? {
            Walk::Mapped { frame, perm } => (frame, perm),
            Walk::Unmapped => return Ok(false),
            Walk::Large => {
                return Err(fatal!(
                    "the guest maps {:#010x} with a 4 MiB page: only 4 KiB pages are shadowed",
                    va
                ))
            }
        };
        let write_access = err & 0x2 != 0;
        let user_access = err & 0x4 != 0;
        if (write_access && perm & RW == 0) || (user_access && perm & USER == 0) {
            return Ok(false);
        }
        let spte = self.spte(va, frame, perm)?;
        let i = self.current;
        let mut spgd = self.t.read(self.slot(i).spgdir, va >> 22);
        if spgd & P == 0 {
            let table = self.alloc()?;
            // alloc may have dropped everything, but never the slots.
            spgd = table | P | RW | USER;
            self.t.write(self.slot(i).spgdir, va >> 22, spgd);
        }
        self.t.write(spgd & !0xFFF, (va >> 12) & 1023, spte);
        self.stats.filled += 1;
        Ok(true)
    }

    /// SET_PTE: the guest set the pte mapping `va` in the pagetable at
    /// `gpgdir` to `val`.
    pub fn set_pte(&mut self, gpgdir: u32, va: u32, val: u32) -> Result {
        if va >> 22 >= SWITCHER_PGD_INDEX {
            return Ok(());
        }
        let kernel = va >= self.kernel_address;
        for i in 0..SLOTS {
            let Some(slot) = self.slots[i] else { continue };
            if !kernel && slot.gpgdir != gpgdir {
                continue;
            }
            let spgd = self.t.read(slot.spgdir, va >> 22);
            if spgd & P == 0 {
                continue;
            }
            let mut spte = 0;
            if val & P != 0 {
                // The permission is this pgdir's pgd entry's and the new pte's.
                let pde = gpt::pgd_entry(&self.mem, slot.gpgdir, va)?;
                if pde & P != 0 && pde & gpt::PSE == 0 {
                    spte = self.spte(va, val >> 12, P | (pde & val & (RW | USER)))?;
                }
            }
            self.t.write(spgd & !0xFFF, (va >> 12) & 1023, spte);
            self.stats.set_pte_applied += 1;
        }
        Ok(())
    }

    /// SET_PMD: the guest changed entry `index` of its pgdir at `gpgdir`.
    pub fn set_pmd(&mut self, gpgdir: u32, index: u32) {
        // Entries over the Switcher are not the guest's to set.
        if index >= SWITCHER_PGD_INDEX {
            return;
        }
        if let Some(i) = self.find(gpgdir) {
            self.release_pgd(i, index);
            self.stats.pmd_dropped += 1;
        }
    }

    /// FLUSH_TLB: everything (`kernel`), or the current shadow's user part.
    pub fn flush(&mut self, kernel: bool) {
        if kernel {
            for i in 0..SLOTS {
                self.release_all(i);
            }
            self.stats.flushes_all += 1;
        } else {
            for index in 0..(self.kernel_address >> 22).min(SWITCHER_PGD_INDEX) {
                self.release_pgd(self.current, index);
            }
            self.stats.flushes_user += 1;
        }
    }

    fn find(&self, gpgdir: u32) -> Option<usize> {
        self.slots.iter().position(|s| s.is_some_and(|s| s.gpgdir == gpgdir))
    }

    /// NEW_PGTABLE: the guest loads the pgdir at `gpgdir`.
    pub fn switch_to(&mut self, gpgdir: u32) -> Result {
        if gpgdir & 0xFFF != 0 || !self.mem.contains(gpgdir, 4096) {
            return Err(fatal!("NEW_PGTABLE({:#x}): not a page of guest memory", gpgdir));
        }
        self.stats.switches += 1;
        if let Some(i) = self.find(gpgdir) {
            self.current = i;
            return Ok(());
        }
        let i = match self.slots.iter().position(|s| s.is_none()) {
            Some(i) => i,
            None => {
                // Evict round-robin, never the one in use.
                let mut i = self.evict_next;
                if i == self.current {
                    i = (i + 1) % SLOTS;
                }
                self.evict_next = (i + 1) % SLOTS;
                let mut found = self.evicted;
                self.audit_slot(self.slot(i), &mut found);
                self.evicted = found;
                self.release_all(i);
                let page = self.slot(i).spgdir;
                self.pool.free(page);
                self.slots[i] = None;
                self.stats.evictions += 1;
                i
            }
        };
        self.slots[i] = Some(self.new_slot(gpgdir)?);
        self.current = i;
        Ok(())
    }

    /// Checks every present shadow entry of `slot` against the guest's
    /// current tables: they must map the same frame with at least the
    /// shadow's permissions ([`crate::audit`]).
    fn audit_slot(&self, slot: Slot, found: &mut Findings) {
        found.pgdirs += 1;
        for index in 0..SWITCHER_PGD_INDEX {
            let spgd = self.t.read(slot.spgdir, index);
            if spgd & P == 0 {
                continue;
            }
            for j in 0..1024 {
                let spte = self.t.read(spgd & !0xFFF, j);
                if spte & P == 0 {
                    continue;
                }
                found.checked += 1;
                let va = (index << 22) | (j << 12);
                let frame = (spte >> 12) - (self.mem.base >> 12);
                let perm = spte & (P | RW | USER);
                let guest = gpt::walk(&self.mem, slot.gpgdir, va).unwrap_or(Walk::Unmapped);
                let backed =
                    matches!(guest, Walk::Mapped { frame: f, perm: p } if f == frame && p & perm == perm);
                if !backed {
                    found.bad(&Mismatch { gpgdir: slot.gpgdir, va, frame, perm, guest });
                }
            }
        }
    }

    /// Audits the shadows kept now.
    pub fn audit(&self) -> Findings {
        let mut found = Findings::default();
        for &slot in self.slots.iter().flatten() {
            self.audit_slot(slot, &mut found);
        }
        found
    }

    /// Shadow pgdirs in use.
    pub fn slots_used(&self) -> usize {
        self.slots.iter().flatten().count()
    }
}
