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

use core::sync::atomic::{AtomicBool, Ordering};

use arch_i386::desc::{self, GateKind, TablePointer, Tss};

/// Where the Switcher (and the whole host) is linked.
pub const SWITCHER_ADDR: u32 = 0xFFC0_0000;
/// Where the host is loaded.
pub const HOST_PHYS: u32 = 0x10_0000;
/// The pgd slot the Switcher occupies in every pagetable.
pub const SWITCHER_PGD_INDEX: u32 = 1023;
/// What the guest must leave alone: lguest_data.reserve_mem.
pub const SWITCHER_SIZE: u32 = 4 << 20;

/// GDT layout, Linux's: the host's ring-0 segments where lguest had
/// LGUEST_CS/DS (10, 11), the guest kernel's where Linux has __KERNEL_CS/DS
/// (12, 13) but with DPL 1, user segments (14, 15), the TSS (16).
pub const GDT_ENTRIES: usize = 32;
pub const HOST_CS: u16 = 10 << 3;
pub const HOST_DS: u16 = 11 << 3;
pub const GUEST_CS: u32 = (12 << 3) | 1;
pub const GUEST_DS: u32 = (13 << 3) | 1;
const USER_CS_INDEX: usize = 14;
const USER_DS_INDEX: usize = 15;
const TSS_INDEX: usize = 16;
pub const TSS_SEL: u16 = (TSS_INDEX as u16) << 3;

/// Vectors with a stub: the 32 exceptions (0x1f, the hypercall, is among
/// them) and IRQ 0, the host's watchdog tick.
pub const VECTORS: usize = 33;
pub const HYPERCALL_VECTOR: u32 = 0x1F;
pub const TIMER_VECTOR: u32 = 32;

/// The GDT slots the host keeps for itself; LOAD_GDT leaves them alone.
pub fn host_owned(index: usize) -> bool {
    matches!(index, 0 | 10 | 11 | TSS_INDEX)
}

/// The guest's registers as the trap path leaves them on the ring-0 stack
/// (lowest address first): what `run` restores and `iret` consumes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct GuestRegs {
    pub gs: u32,
    pub fs: u32,
    pub es: u32,
    pub ds: u32,
    pub edi: u32,
    pub esi: u32,
    pub ebp: u32,
    /// pushad's copy of the ring-0 esp: ignored.
    pub esp_ring0: u32,
    pub ebx: u32,
    pub edx: u32,
    pub ecx: u32,
    pub eax: u32,
    pub vector: u32,
    pub error: u32,
    pub eip: u32,
    pub cs: u32,
    pub eflags: u32,
    pub esp: u32,
    pub ss: u32,
}

const FRAME: usize = core::mem::size_of::<GuestRegs>();
const _: () = assert!(FRAME == 76);

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

core::arch::global_asm!(
    ".pushsection .switcher.text, \"ax\"",
    // Every trap. [esp] = vector, [esp + 4] = error code, [esp + 8] = eip,
    // [esp + 12] = cs.
    "switcher_trap:",
    "    test byte ptr [esp + 12], 3",
    "    jz switcher_host_fault",
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
    gdt = const GDT_ENTRIES,
    tss = const core::mem::size_of::<Tss>(),
    frame = const FRAME,
);

extern "C" {
    fn switcher_run(cr3: u32, frame: *mut GuestRegs);
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
        for (v, &stub) in switcher_vectors.iter().enumerate() {
            let dpl = if v as u32 == HYPERCALL_VECTOR { 1 } else { 0 };
            (*idt)[v] = desc::gate(stub, HOST_CS, GateKind::Interrupt, dpl);
        }
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

static FRAME_TAKEN: AtomicBool = AtomicBool::new(false);

/// The guest's registers: saved there by every trap, restored from there
/// by every `run`. Handed out once, to the one owner of the guest.
pub fn take_frame() -> &'static mut GuestRegs {
    assert!(!FRAME_TAKEN.swap(true, Ordering::SeqCst), "the guest's frame has one owner");
    // SAFETY: the frame is a host static, and this is the only reference
    // ever made to it (checked above).
    unsafe { &mut *frame_ptr() }
}

fn frame_ptr() -> *mut GuestRegs {
    &raw mut switcher_frame
}

/// Runs the guest on the shadow pagetable `cr3` until it traps; `regs` is
/// the frame (passed so the compiler knows the trap rewrote it).
pub fn run(cr3: u32, regs: &mut GuestRegs) {
    assert!(core::ptr::eq(regs, frame_ptr()));
    // Whatever the frame says, the guest leaves in ring 1 or 3 with
    // interrupts on, IOPL 0 and no virtual-8086 mode.
    regs.eflags = (regs.eflags | EFLAGS_IF) & !(EFLAGS_IOPL | EFLAGS_VM);
    // SAFETY: `cr3` is a shadow pgdir that maps the Switcher at the same
    // address as the host's pagetable; the frame's cs and ss came from the
    // CPU or the host, never with ring 0 (and the host only writes guest
    // selectors there).
    unsafe { switcher_run(cr3, regs) }
}

const EFLAGS_IF: u32 = 1 << 9;
const EFLAGS_IOPL: u32 = 3 << 12;
const EFLAGS_VM: u32 = 1 << 17;

/// Replaces a GDT entry (LOAD_GDT). The caller has made it safe for ring 1.
pub fn set_gdt_entry(index: usize, desc: u64) {
    assert!(index < GDT_ENTRIES && !host_owned(index));
    let gdt = &raw mut switcher_gdt;
    // SAFETY: index is in range and not one the host's own selectors use;
    // the guest is not running.
    unsafe { (*gdt)[index] = desc };
}
