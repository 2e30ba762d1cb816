//! Exceptions: every one is reported (vector, error code, eip, cr2) and
//! ends the run as a FAILURE. Nothing may triple-fault silently.
//!
//! Natively (ring 0) the kernel owns the GDT and IDT from its first Rust
//! instruction. The double fault goes through a task gate: a task switch
//! loads a fresh stack and pagetable from its own TSS, so even a blown
//! kernel stack ends in a report instead of a reset. Under a PV hypervisor
//! (ring 1) the gates are handed to the backend once it is chosen.

use core::cell::UnsafeCell;

use arch_i386::desc::{self, GateKind, Tss};
use arch_i386::trap::TrapFrame;

use crate::kprintln;

const KERNEL_CS: u16 = 0x08;
const KERNEL_DS: u16 = 0x10;
const TSS_SEL: u16 = 0x18;
const DF_TSS_SEL: u16 = 0x20;

macro_rules! stubs {
    ($($n:literal)*) => {
        core::arch::global_asm!(
            $(
                concat!(".global trap_stub_", $n),
                concat!("trap_stub_", $n, ":"),
                // The CPU pushes an error code for the vectors in
                // HAS_ERROR_CODE; the others get a dummy so frames look alike.
                concat!(".if ((0x60227d00 >> ", $n, ") & 1) == 0"),
                "push 0",
                ".endif",
                concat!("push ", $n),
                "jmp trap_common",
            )*
            ".pushsection .rodata.trap_stubs, \"a\"",
            ".global trap_stubs",
            "trap_stubs:",
            $( concat!(".long trap_stub_", $n), )*
            ".popsection",
        );
    };
}

core::arch::global_asm!("trap_common:", "    pushad", "    push esp", "    call trap_handler", "    ud2",);

stubs!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);

const _: () = assert!(arch_i386::trap::HAS_ERROR_CODE == 0x6022_7d00);

extern "C" {
    static trap_stubs: [u32; 32];
}

#[no_mangle]
extern "C" fn trap_handler(f: &TrapFrame) -> ! {
    let name = arch_i386::trap::name(f.vector);
    let cr2 = match crate::console::backend() {
        Some(hv) if f.vector == 14 => hv.cpu().read_cr2().0,
        _ if f.vector == 14 => arch_i386::cr::Cr2::read().0,
        _ => 0,
    };
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

/// The kernel's IDT: the 32 exception vectors (fatal, reported), then
/// every external vector to the interrupt entry (`irq.rs`), which asks the
/// backend what fired.
static IDT: EarlyCell<[u64; 256]> = EarlyCell::new([0; 256]);

#[repr(C, align(16))]
struct Tables {
    gdt: [u64; 5],
    tss: Tss,
    df_tss: Tss,
}

static TABLES: EarlyCell<Tables> =
    EarlyCell::new(Tables { gdt: [0; 5], tss: Tss::new(), df_tss: Tss::new() });

#[repr(C, align(16))]
struct Stack([u8; 8192]);
static DF_STACK: EarlyCell<Stack> = EarlyCell::new(Stack([0; 8192]));

/// Fills the IDT with gates for selector `cs`.
fn fill_idt(cs: u16) -> &'static [u64] {
    // SAFETY: called once per boot, before any exception can use the IDT;
    // nothing else holds a reference to it.
    let idt = unsafe { &mut *IDT.get() };
    for v in 0..32 {
        // SAFETY: trap_stubs is the table the stubs! asm defines.
        let handler = unsafe { trap_stubs[v] };
        idt[v] = desc::gate(handler, cs, GateKind::Interrupt, 0);
    }
    for v in crate::irq::FIRST_EXTERNAL_VECTOR..256 {
        idt[v as usize] = desc::gate(crate::irq::stub(v), cs, GateKind::Interrupt, 0);
    }
    idt
}

/// Ring 0: our GDT (with a TSS and a double-fault task), our IDT.
pub fn init_native() {
    // SAFETY: single-threaded early boot; no other reference to TABLES.
    let t = unsafe { &mut *TABLES.get() };
    t.gdt[1] = desc::flat(desc::ACCESS_CODE);
    t.gdt[2] = desc::flat(desc::ACCESS_DATA);
    let tss = &raw const t.tss as u32;
    let df_tss = &raw const t.df_tss as u32;
    let tss_limit = core::mem::size_of::<Tss>() as u32 - 1;
    t.gdt[3] = desc::segment(tss, tss_limit, desc::ACCESS_TSS, 0);
    t.gdt[4] = desc::segment(df_tss, tss_limit, desc::ACCESS_TSS, 0);
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
    fill_idt(KERNEL_CS);
    // SAFETY: the tables are statics (never freed); the GDT's code/data
    // slots are flat; the TSS descriptors point at valid TSSs; the IDT is
    // complete before it is loaded. Single-threaded early boot.
    unsafe {
        (*IDT.get())[8] = desc::gate(0, DF_TSS_SEL, GateKind::Task, 0);
        desc::load_gdt(&gdt, KERNEL_CS, KERNEL_DS);
        desc::load_tr(TSS_SEL);
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

/// Ring 1: hand the gates (with our current code selector) to the backend.
pub fn init_pv(hv: &dyn paravirt::Hypervisor) -> paravirt::HvResult {
    let cs: u32;
    // SAFETY: reading CS has no side effects.
    unsafe { core::arch::asm!("mov {0:e}, cs", out(reg) cs) };
    let idt = fill_idt(cs as u16);
    // SAFETY: the IDT is a static that lives forever and every gate points
    // at a trap stub.
    unsafe { hv.cpu().load_idt(idt) }
}
