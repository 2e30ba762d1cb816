//! The running kernel's memory: every free frame in the runtime allocator,
//! temporary kernel mappings (kmap_atomic on the fixmap, kmap on the pkmap
//! area, kmap_atomic_pte for high pte pages through `Ctx::high`), and
//! address spaces, all through the backend's MMU ops.
//!
//! `selftest` exercises each runtime hook once, the way the process code
//! will: a highmem page zeroed and filled through kmap_atomic (`set_pte`,
//! `flush_tlb_single`); an address space created (`alloc_pd`), given a page
//! (`alloc_pt`), activated (`pin`, `write_cr3`), used, unmapped as a range
//! (`flush_tlb_user`), left (`write_cr3`) and destroyed (`unpin`,
//! `release_pt`, `release_pd`), with every frame accounted for.

use arch_i386::{Pfn, PteFlags};
use mm::fixmap::{FixSlot, KmapAtomic};
use mm::frames::{FrameAllocator, Zone};
use mm::highmem::{HighMem, Pkmap, PkmapSlot};
use mm::space::{AddressSpace, Ctx};
use mm::walk::Walker;
use mm::{Layout, MmError};
use paravirt::memmap::RegionKind;
use paravirt::{BootInfo, Hypervisor, PhysMem};

use crate::mem::DirectMap;
use crate::pagetable::Booted;
use crate::{fail, kprintln};

pub struct Memory {
    pub hv: &'static dyn Hypervisor,
    pub frames: FrameAllocator<'static>,
    pub layout: Layout,
    pub mem: DirectMap,
    pub kernel_root: Pfn,
    pub nx: bool,
    /// The paging features the kernel's pagetable was built with.
    pub caps: mm::Caps,
    /// How frames beyond the direct map are reached (HIGHPTE's pte pages).
    pub high: HighMem,
    /// The persistent kmap pool, for mappings held longer than one access.
    pub pkmap: Pkmap<'static>,
}

/// The frame bitmap: one bit per frame of a 32-bit physical address space
/// (128 KiB), in the image's bss so it exists before any allocator does.
struct Bitmap(core::cell::UnsafeCell<[u32; 1 << 15]>);

// SAFETY: handed out once (`TAKEN`), to the one runtime allocator.
unsafe impl Sync for Bitmap {}

static BITMAP: Bitmap = Bitmap(core::cell::UnsafeCell::new([0; 1 << 15]));
static TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The pkmap pool's use counts, one per entry of the pkmap pte page (at
/// most 1024), in the bss for the same reason as the bitmap.
struct PkmapSlots(core::cell::UnsafeCell<[PkmapSlot; 1024]>);

// SAFETY: handed out once, with the bitmap (`TAKEN`), to the one pool.
unsafe impl Sync for PkmapSlots {}

static PKMAP_SLOTS: PkmapSlots = PkmapSlots(core::cell::UnsafeCell::new([PkmapSlot::ZERO; 1024]));

impl Memory {
    /// Hands every frame the boot left free to the runtime allocator: RAM
    /// from the memory map (from 1 MiB up, the first megabyte is the PC's),
    /// minus what the boot reserved and what the boot allocator gave out.
    pub fn new(hv: &'static dyn Hypervisor, boot: &BootInfo, b: Booted) -> Memory {
        let end = Pfn((boot.memory.ram_end_below_4g() >> 12) as u32);
        assert!(!TAKEN.swap(true, core::sync::atomic::Ordering::SeqCst), "one runtime allocator");
        // SAFETY: the bitmap is handed out once (checked above) and lives
        // forever.
        let bits = unsafe { &mut *BITMAP.0.get() };
        // SAFETY: as the bitmap: handed out once, here.
        let slots = unsafe { &mut *PKMAP_SLOTS.0.get() };
        let pkmap = Pkmap::new(&mut slots[..b.layout.last_pkmap as usize]);
        let high = HighMem {
            layout: b.layout,
            kernel_root: b.pt.root,
            nx: b.paging.caps.nx,
            readonly_tables: hv.paging().pagetable_pages_readonly(),
        };
        let mut frames = FrameAllocator::new(bits, b.layout.max_low_pfn, end);
        let mut keep = [(Pfn(0), Pfn(0)); paravirt::bootinfo::MAX_RESERVED + mm::bootmem::MAX_FREE];
        let reserved = boot.reserved();
        keep[..reserved.len()].copy_from_slice(reserved);
        keep[reserved.len()..reserved.len() + b.nused].copy_from_slice(&b.used[..b.nused]);
        let keep = &keep[..reserved.len() + b.nused];
        let floor = Pfn(arch_i386::layout::KERNEL_PHYS_START >> 12);
        for r in boot.memory.regions().iter().filter(|r| r.kind == RegionKind::Ram) {
            let start = Pfn(((r.start + 0xFFF) >> 12).min(end.0 as u64) as u32).max(floor);
            let stop = Pfn((r.end() >> 12).min(end.0 as u64) as u32);
            add_unreserved(&mut frames, start, stop, keep);
        }
        let (free_low, free_high) = frames.free_count();
        kprintln!("memory: {} KiB free in low memory, {} KiB in high memory", free_low * 4, free_high * 4);
        Memory {
            hv,
            frames,
            layout: b.layout,
            mem: b.mem,
            kernel_root: b.pt.root,
            nx: b.paging.caps.nx,
            caps: b.paging.caps,
            high,
            pkmap,
        }
    }

