//! What calling the backend through `&dyn Mmu` costs, measured in the
//! running kernel: the same pagetable build (the direct map of all low
//! memory, the fixmap's and pkmap's pte pages; `mm::pagetable::build_detached`)
//! run twice over the same spare frames, once through the chosen backend's
//! trait object, as the boot build runs, and once monomorphized for the
//! backend's concrete type, where every hook is a direct call the compiler
//! may inline. Under `-icount` the two counts are exact and their ratio is
//! the dispatch's cost (`cargo xtask bench` gates it).
//!
//! Only where the chosen backend's MMU type can be named without naming a
//! backend: paravirt's native MMU ops, which native and PVH use.

use arch_i386::Pfn;
use mm::pagetable::build_detached;
use mm::{BuildStats, Caps, Layout};
use paravirt::{Mmu, PageAlloc, PhysMem};

use crate::memory::Memory;
use crate::{fail, kprintln, perf};

/// Hands out the frames of one contiguous block in order (so the build's
/// fresh set is one run), zeroed on request through the direct map.
struct Block<'a> {
    mem: &'a dyn PhysMem,
    next: Pfn,
    end: Pfn,
}

impl PageAlloc for Block<'_> {
    fn alloc_page(&mut self) -> Option<Pfn> {
        let p = self.alloc_page_uninit()?;
        // SAFETY: the block's frames are low memory the runtime allocator
        // handed out (reachable through the live direct map, writable),
        // owned by this measurement until it frees them.
        unsafe { core::ptr::write_bytes(self.mem.page(p), 0, 4096) };
        Some(p)
    }

    fn alloc_page_uninit(&mut self) -> Option<Pfn> {
        (self.next < self.end).then(|| {
            let p = self.next;
            self.next = Pfn(p.0 + 1);
            p
        })
    }
}

/// One build over `[first, first + n)`: its TSC ticks and what it did.
fn time_build<M: Mmu + ?Sized>(
    mmu: &M,
    mem: &dyn PhysMem,
    first: Pfn,
    n: u32,
    layout: &Layout,
    caps: Caps,
) -> (u64, BuildStats) {
    let mut block = Block { mem, next: first, end: Pfn(first.0 + n) };
    let t0 = arch_i386::cpu::rdtsc();
    let r = build_detached(mmu, mem, &mut block, layout, caps, &mut |_| {});
    let t1 = arch_i386::cpu::rdtsc();
    match r {
        Ok((_, stats)) => (t1 - t0, stats),
        Err(e) => fail!("dispatch benchmark: a detached build failed: {}", e),
    }
}

/// Prints `perf: dispatch.dyn.insns` and `perf: dispatch.direct.insns`
/// when figures are wanted and the backend's type is known.
pub fn measure(m: &mut Memory) {
    if !perf::enabled() {
        return;
    }
    let Some(native) = paravirt::native::as_native(m.hv.mmu()) else {
        return;
    };
    // The build's pages and a few spare: the fixmap and pkmap tables are
    // counted in the minimum, a page the image forces is not.
    let n = m.layout.min_table_pages(&m.caps) + 8;
    let Some(first) = m.frames.alloc_contiguous(n) else {
        fail!("dispatch benchmark: no {} contiguous low frames for a detached build", n)
    };
    let (layout, caps) = (m.layout, m.caps);
    let (dyn_insns, dyn_stats) = time_build(m.hv.mmu(), &m.mem, first, n, &layout, caps);
    let (direct_insns, direct_stats) = time_build(native, &m.mem, first, n, &layout, caps);
    if dyn_stats != direct_stats {
        fail!("dispatch benchmark: the build through &dyn Mmu and the direct one did different work");
    }
    for i in 0..n {
        if m.frames.free(Pfn(first.0 + i)).is_err() {
            fail!("dispatch benchmark: frame {:#x} was not allocated", first.0 + i);
        }
    }
    kprintln!(
        "dispatch: detached build of {} ptes and {} large pages: &dyn Mmu {} instructions, direct {}",
        dyn_stats.ptes_written,
        dyn_stats.large_written,
        dyn_insns,
        direct_insns
    );
    perf::figure("dispatch.dyn.insns", dyn_insns);
    perf::figure("dispatch.direct.insns", direct_insns);
}
