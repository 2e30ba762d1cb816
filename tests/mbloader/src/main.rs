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
#![no_std]
#![no_main]

mod fake;

use arch_i386::serial::COM1;
use boot_support::elf::Elf;
use boot_support::multiboot;
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
