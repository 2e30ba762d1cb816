//! Exceptions: every one is reported (vector, error code, eip, cr2) and
//! ends the run as a FAILURE. Nothing may triple-fault silently.
//!
//! Natively (ring 0) the kernel owns the GDT and IDT from its first Rust
//! instruction. The double fault goes through a task gate: a task switch
//! loads a fresh stack and pagetable from its own TSS, so even a blown
//! kernel stack ends in a report instead of a reset. Under a PV hypervisor
//! (ring 1) the gates are handed to the backend once it is chosen.

use core::cell::UnsafeCell;

use arch_i386::desc::{self, layout, GateKind, Tss};
use arch_i386::trap::EntryFrame;

use crate::{entry, kprintln};

const KERNEL_CS: u16 = layout::KERNEL_CS;
const KERNEL_DS: u16 = layout::KERNEL_DS;

/// An exception (vector 0-31), from `entry.rs`. A page fault may be
/// resolved (demand paging, copy-on-write); a fault of a user process
/// ends that process; anything else is the kernel's own, reported, and
/// ends the run.
pub fn exception(f: &mut EntryFrame) {
    let cr2 = if f.vector == 14 { read_cr2() } else { 0 };
    if f.vector == 14 && crate::pagefault::handle(f, cr2) {
        return;
    }
    if f.from_user() && crate::sched::kill_current_for(f, cr2) {
        return;
    }
    let name = arch_i386::trap::name(f.vector);
    kprintln!(
        "EXCEPTION {} (vector {}) error={:#x} eip={:#010x} cs={:#x} eflags={:#x} cr2={:#010x}",
        name,
        f.vector,
        f.error,
        f.eip,
        f.cs,
        f.eflags,
        cr2
    );
    kprintln!("  {}", f);
    crate::fail!("unexpected exception {} at eip {:#010x}", name, f.eip)
}

fn read_cr2() -> u32 {
    match crate::console::backend() {
        Some(hv) => hv.cpu().read_cr2().0,
        None => arch_i386::cr::Cr2::read().0,
    }
}

/// A static the CPU and early boot code share: written once, on one CPU,
/// before anything can fault (and by the CPU itself at task switches).
struct EarlyCell<T>(UnsafeCell<T>);

// SAFETY: one CPU, and writes happen only during single-threaded early
// boot (see each use).
unsafe impl<T> Sync for EarlyCell<T> {}

impl<T> EarlyCell<T> {
    const fn new(v: T) -> Self {
        EarlyCell(UnsafeCell::new(v))
    }
    fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// The kernel's IDT: every vector to its entry stub (`entry.rs`), as
/// interrupt gates (interrupts off in the kernel; a system call too, see
/// `syscall.rs`); only the system-call gate can be reached by `int` from
/// user mode.
static IDT: EarlyCell<[u64; 256]> = EarlyCell::new([0; 256]);

#[repr(C, align(16))]
struct Tables {
    gdt: [u64; layout::ENTRIES],
    tss: Tss,
    df_tss: Tss,
}

static TABLES: EarlyCell<Tables> =
    EarlyCell::new(Tables { gdt: [0; layout::ENTRIES], tss: Tss::new(), df_tss: Tss::new() });

#[repr(C, align(16))]
struct Stack([u8; 8192]);
static DF_STACK: EarlyCell<Stack> = EarlyCell::new(Stack([0; 8192]));

/// Fills the IDT with gates for selector `cs`.
fn fill_idt(cs: u16) -> &'static [u64] {
    // SAFETY: called once per boot, before any exception can use the IDT;
    // nothing else holds a reference to it.
    let idt = unsafe { &mut *IDT.get() };
    for v in 0..256u32 {
        let dpl = if v == user_abi::SYSCALL_VECTOR as u32 { 3 } else { 0 };
        idt[v as usize] = desc::gate(entry::stub(v), cs, GateKind::Interrupt, dpl);
    }
    idt
}

