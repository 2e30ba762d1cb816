//! mbloader: a multiboot loader for tests, which lies.
//!
//! QEMU always hands a kernel a well-formed multiboot info, so the
//! kernel's handling of bad boot information cannot be tested with QEMU's
//! loader alone. This small loader is booted by QEMU instead, gets the
//! kernel as a multiboot module, loads its ELF segments, writes a multiboot
//! info whose memory map is broken in the way `scenario=NAME` (on the
//! loader's own command line) asks, and enters the kernel exactly as a
//! multiboot loader would: eax = 0x2BADB002, ebx = the info, paging off.
//! The kernel's command line is the module's string minus its first word.
//!
//! A `pvh-NAME` scenario lies through the PVH protocol instead: the loader
//! finds the kernel's XEN_ELFNOTE_PHYS32_ENTRY and enters it with ebx = a
//! malformed hvm_start_info (`pvh.rs`).
#![no_std]
#![no_main]

mod fake;
mod pvh;

use arch_i386::serial::COM1;
use boot_support::elf::Elf;
use boot_support::multiboot;
use boot_support::notes::XEN_ELFNOTE_PHYS32_ENTRY;
use paravirt::ExitStatus;

core::arch::global_asm!(
    arch_i386::multiboot_header!(),
    ".global mbloader_start",
    "mbloader_start:",
    "    mov esp, offset stack_top",
    "    push ebx",
    "    push eax",
    "    call loader_main",
    "    ud2",
    ".pushsection .bss.stack, \"aw\", @nobits",
    ".align 16",
    "    .skip 16384",
    "stack_top:",
    ".popsection",
);

pub fn say(s: &str) {
    COM1.write(s.as_bytes());
}

fn die(why: &str) -> ! {
    say("mbloader: ");
    say(why);
    say("\nTest result: ERROR: mbloader: ");
    say(why);
    say("\n");
    // SAFETY: the loader runs only under QEMU, which has isa-debug-exit at
    // 0xF4 (the matrix boots it no other way).
    unsafe { arch_i386::io::debug_exit(ExitStatus::Error.debug_exit_code()) };
    arch_i386::io::halt_forever()
}

#[no_mangle]
extern "C" fn loader_main(magic: u32, mbi: u32) -> ! {
    COM1.init();
    if magic != 0x2BAD_B002 {
        die("not booted by a multiboot loader");
    }
    // SAFETY: QEMU's multiboot info is valid, identity-mapped memory.
    let real = unsafe { multiboot::Info::read(mbi) };
    let scenario = real.option("scenario").unwrap_or("ok");
    let Some(module) = real.module(0) else { die("no kernel module (pass it with -initrd)") };
    say("mbloader: scenario=");
    say(scenario);
    say("\n");
    // SAFETY: the module is the kernel ELF QEMU loaded at mod_start.
    let elf = match unsafe { Elf::parse(module.start, module.end) } {
        Ok(e) => e,
        Err(why) => die(why),
    };
    for seg in elf.segments() {
        // SAFETY: the kernel's segments go to 1 MiB and up, away from us
        // (8 MiB) and from the module (after us).
        unsafe {
            core::ptr::copy(seg.src as *const u8, seg.paddr as *mut u8, seg.filesz as usize);
            core::ptr::write_bytes((seg.paddr + seg.filesz) as *mut u8, 0, (seg.memsz - seg.filesz) as usize);
        }
    }
    if let Some(lie) = scenario.strip_prefix("pvh-") {
        let Some(note) = elf.note(b"Xen", XEN_ELFNOTE_PHYS32_ENTRY) else {
            die("the kernel has no XEN_ELFNOTE_PHYS32_ENTRY note")
        };
        let Some(entry) = note.get(..4).map(|d| u32::from_le_bytes([d[0], d[1], d[2], d[3]])) else {
            die("the kernel's XEN_ELFNOTE_PHYS32_ENTRY is shorter than 4 bytes")
        };
        // SAFETY: the fake start_info goes to low memory nothing else uses now.
        let Some(info) = (unsafe { pvh::build(lie, real.ram_end, module.cmdline) }) else {
            die("unknown scenario")
        };
        say("mbloader: entering the kernel's PVH entry\n");
        // SAFETY: entering a loaded kernel's PVH entry the way the PVH ABI
        // says: flat 32-bit protected mode (ours), paging off, ebx = info.
        unsafe { core::arch::asm!("jmp {entry}", entry = in(reg) entry, in("ebx") info, options(noreturn)) }
    }
    let entry = elf.entry;
    // SAFETY: the fake info goes to low memory nothing else uses now.
    let fake = unsafe { fake::build(scenario, real.ram_end, module.cmdline) };
    let Some(fake) = fake else { die("unknown scenario") };
    say("mbloader: entering the kernel\n");
    // SAFETY: entering a loaded multiboot kernel the way the spec says.
    unsafe {
        core::arch::asm!(
            "jmp {entry}",
            entry = in(reg) entry,
            in("eax") 0x2BAD_B002u32,
            in("ebx") fake,
            options(noreturn)
        )
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    die("panic")
}
