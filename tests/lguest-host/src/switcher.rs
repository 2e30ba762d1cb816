//! The Switcher: the few pages that exist in both worlds.
//!
//! A trap from the guest lands in ring 0 on whatever pagetable is loaded,
//! which is the guest's shadow. So the CPU must find, in that address
//! space, the IDT, the GDT, the TSS (for the ring-0 stack pointer), a ring-0
//! stack and the entry code. lguest put them in a "Switcher" mapped at the
//! top 4 MiB of every address space, host and guest alike, and so do we:
//! the host is linked at 0xFFC00000, and its first pages (sections
//! `.switcher.*`) are mapped at the same address in every shadow pgdir,
//! through one shared pte page (`guest_view_pde`). The guest runs in ring 1,
//! which the MMU treats as supervisor, so the Switcher's code and tables are
//! mapped read-only there (CR0.WP makes that stick for ring 1) and only
//! the ring-0 stack is writable.
//!
//! Going in (`run`): save the host's callee-saved registers and stack
//! pointer, point esp at the saved guest registers at the top of the
//! ring-0 stack, load the shadow's CR3, pop the registers and `iret` to
//! ring 1. Coming back (any trap or interrupt): the CPU switches to the
//! ring-0 stack from the TSS and pushes the guest's ss, esp, eflags, cs,
//! eip (and an error code); the stub pushes the vector and the general and
//! segment registers, completing the same frame, loads the host's CR3 and
//! returns from `run`. The host then reads and edits the guest's registers
//! in that frame ([`take_frame`]).
//!
//! Every descriptor is created with its accessed bit set: the CPU would
//! otherwise set it on first use, a write into a table the guest view maps
//! read-only.

use arch_i386::desc::{self, GateKind, TablePointer, Tss};
use lguest_host::abi::SYSCALL_VECTOR;
use lguest_host::layout::{
    GuestRegs, FRAME, GDT_ENTRIES, HOST_CS, HOST_DS, HOST_PHYS, HYPERCALL_VECTOR, SWITCHER_ADDR,
    TIMER_VECTOR, TSS_INDEX, TSS_SEL, USER_CS_INDEX, USER_DS_INDEX, VECTORS,
};
use lguest_host::vm::GdtWrites;

/// One entry stub per vector: a dummy error code where the CPU pushes
/// none, then the vector number.
macro_rules! stubs {
    ($($n:literal)*) => {
        core::arch::global_asm!(
            ".pushsection .switcher.text, \"ax\"",
            $(
                concat!("switcher_vector_", $n, ":"),
                concat!(".if ((0x60227d00 >> ", $n, ") & 1) == 0 || ", $n, " > 31"),
                "    push 0",
                ".endif",
                concat!("    push ", $n),
                "    jmp switcher_trap",
            )*
            ".popsection",
            ".pushsection .rodata.switcher_vectors, \"a\"",
            ".global switcher_vectors",
            "switcher_vectors:",
            $( concat!(".long switcher_vector_", $n), )*
            ".popsection",
        );
    };
}

stubs!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32);

// The system call's stub, the one vector above the table: user mode's
// `int $0x80` comes to the host like any trap (`syscall.rs` says why it is
// not sent straight to the guest).
core::arch::global_asm!(
    ".pushsection .switcher.text, \"ax\"",
    ".global switcher_syscall",
    "switcher_syscall:",
    "    push 0",
    "    push {vector}",
    "    jmp switcher_trap",
    ".popsection",
    vector = const SYSCALL_VECTOR,
);

