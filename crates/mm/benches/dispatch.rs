//! Does building the pagetable through `&dyn Mmu` cost more than a
//! direct, statically dispatched writer?
//!
//! The same `pagetable_init` runs twice per round over simulated memory:
//! once with the native MMU ops behind `&dyn Mmu` (as the kernel
//! calls it) and once with the concrete type, where every hook call is
//! direct and inlinable. The map: 896 MiB of low memory, PAE, 4 KiB pages
//! (229 376 ptes, the worst case for per-entry overhead). Prints the median
//! of each and their ratio; the target is within 5%.

use std::hint::black_box;
use std::time::{Duration, Instant};

use arch_i386::{PagingMode, Pfn};
use mm::sim::{image, NativeOnHost, SimMem};
use mm::{pagetable_init, BootAlloc, Caps, Layout};
use paravirt::memmap::{MemoryMap, Region, RegionKind};
use paravirt::Mmu;

const LOW: u64 = 896 << 20;
/// Frames the simulation needs: the image area and the table pages.
const SIM_PAGES: usize = 0x200 + 1024;

fn build<M: Mmu + ?Sized>(mmu: &M, sim: &SimMem, map: &MemoryMap, layout: &Layout) -> Duration {
    let caps = Caps { large_pages: false, global_pages: true, nx: true };
    let mut alloc = BootAlloc::new(sim, map, Pfn(0x200), Pfn(SIM_PAGES as u32), &[]).expect("allocator");
    let t = Instant::now();
    let pt = pagetable_init(mmu, sim, &mut alloc, layout, caps, &mut |_| {}).expect("build");
    let d = t.elapsed();
    black_box(pt);
    d
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(101);
    let sim = SimMem::new(SIM_PAGES);
    let mut map = MemoryMap::default();
    map.push(Region { start: 0, len: LOW, kind: RegionKind::Ram }).unwrap();
    let layout = Layout::new(PagingMode::Pae, LOW, 0, image());
    let native = NativeOnHost;
    let as_dyn: &dyn Mmu = &native;
    let (mut dynamic, mut direct) = (Vec::new(), Vec::new());
    // Warm up, then alternate so drift hits both alike.
    build(as_dyn, &sim, &map, &layout);
    build(&native, &sim, &map, &layout);
    for _ in 0..rounds {
        dynamic.push(build(as_dyn, &sim, &map, &layout));
        direct.push(build(&native, &sim, &map, &layout));
    }
    let d = median(&mut dynamic);
    let s = median(&mut direct);
    let ptes = layout.max_low_pfn.0;
    println!("dispatch: ptes {ptes}");
    println!("dispatch: dyn_ns {}", d.as_nanos());
    println!("dispatch: direct_ns {}", s.as_nanos());
    println!("dispatch: ratio {:.4}", d.as_secs_f64() / s.as_secs_f64());
}
