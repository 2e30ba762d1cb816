//! Processes: their table, the scheduler, and their life (spawn, fork,
//! exit, wait, sleep, kill).
//!
//! One CPU, and the kernel runs with interrupts disabled (every gate is an
//! interrupt gate; Xen masks events on entry; lguest clears `irq_enabled`):
//! user mode and the idle loop's halt are the only places interrupts come
//! in. So the process table needs no lock against interrupt handlers but a
//! `Mutex` all the same, to catch a re-entry bug as a hang in one place
//! rather than as corruption; it is never held across `switch_context`,
//! nor while touching user memory (which can fault, and the fault handler
//! takes it).
//!
//! ```text
//!  switch to task T:  hv.cpu().load_sp0(T's kernel stack)   TSS / stack_switch / SET_STACK
//!                     T's address space: activate           pin at first, write_cr3
//!                     switch_context(prev, T)               callee-saved registers, esp
//!  preemption:        the tick (time.rs) counts T's slice down; at the next
//!                     return to user mode T yields (return_to_user)
//! ```

use arch_i386::trap::EntryFrame;
use arch_i386::Pfn;
use mm::frames::{FrameAllocator, Zone};
use mm::refs::FrameRefs;
use mm::space::{AddressSpace, TableCounts};
use mm::MmError;
use spin::Mutex;
use user_abi::{errno, status};

use crate::devirt::devirt;
use crate::memory::Memory;
use crate::task::{State, Task, Vma, KSTACK_PAGES, MAX_TASKS};
use crate::{fail, kprintln, time};

/// Timer ticks a process runs before another may take the CPU.
pub const SLICE_TICKS: u32 = 2;

/// What the workload did, for the log and the bench.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stats {
    pub spawned: u32,
    pub forks: u32,
    pub failed_forks: u32,
    pub exits: u32,
    pub killed: u32,
    pub switches: u32,
    pub syscalls: u32,
    pub demand_faults: u32,
    pub cow_faults: u32,
    pub cow_copies: u32,
    pub most_alive: u32,
}

pub struct Procs {
    pub mem: Memory,
    pub refs: FrameRefs<'static>,
    pub tasks: &'static mut [Option<Task>; MAX_TASKS],
    pub current: usize,
    next_pid: u32,
    pub need_resched: bool,
    /// Pagetable-page traffic of every address space that has ended.
    pub totals: TableCounts,
    pub stats: Stats,
    /// `fail_fork=N`: the Nth fork's copy is refused (fault injection).
    pub fail_fork: u32,
    /// The process checks ran (once, at init's first wait).
    pub checked: bool,
    /// A grandchild's user half was dumped at its exit (once: its
    /// region is part copied, part still shared copy-on-write).
    cow_dumped: bool,
}

static PROCS: Mutex<Option<Procs>> = Mutex::new(None);

/// The task slots: 60-odd KiB, far too big to build on a kernel stack and
/// move, so they live in the image's bss and are handed to the table once.
struct Slots(core::cell::UnsafeCell<[Option<Task>; MAX_TASKS]>);

// SAFETY: handed out once (`SLOTS_TAKEN`), to the process table, which
// its Mutex guards.
unsafe impl Sync for Slots {}