core::arch::global_asm!(
    ".pushsection .switcher.text, \"ax\"",
    // Every trap. [esp] = vector, [esp + 4] = error code, [esp + 8] = eip,
    // [esp + 12] = cs.
    "switcher_trap:",
    "    test byte ptr [esp + 12], 3",
    "    jz switcher_ring0",
    "    pushad",
    // The segment registers, a full word each (eax is saved already).
    "    mov eax, ds",
    "    push eax",
    "    mov eax, es",
    "    push eax",
    "    mov eax, fs",
    "    push eax",
    "    mov eax, gs",
    "    push eax",
    "    cld",
    "    mov ax, {ds}",
    "    mov ds, ax",
    "    mov es, ax",
    "    mov eax, [switcher_host_cr3]",
    "    mov cr3, eax",
    "    mov esp, [switcher_host_esp]",
    "    pop edi",
    "    pop esi",
    "    pop ebx",
    "    pop ebp",
    "    ret",
    // From ring 0: the host's timer ending its `sti; hlt` (the only place
    // the host enables interrupts) is acknowledged and returns there;
    // anything else is a fault in the host itself.
    "switcher_ring0:",
    "    cmp dword ptr [esp], {timer}",
    "    jne switcher_host_fault",
    "    pushad",
    "    cld",
    "    call host_interrupt",
    "    popad",
    "    add esp, 8",
    "    iretd",
    // A fault in ring 0: the host itself. Report it from the host's map.
    "switcher_host_fault:",
    "    pushad",
    "    cld",
    "    mov ax, {ds}",
    "    mov ds, ax",
    "    mov es, ax",
    "    mov eax, [switcher_host_cr3]",
    "    mov cr3, eax",
    "    push esp",
    "    call host_fault",
    "    ud2",
    // void switcher_run(u32 shadow_cr3, frame): into the guest until it
    // traps. The frame is always switcher_frame.
    ".global switcher_run",
    "switcher_run:",
    "    push ebp",
    "    push ebx",
    "    push esi",
    "    push edi",
    "    mov [switcher_host_esp], esp",
    "    mov eax, [esp + 20]",
    "    mov esp, offset switcher_frame",
    "    mov cr3, eax",
    "    pop eax",
    "    mov gs, eax",
    "    pop eax",
    "    mov fs, eax",
    "    pop eax",
    "    mov es, eax",
    "    pop eax",
    "    mov ds, eax",
    "    popad",
    "    add esp, 8",
    "    iretd",
    ".popsection",
    //
    ".pushsection .switcher.data, \"aw\"",
    ".balign 4096",
    ".global switcher_gdt",
    "switcher_gdt: .skip 8 * {gdt}",
    ".global switcher_idt",
    "switcher_idt: .skip 8 * 256",
    ".global switcher_tss",
    "switcher_tss: .skip {tss}",
    ".balign 4",
    ".global switcher_host_cr3",
    "switcher_host_cr3: .long 0",
    "switcher_host_esp: .long 0",
    ".popsection",
    //
    ".pushsection .switcher.stack, \"aw\", @nobits",
    ".balign 4096",
    "    .skip 4096 - {frame}",
    ".global switcher_frame",
    "switcher_frame: .skip {frame}",
    "switcher_stack_top:",
    ".popsection",
    //
    ".pushsection .bss.guest_view, \"aw\", @nobits",
    ".balign 4096",
    "switcher_guest_view: .skip 4096",
    ".popsection",
    ds = const HOST_DS,
    timer = const TIMER_VECTOR,
    gdt = const GDT_ENTRIES,
    tss = const core::mem::size_of::<Tss>(),
    frame = const FRAME,
);

extern "C" {
    fn switcher_run(cr3: u32, frame: *mut GuestRegs);
    fn switcher_syscall();
    static mut switcher_gdt: [u64; GDT_ENTRIES];
    static mut switcher_idt: [u64; 256];
    static mut switcher_tss: Tss;
    static mut switcher_host_cr3: u32;
    static mut switcher_frame: GuestRegs;
    static switcher_stack_top: u8;
    static switcher_vectors: [u32; VECTORS];
    static mut switcher_guest_view: [u32; 1024];
    static __switcher_start: u8;
    static __switcher_data_end: u8;
    static __switcher_end: u8;
}

/// Host-physical address of a host virtual address.
pub fn host_pa(va: u32) -> u32 {
    va - SWITCHER_ADDR + HOST_PHYS
}