    /// The kernel's own (live) pagetable.
    pub fn kernel(&self) -> Walker<'_> {
        Walker::live(self.hv.mmu(), &self.mem, self.layout.mode, self.kernel_root)
    }

    /// What mm's address-space code needs, with MMU ops `mmu` (the
    /// chosen backend's, as `&dyn Mmu` or, through `devirt!`, as their
    /// own type).
    pub fn ctx_with<'a, M: paravirt::Mmu + ?Sized>(&'a mut self, mmu: &'a M) -> Ctx<'a, 'static, M> {
        let policy = self.hv.paging();
        Ctx {
            mmu,
            mem: &self.mem,
            frames: &mut self.frames,
            mode: self.layout.mode,
            kernel_root: self.kernel_root,
            shared_kernel_pmd: policy.shared_kernel_pmd(),
            kernel_top: self.layout.fixaddr_top as u64 + 4096,
            high: Some(self.high),
            pkmap: Some(&mut self.pkmap),
        }
    }

    /// Fills frame `pfn` (of any zone) with `byte` through kmap_atomic.
    pub fn fill(&self, slot: FixSlot, pfn: Pfn, byte: u8) -> Result<(), MmError> {
        let w = self.kernel();
        let k = KmapAtomic::map(&w, &self.layout, slot, pfn, self.nx)?;
        // SAFETY: the fixmap slot maps the frame's 4096 bytes read-write
        // until `unmap`.
        unsafe { core::ptr::write_bytes(k.ptr(), byte, 4096) };
        k.unmap(&w, &self.layout)
    }

    /// Runs `f` on frame `pfn`'s 4096 bytes, as Linux's `kmap_atomic`
    /// does: a low-memory frame is in the direct map already (no mapping
    /// to make, which under a hypervisor would be hypercalls); a high one
    /// is mapped at fixmap `slot` for the call.
    pub fn with_page<R>(&self, slot: FixSlot, pfn: Pfn, f: impl FnOnce(*mut u8) -> R) -> Result<R, MmError> {
        if pfn < self.frames.max_low() {
            return Ok(f(self.mem.page(pfn)));
        }
        let w = self.kernel();
        let k = KmapAtomic::map(&w, &self.layout, slot, pfn, self.nx)?;
        let r = f(k.ptr());
        k.unmap(&w, &self.layout)?;
        Ok(r)
    }

    /// Zeroes a frame (either zone): a new user page.
    pub fn zero_page(&self, pfn: Pfn) -> Result<(), MmError> {
        // SAFETY: `with_page` hands over the frame's 4096 writable bytes.
        self.with_page(FixSlot::KmapUser0, pfn, |p| unsafe { core::ptr::write_bytes(p, 0, 4096) })
    }

    /// Copies frame `src` to frame `dst` (either zone): a copy-on-write
    /// break, through two temporary mappings where needed.
    pub fn copy_page(&self, src: Pfn, dst: Pfn) -> Result<(), MmError> {
        self.with_page(FixSlot::KmapUser0, src, |from| {
            // SAFETY: two distinct frames' 4096 bytes each, mapped (or in
            // the direct map) for the calls.
            self.with_page(FixSlot::KmapUser1, dst, |to| unsafe {
                core::ptr::copy_nonoverlapping(from, to, 4096)
            })
        })?
    }

    /// Writes `bytes` at `offset` of frame `pfn` (loading a program),
    /// through the persistent kmap: the loader's mapping of a page is not
    /// a one-access affair, and its entry is left for the pool's lazy flush
    /// rather than cleared and flushed at once.
    pub fn write_at(&mut self, pfn: Pfn, offset: usize, bytes: &[u8]) -> Result<(), MmError> {
        assert!(offset + bytes.len() <= 4096);
        let p = self.pkmap.kmap(&self.high, self.hv.mmu(), &self.mem, pfn)?;
        // SAFETY: kmap maps the frame's 4096 bytes writable until the
        // kunmap; the range is inside them (asserted).
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), p.add(offset), bytes.len()) };
        self.pkmap.kunmap(&self.high, pfn)
    }

    /// Sums frame `pfn`'s bytes through kmap_atomic.
    pub fn sum(&self, slot: FixSlot, pfn: Pfn) -> Result<u32, MmError> {
        let w = self.kernel();
        let k = KmapAtomic::map(&w, &self.layout, slot, pfn, self.nx)?;
        // SAFETY: as in `fill`; read only.
        let bytes = unsafe { core::slice::from_raw_parts(k.ptr(), 4096) };
        let s = bytes.iter().map(|&b| b as u32).sum();
        k.unmap(&w, &self.layout)?;
        Ok(s)
    }
}