static SLOTS: Slots = Slots(core::cell::UnsafeCell::new([const { None }; MAX_TASKS]));
static SLOTS_TAKEN: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Runs `f` on the process table. Not from an interrupt handler (see
/// `tick`), not across a switch, not while touching user memory.
pub fn with<R>(f: impl FnOnce(&mut Procs) -> R) -> R {
    let mut g = PROCS.try_lock().unwrap_or_else(|| fail!("the process table is already locked (re-entered)"));
    f(g.as_mut().unwrap_or_else(|| fail!("no processes yet")))
}

pub fn started() -> bool {
    PROCS.try_lock().is_some_and(|g| g.is_some())
}

// switch_context(prev_esp: *mut u32, next_esp: u32): saves the callee-saved
// registers on the current stack, stores esp through prev_esp, loads
// next_esp and restores what that stack saved. A new task's stack is
// built to "return" from here into the common exit path (entry.rs).
core::arch::global_asm!(
    ".pushsection .text.switch_context, \"ax\"",
    ".global switch_context",
    "switch_context:",
    "    mov eax, [esp + 4]",
    "    mov edx, [esp + 8]",
    "    push ebp",
    "    push ebx",
    "    push esi",
    "    push edi",
    "    mov [eax], esp",
    "    mov esp, edx",
    "    pop edi",
    "    pop esi",
    "    pop ebx",
    "    pop ebp",
    "    ret",
    ".popsection",
);

extern "C" {
    fn switch_context(prev_esp: *mut u32, next_esp: u32);
}

/// Words `switch_context` keeps on a stack below its return address.
const SAVED_WORDS: usize = 4;

impl Procs {
    pub fn cur(&mut self) -> &mut Task {
        self.tasks[self.current].as_mut().expect("the current task")
    }

    pub fn task(&mut self, slot: usize) -> &mut Task {
        self.tasks[slot].as_mut().expect("a task")
    }

    fn slot_of(&self, pid: u32) -> Option<usize> {
        self.tasks.iter().position(|t| t.as_ref().is_some_and(|t| t.pid == pid))
    }

    fn alive(&self) -> u32 {
        self.tasks.iter().flatten().filter(|t| t.pid != 0 && !matches!(t.state, State::Zombie(_))).count()
            as u32
    }

    pub fn any_runnable(&self) -> bool {
        self.tasks.iter().skip(1).flatten().any(|t| t.state == State::Runnable)
    }

    /// A user frame: high memory first (that is what it is for), zeroed
    /// (through kmap_atomic if it is high), mapped once.
    pub fn user_frame(&mut self) -> Result<Pfn, MmError> {
        let pfn = self
            .mem
            .frames
            .alloc(Zone::High)
            .ok_or(MmError::OutOfMemory { what: "user page", allocated: 0 })?;
        self.mem.zero_page(pfn)?;
        self.refs.first(pfn);
        Ok(pfn)
    }

    /// A new task slot with a kernel stack; `None` if the table or memory
    /// is full.
    fn new_task(&mut self, ppid: u32, name: &'static str) -> Option<usize> {
        let slot = self.tasks.iter().position(Option::is_none)?;
        let kstack = self.mem.frames.alloc_contiguous(KSTACK_PAGES)?;
        let pid = self.next_pid;
        self.next_pid += 1;
        let mut t = Task::new(pid, ppid, name);
        t.kstack = Some(kstack);
        self.tasks[slot] = Some(t);
        Some(slot)
    }

    /// Lays out a task's kernel stack so that switching to it "returns"
    /// into the exit path with `frame`: user mode at `frame.eip`.
    fn prime_stack(&mut self, slot: usize, frame: EntryFrame) {
        let t = self.task(slot);
        let at = t.user_frame();
        // SAFETY: the frame and the words below it lie inside the task's
        // kernel stack (two direct-mapped pages it owns), which nothing
        // else uses until the task runs.
        unsafe {
            at.write(frame);
            let words = (at as *mut u32).sub(SAVED_WORDS + 1);
            for i in 0..SAVED_WORDS {
                words.add(i).write(0);
            }
            words.add(SAVED_WORDS).write(crate::entry::return_path());
            t.ctx_esp = words as u32;
        }
    }

    /// The frame a new process starts from.
    fn first_frame(&self, entry: u32, arg: u32) -> EntryFrame {
        let sel = self.mem.hv.cpu().selectors();
        EntryFrame {
            eax: arg,
            es: sel.user_ds as u32,
            ds: sel.user_ds as u32,
            eip: entry,
            cs: sel.user_cs as u32,
            eflags: 0x202, // IF: user mode runs with interrupts on
            user_esp: user_abi::STACK_TOP,
            user_ss: sel.user_ds as u32,
            ..EntryFrame::default()
        }
    }

    /// A new process running embedded program `name`, a child of `ppid`.
    pub fn spawn(&mut self, name: &str, arg: u32, ppid: u32) -> Result<u32, i32> {
        let program = crate::programs::find(name).ok_or(-errno::ENOENT)?;
        let slot = self.new_task(ppid, program.name).ok_or(-errno::EAGAIN)?;
        let loaded = (|| -> Result<u32, MmError> {
            let space = devirt!(self.mem.hv.mmu(), |m| AddressSpace::new(&mut self.mem.ctx_with(m)))?;
            self.task(slot).space = Some(space);
            let entry = crate::vm::load(self, slot, program.elf)?;
            let stack = Vma {
                start: user_abi::STACK_TOP - user_abi::STACK_SIZE,
                end: user_abi::STACK_TOP,
                writable: true,
                executable: false,
            };
            if !self.task(slot).add_vma(stack) {
                return Err(MmError::OutOfMemory { what: "a region slot", allocated: 0 });
            }
            Ok(entry)
        })();
        match loaded {
            Ok(entry) => {
                let frame = self.first_frame(entry, arg);
                self.prime_stack(slot, frame);
                self.stats.spawned += 1;
                self.stats.most_alive = self.stats.most_alive.max(self.alive());
                Ok(self.task(slot).pid)
            }
            Err(e) => {
                kprintln!("spawn {}: {}", name, e);
                self.discard(slot);
                Err(-errno::ENOMEM)
            }
        }
    }

    /// fork: a copy of the current process, its memory shared
    /// copy-on-write; in the child the system call returns 0.
    pub fn fork(&mut self, parent_frame: &EntryFrame) -> Result<u32, i32> {
        let parent = self.current;
        let (ppid, name) = {
            let p = self.cur();
            (p.pid, p.name)
        };
        let slot = self.new_task(ppid, name).ok_or(-errno::EAGAIN)?;
        self.stats.forks += 1;
        // fail_fork=N: the hypervisor refuses this fork's next pagetable
        // update (Xen: the batch write-protecting the parent), or where
        // there is no hypervisor, the second page's share is refused.
        let inject = self.fail_fork != 0 && self.stats.forks == self.fail_fork;
        let by_hypervisor = inject && self.mem.hv.mmu().fail_next_update();
        let inject = inject && !by_hypervisor;
        let copied = (|| -> Result<u32, MmError> {
            let mut child_space =
                devirt!(self.mem.hv.mmu(), |m| AddressSpace::new(&mut self.mem.ctx_with(m)))?;
            let mut parent_space = self.task(parent).space.take().expect("a process has an address space");
            let refs = &mut self.refs;
            let mut k = 0;
            let r = devirt!(self.mem.hv.mmu(), |m| {
                parent_space.fork_into(&mut self.mem.ctx_with(m), &mut child_space, true, |pfn| {
                    k += 1;
                    if inject && k == 2 {
                        return Err(MmError::OutOfMemory {
                            what: "fork (injected by fail_fork)",
                            allocated: 0,
                        });
                    }
                    refs.share(pfn)
                        .map_err(|_| MmError::OutOfMemory { what: "a frame's share count", allocated: 0 })
                })
            });
            self.task(parent).space = Some(parent_space);
            self.task(slot).space = Some(child_space);
            r
        })();
        match copied {
            Ok(_) => {
                let vmas = self.task(parent).vmas;
                let mmap_next = self.task(parent).mmap_next;
                let c = self.task(slot);
                c.vmas = vmas;
                c.mmap_next = mmap_next;
                let mut frame = *parent_frame;
                frame.eax = 0;
                self.prime_stack(slot, frame);
                self.stats.most_alive = self.stats.most_alive.max(self.alive());
                Ok(self.task(slot).pid)
            }
            Err(e) => {
                kprintln!("fork in pid {}: {}", ppid, e);
                self.stats.failed_forks += 1;
                self.discard(slot);
                Err(-errno::ENOMEM)
            }
        }
    }

    /// Frees a task that never ran (a failed spawn or fork).
    fn discard(&mut self, slot: usize) {
        if let Some(space) = self.task(slot).space.take() {
            self.destroy_space(space);
        }
        self.free_stack(slot);
        self.tasks[slot] = None;
    }

    fn destroy_space(&mut self, space: AddressSpace) {
        let refs = &mut self.refs;
        let r = devirt!(self.mem.hv.mmu(), |m| {
            space.destroy(&mut self.mem.ctx_with(m), |frames, pfn| put_user_frame(refs, frames, pfn))
        });
        match r {
            Ok(c) => {
                self.totals.alloc_pt += c.alloc_pt;
                self.totals.alloc_pd += c.alloc_pd;
                self.totals.release_pt += c.release_pt;
                self.totals.release_pd += c.release_pd;
                self.totals.pins += c.pins;
                self.totals.unpins += c.unpins;
                self.totals.high_pt += c.high_pt;
            }
            Err(e) => fail!("tearing down an address space: {}", e),
        }
    }

    fn free_stack(&mut self, slot: usize) {
        if let Some(k) = self.task(slot).kstack.take() {
            for i in 0..KSTACK_PAGES {
                if self.mem.frames.free(k.add(i)).is_err() {
                    fail!("a kernel stack page freed twice");
                }
            }
        }
    }

    /// The current process ends with `st`: its memory goes at once, its
    /// slot and kernel stack when its parent reaps it.
    fn exit(&mut self, st: u32) {
        let slot = self.current;
        let root = self.mem.kernel_root;
        // Off its address space first: it must not be live when torn down.
        // SAFETY: the kernel's own root maps the kernel (and this stack).
        if let Err(e) = unsafe { self.mem.hv.mmu().write_cr3(root) } {
            fail!("leaving an exiting process's address space: {}", e);
        }
        let (pid, ppid) = (self.task(slot).pid, self.task(slot).ppid);
        if let Some(space) = self.task(slot).space.take() {
            if !self.cow_dumped && pid != 1 && ppid > 1 {
                self.cow_dumped = true;
                let w = space.walker(self.mem.hv.mmu(), &self.mem.mem);
                let whose = format_args!("process {} (a grandchild) at its exit", pid);
                crate::selfcheck::user_half(&w, &self.mem.layout, whose);
            }
            self.destroy_space(space);
        }
        // Orphans go to init (init's own, to the kernel).
        let heir = if pid == 1 { 0 } else { 1 };
        for t in self.tasks.iter_mut().flatten() {
            if t.ppid == pid {
                t.ppid = heir;
            }
        }
        self.task(slot).state = State::Zombie(st);
        self.stats.exits += 1;
        for p in [ppid, heir] {
            if let Some(s) = self.slot_of(p) {
                if self.task(s).state == State::Waiting {
                    self.task(s).state = State::Runnable;
                }
            }
        }
    }

    /// A child of `pid` that has ended, reaped: (its pid, its status).
    pub fn reap(&mut self, pid: u32) -> Option<(u32, u32)> {
        let slot = self.tasks.iter().position(|t| {
            t.as_ref().is_some_and(|t| t.ppid == pid && t.pid != pid && matches!(t.state, State::Zombie(_)))
        })?;
        let State::Zombie(st) = self.task(slot).state else { unreachable!() };
        let child = self.task(slot).pid;
        self.free_stack(slot);
        self.tasks[slot] = None;
        Some((child, st))
    }

    pub fn has_children(&self, pid: u32) -> bool {
        self.tasks.iter().flatten().any(|t| t.ppid == pid && t.pid != pid)
    }

    pub fn kill(&mut self, pid: u32) -> Result<(), i32> {
        let caller = self.cur().pid;
        let slot = self.slot_of(pid).ok_or(-errno::ESRCH)?;
        let t = self.task(slot);
        if t.ppid != caller || matches!(t.state, State::Zombie(_)) {
            return Err(-errno::ESRCH);
        }
        t.killed = true;
        if matches!(t.state, State::Sleeping(_) | State::Waiting) {
            t.state = State::Runnable;
        }
        Ok(())
    }

    /// Picks the next task and makes it current: its kernel stack for
    /// entries from user mode, its address space live. Returns the two
    /// stack-pointer slots to switch between, or `None` to stay.
    fn prepare_switch(&mut self) -> Option<(*mut u32, u32)> {
        let prev = self.current;
        let n = self.tasks.len();
        let next = (1..n)
            .map(|i| (prev + i) % n)
            .find(|&s| s != 0 && self.tasks[s].as_ref().is_some_and(|t| t.state == State::Runnable))
            .or_else(|| {
                let p = self.tasks[prev].as_ref().is_some_and(|t| t.state == State::Runnable && prev != 0);
                p.then_some(prev)
            })
            .unwrap_or(0);
        self.need_resched = false;
        if next == prev {
            self.cur().slice = SLICE_TICKS;
            return None;
        }
        let hv = self.mem.hv;
        let top = self.task(next).kstack_top();
        hv.mmu().enter_lazy_mmu();
        if top != 0 {
            // SAFETY: the kernel's TSS; the stack is the task's, mapped in
            // the direct map for its life.
            if let Err(e) = unsafe { hv.cpu().load_sp0(crate::trap::tss(), top) } {
                fail!("load_sp0: {}", e);
            }
        }
        let switched = match self.task(next).space.take() {
            Some(mut space) => {
                let r = devirt!(hv.mmu(), |m| {
                    // SAFETY: nothing uses the previous process's user
                    // mappings once we switch (the kernel half is shared).
                    unsafe { space.activate(&mut self.mem.ctx_with(m)) }
                });
                self.task(next).space = Some(space);
                r
            }
            None => {
                let root = self.mem.kernel_root;
                // SAFETY: as above; the kernel's own root.
                unsafe { hv.mmu().write_cr3(root) }.map_err(MmError::from)
            }
        };
        let flushed = hv.mmu().leave_lazy_mmu();
        if let Err(e) = switched.and(flushed.map_err(MmError::from)) {
            fail!("switching to pid {}: {}", self.task(next).pid, e);
        }
        self.current = next;
        self.task(next).slice = SLICE_TICKS;
        self.stats.switches += 1;
        crate::entry::set_stack_limit(match top {
            0 => crate::entry::boot_stack_bottom(),
            top => top - KSTACK_PAGES * 4096,
        });
        let prev_esp = &mut self.tasks[prev].as_mut().expect("the previous task").ctx_esp as *mut u32;
        Some((prev_esp, self.task(next).ctx_esp))
    }
}

/// A user frame's mapping goes away: back to the allocator with its last.
fn put_user_frame(refs: &mut FrameRefs, frames: &mut FrameAllocator, pfn: Pfn) {
    if refs.put(pfn) && frames.free(pfn).is_err() {
        fail!("user frame {:#x} freed twice", pfn.0);
    }
}

/// Lets another task run if one may; returns when this one is chosen
/// again. Interrupts are disabled throughout (kernel code).
pub fn schedule() {
    if let Some((prev, next)) = with(|p| p.prepare_switch()) {
        // SAFETY: `prev` is the current task's saved-esp slot (in the
        // static table), `next` a stack primed by `prime_stack` or saved
        // by an earlier switch; the lock is released.
        unsafe { switch_context(prev, next) };
    }
}

/// The current process ends; never returns.
pub fn exit_current(st: u32) -> ! {
    with(|p| p.exit(st));
    schedule();
    fail!("an exited process was scheduled again")
}

/// Called from the timer interrupt: wakes sleepers, counts the running
/// process's slice down.
pub fn tick(now: u64) {
    // The table is never held when interrupts are enabled (user mode, the
    // idle halt), so this cannot find it locked.
    let Some(mut g) = PROCS.try_lock() else { return };
    let Some(p) = g.as_mut() else { return };
    for t in p.tasks.iter_mut().flatten() {
        if matches!(t.state, State::Sleeping(d) if d <= now) {
            t.state = State::Runnable;
        }
    }
    if p.current != 0 {
        let t = p.cur();
        t.slice = t.slice.saturating_sub(1);
        if t.slice == 0 {
            p.need_resched = true;
        }
    }
}

/// Before returning to user mode: a pending preemption, a kill.
pub fn return_to_user(_f: &mut EntryFrame) {
    if !started() {
        return;
    }
    if with(|p| p.need_resched) {
        schedule();
    }
    if with(|p| p.cur().killed) {
        with(|p| p.stats.killed += 1);
        exit_current(status::KILLED);
    }
}

/// A user process's fault the kernel could not resolve: reported, and the
/// process ends with `faulted(vector)`. `false` if there are no processes.
pub fn kill_current_for(f: &mut EntryFrame, cr2: u32) -> bool {
    if !started() {
        return false;
    }
    let (pid, name) = with(|p| {
        let t = p.cur();
        (t.pid, t.name)
    });
    kprintln!(
        "process {} ({}) killed: {} (vector {}) at eip {:#010x}, error {:#x}, cr2 {:#010x}, esp {:#010x}",
        pid,
        name,
        arch_i386::trap::name(f.vector),
        f.vector,
        f.eip,
        f.error,
        cr2,
        f.user_esp
    );
    with(|p| p.stats.killed += 1);
    exit_current(status::faulted(f.vector))
}

pub fn page_fault(f: &mut EntryFrame, cr2: u32) -> bool {
    started() && with(|p| crate::vm::fault(p, cr2, f.error))
}

/// The process phase begins: the kernel's memory moves into the table,
/// the running context becomes the idle task (pid 0).
pub fn start(mem: Memory, refs: FrameRefs<'static>, fail_fork: u32) {
    let mut g = PROCS.lock();
    assert!(!SLOTS_TAKEN.swap(true, core::sync::atomic::Ordering::SeqCst), "processes started twice");
    // SAFETY: the slots are handed out once (checked above) and live
    // forever.
    let tasks = unsafe { &mut *SLOTS.0.get() };
    tasks[0] = Some(Task::new(0, 0, "idle"));
    crate::entry::set_stack_limit(crate::entry::boot_stack_bottom());
    *g = Some(Procs {
        mem,
        refs,
        tasks,
        current: 0,
        next_pid: 1,
        need_resched: false,
        totals: TableCounts::default(),
        stats: Stats::default(),
        fail_fork,
        checked: false,
        cow_dumped: false,
    });
}

/// The idle task's loop: run processes until `pid` (init) has ended and is
/// reaped; halt whenever nothing can run. Returns its status.
pub fn idle_until_reaped(pid: u32) -> u32 {
    let irq = crate::console::backend().expect("a backend").irq();
    loop {
        irq.irq_disable();
        if let Some((_, st)) = with(|p| p.reap(0).filter(|&(c, _)| c == pid)) {
            irq.irq_enable();
            return st;
        }
        schedule();
        if with(|p| p.any_runnable()) {
            irq.irq_enable();
        } else {
            // Interrupts on and halt in one step: a wake-up between the
            // check and the halt is not lost.
            irq.safe_halt();
        }
    }
}

/// Milliseconds on the kernel's clock.
pub fn now_ms() -> u64 {
    time::now() / 1_000_000
}

/// The process phase ends: `f` sees the table where it lies (it is far
/// too big for a kernel stack), then the table is gone.
pub fn finish<R>(f: impl FnOnce(&Procs) -> R) -> R {
    let mut g = PROCS.lock();
    let r = f(g.as_ref().expect("the process table"));
    *g = None;
    r
}