/// Builds and loads the GDT, TSS and IDT, and the Switcher's pte page for
/// the shadows. `host_cr3` is what the trap path switches back to.
pub fn init(host_cr3: u32) {
    let code = desc::flat(desc::ACCESS_CODE | 1);
    let data = desc::flat(desc::ACCESS_DATA | 1);
    let (gdt, idt, tss) = (&raw mut switcher_gdt, &raw mut switcher_idt, &raw mut switcher_tss);
    let mut t = Tss::new();
    t.ss0 = HOST_DS as u32;
    t.esp0 = &raw const switcher_stack_top as u32;
    let tss_limit = core::mem::size_of::<Tss>() as u32 - 1;
    // SAFETY: single CPU, interrupts off, nothing has loaded these tables
    // yet; they are asm-defined statics that live as long as the host,
    // written through raw pointers (no references to mutable statics).
    unsafe {
        (*gdt)[10] = code;
        (*gdt)[11] = data;
        (*gdt)[12] = desc::with_dpl(code, 1);
        (*gdt)[13] = desc::with_dpl(data, 1);
        (*gdt)[USER_CS_INDEX] = desc::with_dpl(code, 3);
        (*gdt)[USER_DS_INDEX] = desc::with_dpl(data, 3);
        (*gdt)[TSS_INDEX] = desc::segment(tss as u32, tss_limit, desc::ACCESS_TSS, 0);
        tss.write(t);
        // DPL: which rings may `int` to the gate. Ring 1 the hypercall,
        // ring 3 (and so every ring) the system call, nobody the rest.
        for (v, &stub) in switcher_vectors.iter().enumerate() {
            let dpl = if v as u32 == HYPERCALL_VECTOR { 1 } else { 0 };
            (*idt)[v] = desc::gate(stub, HOST_CS, GateKind::Interrupt, dpl);
        }
        let syscall = switcher_syscall as *const () as u32;
        (*idt)[SYSCALL_VECTOR as usize] = desc::gate(syscall, HOST_CS, GateKind::Interrupt, 3);
        (&raw mut switcher_host_cr3).write(host_cr3);
        desc::load_gdt(&table_pointer(gdt), HOST_CS, HOST_DS);
        desc::load_tr(TSS_SEL);
        desc::load_idt(&table_pointer(idt));
    }
    build_guest_view();
}

/// The `lgdt`/`lidt` operand for a table.
fn table_pointer<T>(table: *mut T) -> TablePointer {
    TablePointer { limit: (core::mem::size_of::<T>() - 1) as u16, base: table as u32 }
}

/// The Switcher as the guest's shadows map it: code and tables read-only,
/// the ring-0 stack writable, nothing else of the host.
fn build_guest_view() {
    let page = |sym: *const u8| (sym as u32 - SWITCHER_ADDR) >> 12;
    let (start, data_end, end) = (
        page(&raw const __switcher_start),
        page(&raw const __switcher_data_end),
        page(&raw const __switcher_end),
    );
    let view = &raw mut switcher_guest_view;
    for k in start..end {
        let writable = if k >= data_end { 0x2 } else { 0 };
        // SAFETY: k < 1024 (the image fits in 4 MiB); the page is a host
        // static no shadow uses yet.
        unsafe { (*view)[k as usize] = (HOST_PHYS + (k << 12)) | 0x1 | writable };
    }
}

/// The pgd entry every shadow pgdir holds at SWITCHER_PGD_INDEX.
pub fn guest_view_pde() -> u32 {
    host_pa(&raw const switcher_guest_view as u32) | 0x3
}

fn frame_ptr() -> *mut GuestRegs {
    &raw mut switcher_frame
}

/// Runs the guest on the shadow pagetable `cr3` until it traps: `regs` go
/// into the Switcher's frame, the GDT entries it asked for into the real
/// GDT, and after the trap the frame comes back into `regs`.
pub fn run(cr3: u32, regs: &mut GuestRegs, gdt: &mut GdtWrites) {
    for (index, desc) in gdt.take() {
        let table = &raw mut switcher_gdt;
        // SAFETY: `take` yields only in-range slots the host does not own
        // (GdtWrites::set checks), and the guest is not running.
        unsafe { (*table)[index] = desc };
    }
    // Whatever the registers say, the guest leaves in ring 1 or 3 with
    // interrupts on, IOPL 0 and no virtual-8086 mode.
    regs.eflags = (regs.eflags | EFLAGS_IF) & !(EFLAGS_IOPL | EFLAGS_VM);
    // SAFETY: the frame is the Switcher's own static, used by nothing
    // while the host runs; `cr3` is a shadow pgdir that maps the Switcher
    // at the same address as the host's pagetable; the frame's cs and ss
    // came from the CPU or the host, never with ring 0 (the host only
    // writes guest selectors there).
    unsafe {
        frame_ptr().write(*regs);
        switcher_run(cr3, frame_ptr());
        *regs = frame_ptr().read();
    }
}

const EFLAGS_IF: u32 = 1 << 9;
const EFLAGS_IOPL: u32 = 3 << 12;
const EFLAGS_VM: u32 = 1 << 17;