impl paravirt::Services for Memory {
    fn map_device(&self, what: paravirt::DevicePage, phys: u64) -> Result<usize, paravirt::HvError> {
        // Device registers uncached; a ring in RAM shared with another
        // domain write-back like any memory.
        let (slot, uncached) = match what {
            paravirt::DevicePage::Lapic => (FixSlot::Lapic, true),
            paravirt::DevicePage::Console => (FixSlot::Console, false),
        };
        if phys & 0xFFF != 0 || phys >> 12 > u32::MAX as u64 {
            return Err(paravirt::HvError::local("map_device: not a page address", &[phys]));
        }
        let mut flags = mm::fixmap::kernel_data(self.nx);
        if uncached {
            flags |= PteFlags::PCD | PteFlags::PWT;
        }
        let w = self.kernel();
        match mm::fixmap::set_fixmap(&w, &self.layout, slot, Pfn((phys >> 12) as u32), flags) {
            Ok(va) => Ok(va.0 as usize),
            Err(MmError::Hv(e)) => Err(e),
            Err(_) => {
                Err(paravirt::HvError::local("map_device: the fixmap slot's pte page is missing", &[phys]))
            }
        }
    }
}

fn add_unreserved(frames: &mut FrameAllocator, start: Pfn, stop: Pfn, reserved: &[(Pfn, Pfn)]) {
    if start >= stop {
        return;
    }
    match reserved.iter().find(|(s, e)| *s < stop && *e > start) {
        Some(&(s, e)) => {
            add_unreserved(frames, start, s, reserved);
            add_unreserved(frames, e, stop, reserved);
        }
        None => frames.add_free(start, stop),
    }
}

/// User addresses the self-test maps (and nothing else uses): one before
/// the space's first activation, one in a pte page of its own after.
const PROBE_VA: u32 = 0x4000_0000;
const LATE_VA: u32 = 0x8000_0000;

/// Every runtime MMU hook once, through real work; a problem ends the run.
pub fn selftest(m: &mut Memory) {
    if let Err(e) = try_selftest(m) {
        fail!("runtime memory self-test: {}", e);
    }
    if let Err(e) = pkmap_selftest(m) {
        fail!("pkmap self-test: {}", e);
    }
}

/// With enough high memory: one more distinct high frame kmapped than the
/// pool has slots, so the search wraps and flushes; the slot then reused
/// must reach its new frame, not the old one a stale TLB entry would.
fn pkmap_selftest(m: &mut Memory) -> Result<(), MmError> {
    let n = m.pkmap.slots() as u32 + 1;
    if m.frames.free_count().1 < n {
        kprintln!(
            "pkmap: {} KiB of free high memory, fewer than {} frames: the wrap is not tried",
            m.frames.free_count().1 * 4,
            n
        );
        return Ok(());
    }
    let oom = MmError::OutOfMemory { what: "pkmap test page", allocated: 0 };
    let (flushes, first) = (m.pkmap.stats.flushes, m.pkmap.stats.kmaps);
    let mut old = None;
    let mut result = Ok(());
    for i in 0..n {
        // Each frame but the first goes back after its kunmap (its pkmap
        // entry stays until the flush, as after any kunmap); the
        // allocator's search moves on, so the next is another frame. A
        // frame met twice would reuse its slot and the pool would not
        // wrap: the flush count below would say so.
        let pfn = m.frames.alloc(Zone::High).ok_or(oom)?;
        let p = m.pkmap.kmap(&m.high, m.hv.mmu(), &m.mem, pfn)?;
        // SAFETY: kmap maps the frame's 4096 bytes writable until the
        // kunmap; the frame is this test's.
        unsafe { (p as *mut u32).write_volatile(0x9000_0000 | i) };
        m.pkmap.kunmap(&m.high, pfn)?;
        if i == 0 {
            old = Some(pfn);
        }
        if i + 1 == n {
            // The last kmap took the slot the first one had before the
            // flush: the first frame must still read 0x90000000.
            let first_reads =
                // SAFETY: `with_page` hands over the frame's 4096 bytes.
                m.with_page(FixSlot::Probe, old.unwrap(), |q| unsafe { (q as *const u32).read_volatile() })?;
            // SAFETY: as above.
            let last_reads =
                m.with_page(FixSlot::Probe, pfn, |q| unsafe { (q as *const u32).read_volatile() })?;
            if first_reads != 0x9000_0000 || last_reads != 0x9000_0000 | i {
                result = Err(());
                kprintln!("pkmap: first frame reads {:#x}, last {:#x}", first_reads, last_reads);
            }
        }
        if i != 0 {
            m.frames.free(pfn).map_err(|e| MmError::DoubleFree { pfn: e.0 })?;
        }
    }
    if let Some(p) = old {
        m.frames.free(p).map_err(|e| MmError::DoubleFree { pfn: e.0 })?;
    }
    kprintln!(
        "pkmap: {} kmaps of {} high frames through a pool of {} slots: {} lazy flush, the reused slot reaches its new frame",
        m.pkmap.stats.kmaps - first,
        n,
        m.pkmap.slots(),
        m.pkmap.stats.flushes - flushes
    );
    if result.is_err() || m.pkmap.stats.flushes - flushes != 1 {
        fail!("pkmap: the wrap did not flush once, or a reused slot reached a stale frame");
    }
    Ok(())
}