/// Ring 0: our GDT (with a TSS and a double-fault task), our IDT.
pub fn init_native() {
    // SAFETY: single-threaded early boot; no other reference to TABLES.
    let t = unsafe { &mut *TABLES.get() };
    t.gdt[layout::KERNEL_CS_INDEX] = desc::flat(desc::ACCESS_CODE);
    t.gdt[layout::KERNEL_DS_INDEX] = desc::flat(desc::ACCESS_DATA);
    t.gdt[layout::USER_CS_INDEX] = desc::with_dpl(desc::flat(desc::ACCESS_CODE), 3);
    t.gdt[layout::USER_DS_INDEX] = desc::with_dpl(desc::flat(desc::ACCESS_DATA), 3);
    let tss = &raw const t.tss as u32;
    let df_tss = &raw const t.df_tss as u32;
    let tss_limit = core::mem::size_of::<Tss>() as u32 - 1;
    t.gdt[layout::TSS_INDEX] = desc::segment(tss, tss_limit, desc::ACCESS_TSS, 0);
    t.gdt[layout::DF_TSS_INDEX] = desc::segment(df_tss, tss_limit, desc::ACCESS_TSS, 0);
    t.tss.ss0 = KERNEL_DS as u32;
    // The double-fault task: its own stack, the current pagetable, and
    // flat segments; it starts in df_task with interrupts off.
    t.df_tss.esp = DF_STACK.get() as u32 + 8192;
    t.df_tss.esp0 = t.df_tss.esp;
    t.df_tss.ss0 = KERNEL_DS as u32;
    t.df_tss.eip = df_task as *const () as u32;
    t.df_tss.eflags = 0x2;
    t.df_tss.cs = KERNEL_CS as u32;
    t.df_tss.ds = KERNEL_DS as u32;
    t.df_tss.es = KERNEL_DS as u32;
    t.df_tss.ss = KERNEL_DS as u32;
    t.df_tss.fs = KERNEL_DS as u32;
    t.df_tss.gs = KERNEL_DS as u32;
    t.df_tss.cr3 = arch_i386::cr::Cr3::read().0 as u32;
    let gdt = desc::TablePointer::of(&t.gdt);
    entry::set_kernel_ds(KERNEL_DS);
    entry::set_iret(paravirt::native::iret_address());
    fill_idt(KERNEL_CS);
    // SAFETY: the tables are statics (never freed); the GDT's code/data
    // slots are flat; the TSS descriptors point at valid TSSs; the IDT is
    // complete before it is loaded. Single-threaded early boot.
    unsafe {
        (*IDT.get())[8] = desc::gate(0, layout::DF_TSS, GateKind::Task, 0);
        desc::load_gdt(&gdt, KERNEL_CS, KERNEL_DS);
        desc::load_tr(layout::TSS);
        desc::load_idt(&desc::TablePointer::of(&*IDT.get()));
    }
}

/// The double-fault task must run on a pagetable that matches CR4.PAE:
/// update it after each switch.
pub fn set_df_cr3(cr3: u32) {
    // SAFETY: single CPU; the double-fault task is not running (it never
    // returns), so nothing else touches its TSS.
    unsafe { (*TABLES.get()).df_tss.cr3 = cr3 };
}

/// Entered by task switch on #DF; the faulting task's state is in TSS.
extern "C" fn df_task() -> ! {
    // SAFETY: the main TSS was last written by the CPU at the task switch
    // that brought us here; nothing runs concurrently.
    let t = unsafe { &*TABLES.get() };
    kprintln!(
        "EXCEPTION #DF (vector 8) eip={:#010x} esp={:#010x} (double fault: the kernel stack is likely exhausted)",
        t.tss.eip,
        t.tss.esp
    );
    crate::fail!("unexpected exception #DF at eip {:#010x}", t.tss.eip)
}

/// The TSS the CPU uses natively, for `Cpu::load_sp0` (PV backends
/// ignore it).
pub fn tss() -> *mut Tss {
    // SAFETY: a pointer into a static; nothing is read or written here.
    unsafe { &raw mut (*TABLES.get()).tss }
}

/// Ring 1: hand the gates (with the backend's kernel code selector) to the
/// backend.
pub fn init_pv(hv: &dyn paravirt::Hypervisor) -> paravirt::HvResult {
    let sel = hv.cpu().selectors();
    entry::set_kernel_ds(sel.kernel_ds);
    let idt = fill_idt(sel.kernel_cs);
    // SAFETY: the IDT is a static that lives forever and every gate points
    // at a trap stub.
    unsafe { hv.cpu().load_idt(idt) }
}
