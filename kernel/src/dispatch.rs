//! What calling the backend through `&dyn Mmu` costs, measured in the
//! running kernel, and what `devirt!` saves of it.
//!
//! The same pagetable build (the direct map of all low memory, the
//! fixmap's and pkmap's pte pages: `mm::pagetable::build_detached`) runs
//! three times over the same spare frames: through the chosen backend's
//! trait object (`dyn`: mm instantiated for `dyn Mmu`, every hook an
//! indirect call), monomorphized for the backend's concrete type
//! (`direct`: every hook a direct call the compiler may inline), and the
//! way the kernel runs its own build (`kernel`: `devirt!`, the type asked
//! for at run time, then the monomorphized code). The same for the
//! process path: fork+exit of a process with 1 MiB mapped, as mm does it
//! (a new address space, every user pte copied and the parent's
//! write-protected in one lazy batch, the child destroyed). Under
//! `-icount` the counts are exact; `cargo xtask bench` gates `kernel`
//! against `direct` and reports `dyn` against `direct`.
//!
//! Only where the chosen backend's MMU type can be named without naming a
//! backend: paravirt's native MMU ops, which native and PVH use.

use arch_i386::{Pfn, PteFlags};
use mm::frames::Zone;
use mm::pagetable::build_detached;
use mm::space::{AddressSpace, Ctx};
use mm::{BuildStats, Caps, Layout, MmError};
use paravirt::{Mmu, PageAlloc, PhysMem};

use crate::devirt::devirt;
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

/// TSC ticks `f` takes, and what it returned.
fn timed<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let t0 = arch_i386::cpu::rdtsc();
    let r = f();
    (arch_i386::cpu::rdtsc() - t0, r)
}

/// One detached build through `mmu`, over the frames `[first, first + n)`.
fn build<M: Mmu + ?Sized>(
    mmu: &M,
    mem: &dyn PhysMem,
    first: Pfn,
    n: u32,
    layout: &Layout,
    caps: Caps,
) -> Result<BuildStats, MmError> {
    let mut block = Block { mem, next: first, end: Pfn(first.0 + n) };
    build_detached(mmu, mem, &mut block, layout, caps, &mut |_| {}).map(|(_, stats)| stats)
}

/// Where the forked process's 1 MiB is mapped.
const FORK_VA: u32 = 0x1000_0000;
const FORK_PAGES: u32 = 256;

/// A process's address space with `FORK_PAGES` pages mapped, all to
/// `page` (what they map does not change the pagetable work).
fn parent(m: &mut Memory, page: Pfn) -> Result<AddressSpace, MmError> {
    let mut ctx = m.ctx_with(m.hv.mmu());
    let mut space = AddressSpace::new(&mut ctx)?;
    for i in 0..FORK_PAGES {
        space.map(&mut ctx, FORK_VA + i * 4096, page, PteFlags::RW)?;
    }
    Ok(space)
}

/// Fork and the child's exit: a new space, the copy, the child destroyed.
/// Returns the pages shared.
fn fork_exit<M: Mmu + ?Sized>(
    ctx: &mut Ctx<'_, 'static, M>,
    parent: &mut AddressSpace,
) -> Result<u32, MmError> {
    let mut child = AddressSpace::new(ctx)?;
    let shared = parent.fork_into(ctx, &mut child, false, |_| Ok(()))?;
    child.destroy(ctx, |_, _| {})?;
    Ok(shared)
}

/// Prints `perf: dispatch.{dyn,direct,kernel}.insns` (the build) and
/// `perf: dispatch.fork.{dyn,direct,kernel}.insns` (the process path)
/// when figures are wanted and the backend's type is known.
pub fn measure(m: &mut Memory) {
    if !perf::enabled() {
        return;
    }
    let hv = m.hv;
    let Some(native) = paravirt::native::as_native(hv.mmu()) else {
        return;
    };
    let t0 = arch_i386::cpu::rdtsc();
    // The build's pages and a few spare: the fixmap and pkmap tables are
    // counted in the minimum, a page the image forces is not.
    let n = m.layout.min_table_pages(&m.caps) + 8;
    let Some(first) = m.frames.alloc_contiguous(n) else {
        fail!("dispatch benchmark: no {} contiguous low frames for a detached build", n)
    };
    let (layout, caps, mem) = (m.layout, m.caps, m.mem);
    let (dyn_insns, a) = timed(|| build(hv.mmu(), &mem, first, n, &layout, caps));
    let (direct_insns, b) = timed(|| build(native, &mem, first, n, &layout, caps));
    let (kernel_insns, c) = timed(|| devirt!(hv.mmu(), |x| build(x, &mem, first, n, &layout, caps)));
    let stats = match (a, b, c) {
        (Ok(a), Ok(b), Ok(c)) if a == b && b == c => a,
        (Ok(_), Ok(_), Ok(_)) => fail!("dispatch benchmark: the three builds did different work"),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            fail!("dispatch benchmark: a detached build: {}", e)
        }
    };
    for i in 0..n {
        if m.frames.free(Pfn(first.0 + i)).is_err() {
            fail!("dispatch benchmark: frame {:#x} was not allocated", first.0 + i);
        }
    }

    let Some(page) = m.frames.alloc(Zone::Low) else { fail!("dispatch benchmark: no frame to map") };
    let mut space = match parent(m, page) {
        Ok(s) => s,
        Err(e) => fail!("dispatch benchmark: a process to fork: {}", e),
    };
    let (fork_dyn, a) = timed(|| fork_exit(&mut m.ctx_with(hv.mmu()), &mut space));
    let (fork_direct, b) = timed(|| fork_exit(&mut m.ctx_with(native), &mut space));
    let (fork_kernel, c) = timed(|| devirt!(hv.mmu(), |x| fork_exit(&mut m.ctx_with(x), &mut space)));
    match (a, b, c) {
        (Ok(FORK_PAGES), Ok(FORK_PAGES), Ok(FORK_PAGES)) => {}
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => fail!("dispatch benchmark: fork+exit: {}", e),
        _ => fail!("dispatch benchmark: a fork did not share the {} pages", FORK_PAGES),
    }
    if let Err(e) = space.destroy(&mut m.ctx_with(hv.mmu()), |_, _| {}) {
        fail!("dispatch benchmark: destroying the forked process: {}", e);
    }
    if m.frames.free(page).is_err() {
        fail!("dispatch benchmark: frame {:#x} was not allocated", page.0);
    }
    // Only some environments run this: it is not part of the boot's total.
    perf::exclude(arch_i386::cpu::rdtsc() - t0);
    kprintln!(
        "dispatch: detached build of {} ptes and {} large pages: &dyn Mmu {} instructions, direct {}, the kernel's (devirt!) {}",
        stats.ptes_written,
        stats.large_written,
        dyn_insns,
        direct_insns,
        kernel_insns
    );
    kprintln!(
        "dispatch: fork+exit of {} pages: &dyn Mmu {} instructions, direct {}, the kernel's (devirt!) {}",
        FORK_PAGES,
        fork_dyn,
        fork_direct,
        fork_kernel
    );
    for (name, v) in [
        ("dispatch.dyn.insns", dyn_insns),
        ("dispatch.direct.insns", direct_insns),
        ("dispatch.kernel.insns", kernel_insns),
        ("dispatch.fork.dyn.insns", fork_dyn),
        ("dispatch.fork.direct.insns", fork_direct),
        ("dispatch.fork.kernel.insns", fork_kernel),
    ] {
        perf::figure(name, v);
    }
}
