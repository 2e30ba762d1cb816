//! The process workload every boot runs last, and what it proves.
//!
//! The kernel starts the embedded `init` (pid 1) with how many children to
//! fork and how much memory each may touch, runs processes until init has
//! ended (the idle task halts whenever nothing can run), and then checks
//! what the issue asks of every environment:
//! - init's own verdict (it checked every child's exit status and
//!   checksum, the killed ones, the spinner that only the timer could
//!   stop) is exit status 0;
//! - every runtime `alloc_pt`/`alloc_pd` was matched by a release, every
//!   pin by an unpin;
//! - every frame is back: the free counts equal those before the
//!   workload, and no frame is still counted as mapped.

use arch_i386::layout::PAGE_OFFSET;
use mm::refs::FrameRefs;
use paravirt::Hypervisor;

use crate::memory::Memory;
use crate::sched::{self, with};
use crate::{fail, kprintln, time};

/// The scheduler's tick.
const TICK_NS: u64 = 10_000_000;

pub struct Params {
    pub children: u32,
    pub max_mib: u32,
    /// fork number N's copy is refused (fault injection), 0: none.
    pub fail_fork: u32,
}

/// The workload's size: `procs=N` children (by default 8, or 4 on a
/// machine with less than 32 MiB free) of at most `procmem=M` MiB each (by
/// default 4, or 1 with less than 60 MiB free). The matrix asks for 64
/// children where memory allows; the default keeps every other row quick.
pub fn params(mem: &Memory, children: Option<u32>, max_mib: Option<u32>, fail_fork: u32) -> Params {
    let (low, high) = mem.frames.free_count();
    let free_mib = (low + high) / 256;
    let max = max_mib.unwrap_or(if free_mib >= 60 { 4 } else { 1 });
    let children = children.unwrap_or(if free_mib >= 32 { 8 } else { 4 });
    if children == 0 || children > 120 || max == 0 || max > 64 {
        fail!("processes: procs= takes 1 to 120 children and procmem= 1 to 64 MiB");
    }
    if children * (max + 1) / 2 + 8 > free_mib {
        fail!(
            "processes: {} children of up to {} MiB do not fit in {} MiB free: lower procs= or procmem=",
            children,
            max,
            free_mib
        );
    }
    Params { children, max_mib: max, fail_fork }
}

pub fn run(hv: &'static dyn Hypervisor, mut mem: Memory, p: Params) {
    if crate::programs::find("init").is_none() {
        kprintln!("processes: no init in this image, skipped");
        return;
    }
    // One count per frame of RAM, in contiguous low memory.
    let end = mem.frames.end().0 as usize;
    let pages = end.div_ceil(4096) as u32;
    let Some(first) = mem.frames.alloc_contiguous(pages) else {
        fail!("processes: no {} contiguous pages for the frame counts", pages)
    };
    // SAFETY: `pages` contiguous low-memory frames just allocated, in the
    // direct map, owned by the counts for the rest of the run.
    let counts = unsafe { core::slice::from_raw_parts_mut((PAGE_OFFSET + (first.0 << 12)) as *mut u8, end) };
    let before = mem.frames.free_count();
    sched::start(mem, FrameRefs::new(counts), p.fail_fork);
    time::start_tick(TICK_NS, true);
    if crate::perf::enabled() {
        // The process benchmark first, alone: its figures are per
        // operation, with nothing else runnable.
        let pid = match with(|ps| ps.spawn("bench", 0, 0)) {
            Ok(pid) => pid,
            Err(e) => fail!("processes: spawning bench: error {}", e),
        };
        let st = sched::idle_until_reaped(pid);
        if st != 0 {
            fail!("processes: the benchmark ended with status {:#x}", st);
        }
        crate::perf::phase("proc_bench");
    }
    let flags = if p.fail_fork != 0 { user_abi::init::FORK_MAY_FAIL } else { 0 };
    let arg =
        user_abi::init::Arg { n_children: p.children as u8, max_mib: p.max_mib as u8, flags: flags as u16 }
            .encode();
    let init = match with(|ps| ps.spawn("init", arg, 0)) {
        Ok(pid) => pid,
        Err(e) => fail!("processes: spawning init: error {}", e),
    };
    kprintln!(
        "processes: init (pid {}) forks {} children of up to {} MiB each{}",
        init,
        p.children,
        p.max_mib,
        if p.fail_fork != 0 { ", the copy of one fork refused" } else { "" }
    );
    let st = sched::idle_until_reaped(init);
    time::stop_tick();
    crate::perf::phase("processes");
    sched::finish(|ps| check(hv, ps, st, before));
}

fn check(hv: &dyn Hypervisor, ps: &sched::Procs, st: u32, before: (u32, u32)) {
    let s = ps.stats;
    kprintln!(
        "processes: {} spawned, {} forks ({} failed), {} exits, {} killed, at most {} alive; {} switches, {} system calls, {} demand faults, {} copy-on-write faults ({} copies)",
        s.spawned,
        s.forks,
        s.failed_forks,
        s.exits,
        s.killed,
        s.most_alive,
        s.switches,
        s.syscalls,
        s.demand_faults,
        s.cow_faults,
        s.cow_copies
    );
    let t = ps.totals;
    let after = ps.mem.frames.free_count();
    kprintln!(
        "processes: alloc_pt {} / release_pt {}, alloc_pd {} / release_pd {}, pin {} / unpin {}; free frames {:?} -> {:?}, {} still counted as mapped ({})",
        t.alloc_pt,
        t.release_pt,
        t.alloc_pd,
        t.release_pd,
        t.pins,
        t.unpins,
        before,
        after,
        ps.refs.in_use(),
        hv.name()
    );
    if st != 0 {
        fail!("processes: init ended with status {:#x}", st);
    }
    if ps.tasks.iter().skip(1).any(Option::is_some) {
        fail!("processes: a process outlived init");
    }
    if t.alloc_pt != t.release_pt || t.alloc_pd != t.release_pd || t.pins != t.unpins {
        fail!("processes: pagetable pages allocated and released, or pinned and unpinned, do not match");
    }
    if before != after || ps.refs.in_use() != 0 {
        fail!("processes: frames leaked");
    }
    if !ps.checked {
        fail!("processes: init never waited, so the process checks did not run");
    }
    let pk = ps.mem.pkmap.stats;
    kprintln!(
        "highmem: {} user pte pages in high memory (kmap_atomic_pte), {} kmaps through {} pkmap slots ({} flushes), {} KiB of high memory",
        t.high_pt,
        pk.kmaps,
        ps.mem.pkmap.slots_used(),
        pk.flushes,
        ps.mem.layout.highmem_pages * 4
    );
    if ps.mem.pkmap.in_use() != 0 {
        fail!("highmem: {} pkmap slots still in use", ps.mem.pkmap.in_use());
    }
    if ps.mem.layout.highmem_pages > 0 && (t.high_pt == 0 || pk.kmaps == 0) {
        fail!("highmem: there is high memory, but no pte page or kmap used it");
    }
    let n = crate::proccheck::free_frames_writable(ps);
    kprintln!("processes: SUCCESS: {} free low frames all mapped writable again", n);
}