fn try_selftest(m: &mut Memory) -> Result<(), MmError> {
    let before = m.frames.free_count();
    // A page of the highest zone there is, filled and read back through
    // two different temporary mappings.
    let page = m.frames.alloc(Zone::High).ok_or(MmError::OutOfMemory { what: "test page", allocated: 0 })?;
    m.fill(FixSlot::KmapUser0, page, 0x5A)?;
    if m.sum(FixSlot::KmapUser1, page)? != 0x5A * 4096 {
        fail!("kmap_atomic: a page filled through one fixmap slot reads back differently through another");
    }
    // An address space of its own, that page mapped in it, used through
    // it from the kernel.
    let mut ctx = m.ctx_with(m.hv.mmu());
    let mut space = AddressSpace::new(&mut ctx)?;
    space.map(&mut ctx, PROBE_VA, page, PteFlags::RW)?;
    space.map(&mut ctx, PROBE_VA + 4096, page, PteFlags::empty())?;
    // SAFETY: the space's kernel half is the kernel's; nothing uses user
    // mappings while the self-test runs.
    unsafe { space.activate(&mut ctx)? };
    // A pte page made while the space is pinned (the hypervisor validates
    // it at once), emptied and freed by an munmap while the space is live.
    space.map(&mut ctx, LATE_VA, page, PteFlags::empty())?;
    let probe = PROBE_VA as *mut u32;
    // SAFETY: PROBE_VA is mapped read-write in the live space (just above),
    // to a frame this test owns; a supervisor access to a user page.
    unsafe { probe.add(5).write_volatile(0xC0FF_EE00) };
    // SAFETY: the other pages map the same frame, read-only.
    let seen = unsafe { ((PROBE_VA + 4096) as *const u32).add(5).read_volatile() };
    // SAFETY: as above.
    let late = unsafe { (LATE_VA as *const u32).add(5).read_volatile() };
    let mut unmapped = space.unmap_range(&mut ctx, LATE_VA, 1024, true, |_, _| {})?;
    unmapped += space.unmap_range(&mut ctx, PROBE_VA, 2, true, |_, _| {})?;
    // SAFETY: back to the kernel's own pagetable, complete and pinned.
    unsafe { ctx.mmu.write_cr3(ctx.kernel_root)? };
    let counts = space.destroy(&mut ctx, |_, _| {})?;
    if seen != 0xC0FF_EE00 || late != seen || unmapped != 3 {
        fail!(
            "address space: a write through one user mapping read {:#x} and {:#x} through the others ({} unmapped)",
            seen,
            late,
            unmapped
        );
    }
    if m.sum(FixSlot::Probe, page)? != 0x5A * 4092 + (0xC0 + 0xFF + 0xEE) {
        fail!("address space: the write through the user mapping did not reach the frame");
    }
    m.frames.free(page).map_err(|e| MmError::DoubleFree { pfn: e.0 })?;
    let after = m.frames.free_count();
    kprintln!(
        "runtime: kmap_atomic, and an address space: alloc_pt {} alloc_pd {} pin {} / unpin {} release_pt {} release_pd {}; free frames {:?} -> {:?}",
        counts.alloc_pt,
        counts.alloc_pd,
        counts.pins,
        counts.unpins,
        counts.release_pt,
        counts.release_pd,
        before,
        after
    );
    if counts.alloc_pt != counts.release_pt || counts.alloc_pd != counts.release_pd || before != after {
        fail!("runtime: pagetable pages or frames leaked");
    }
    Ok(())
}
