//! A process's memory: loading a program, page faults (demand paging and
//! copy-on-write), mmap and munmap.
//!
//! - A page is allocated on its first touch: the fault finds a region
//!   (`Vma`) covering the address, takes a frame (high memory first),
//!   zeroes it through kmap_atomic and maps it with the region's rights.
//! - fork shares pages read-only (`AddressSpace::fork_into`); a write to
//!   one faults. If the frame's last other mapping is gone it is made
//!   writable in place, else copied (two kmap_atomic slots) and the copy
//!   mapped: the sharing breaks for this process only.
//! - The kernel itself may fault on a user page while serving a system
//!   call (a buffer not yet touched): the same paths resolve it, because
//!   the call checked the range against the regions first.

use arch_i386::PteFlags;
use mm::MmError;
use user_abi::errno;

use crate::devirt::devirt;
use crate::kprintln;
use crate::sched::Procs;
use crate::task::Vma;

/// Page-fault error code bits.
const PF_PRESENT: u32 = 1;
const PF_WRITE: u32 = 2;

/// Resolves a fault at `va` for the current process; `false` if it is
/// not one to resolve (outside every region, a write to a read-only one,
/// a kernel address).
pub fn fault(p: &mut Procs, va: u32, error: u32) -> bool {
    if va >= user_abi::USER_TOP || p.current == 0 {
        return false;
    }
    let page = va & !0xFFF;
    let Some(vma) = p.cur().vma(va) else { return false };
    let r = if error & PF_PRESENT == 0 {
        demand(p, page, &vma)
    } else if error & PF_WRITE != 0 && vma.writable {
        cow(p, page)
    } else {
        return false;
    };
    match r {
        Ok(()) => true,
        Err(e) => {
            kprintln!("page fault at {:#010x} in pid {}: {}", va, p.cur().pid, e);
            false
        }
    }
}

fn flags(p: &Procs, vma: &Vma) -> PteFlags {
    let mut f = PteFlags::ACCESSED;
    if vma.writable {
        f |= PteFlags::RW | PteFlags::DIRTY;
    }
    if !vma.executable && p.mem.nx {
        f |= PteFlags::NX;
    }
    f
}

fn demand(p: &mut Procs, page: u32, vma: &Vma) -> Result<(), MmError> {
    let pfn = p.user_frame()?;
    let f = flags(p, vma);
    let slot = p.current;
    let mut space = p.task(slot).space.take().expect("a process has an address space");
    let r = devirt!(p.mem.hv.mmu(), |m| space.map(&mut p.mem.ctx_with(m), page, pfn, f));
    p.task(slot).space = Some(space);
    p.stats.demand_faults += 1;
    r
}

fn cow(p: &mut Procs, page: u32) -> Result<(), MmError> {
    let slot = p.current;
    let mut space = p.task(slot).space.take().expect("a process has an address space");
    let r = (|| {
        let v = devirt!(p.mem.hv.mmu(), |m| space.pte_value(&p.mem.ctx_with(m), page))?;
        let mode = p.mem.layout.mode;
        let old = p
            .mem
            .hv
            .mmu()
            .pte_pfn(mode, v)
            .ok_or(MmError::Foreign { va: arch_i386::VirtAddr(page), raw: v })?;
        let keep = PteFlags::from_bits_truncate(v) | PteFlags::RW | PteFlags::DIRTY;
        p.stats.cow_faults += 1;
        if p.refs.get(old) == 1 {
            // The other mappings are gone: this one may write in place.
            return devirt!(p.mem.hv.mmu(), |m| space.remap(&mut p.mem.ctx_with(m), page, old, keep, true));
        }
        let new = p
            .mem
            .frames
            .alloc(mm::frames::Zone::High)
            .ok_or(MmError::OutOfMemory { what: "a copy-on-write copy", allocated: 0 })?;
        p.mem.copy_page(old, new)?;
        p.refs.first(new);
        devirt!(p.mem.hv.mmu(), |m| space.remap(&mut p.mem.ctx_with(m), page, new, keep, true))?;
        if p.refs.put(old) {
            unreachable!("another mapping held the old frame");
        }
        p.stats.cow_copies += 1;
        Ok(())
    })();
    p.task(slot).space = Some(space);
    r
}

/// ELF32 program header fields this loader reads.
const PT_LOAD: u32 = 1;
const PF_X: u32 = 1;
const PF_W: u32 = 2;

fn u32_at(b: &[u8], off: usize) -> Result<u32, MmError> {
    let s = b
        .get(off..off + 4)
        .ok_or(MmError::OutOfMemory { what: "a truncated program image", allocated: 0 })?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Loads an embedded program into task `slot`'s (new, not yet live)
/// address space, eagerly: every page of every loadable segment, the file
/// bytes copied in, the rest zero. Returns the entry point.
pub fn load(p: &mut Procs, slot: usize, elf: &[u8]) -> Result<u32, MmError> {
    let bad = MmError::OutOfMemory { what: "a program image that is not a static i386 ELF", allocated: 0 };
    if elf.get(0..4) != Some(b"\x7fELF") || elf.get(4) != Some(&1) || u32_at(elf, 16)? & 0xFFFF != 2 {
        return Err(bad);
    }
    let entry = u32_at(elf, 24)?;
    let phoff = u32_at(elf, 28)? as usize;
    let phentsize = (u32_at(elf, 40)? >> 16) as usize;
    let phnum = (u32_at(elf, 44)? & 0xFFFF) as usize;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        if u32_at(elf, ph)? != PT_LOAD {
            continue;
        }
        let (offset, vaddr) = (u32_at(elf, ph + 4)?, u32_at(elf, ph + 8)?);
        let (filesz, memsz, pflags) = (u32_at(elf, ph + 16)?, u32_at(elf, ph + 20)?, u32_at(elf, ph + 24)?);
        let end = vaddr.checked_add(memsz).filter(|&e| e <= user_abi::USER_TOP).ok_or(bad)?;
        if filesz > memsz || offset as usize + filesz as usize > elf.len() {
            return Err(bad);
        }
        let vma = Vma {
            start: vaddr & !0xFFF,
            end: (end + 0xFFF) & !0xFFF,
            writable: pflags & PF_W != 0,
            executable: pflags & PF_X != 0,
        };
        if !p.task(slot).add_vma(vma) {
            return Err(MmError::OutOfMemory { what: "a region slot", allocated: 0 });
        }
        let f = flags(p, &vma);
        let mut page = vma.start;
        while page < vma.end {
            let pfn = p.user_frame()?;
            // The file bytes that land in this page.
            let lo = page.max(vaddr);
            let hi = (page + 4096).min(vaddr + filesz);
            if lo < hi {
                let src = &elf[(offset + (lo - vaddr)) as usize..(offset + (hi - vaddr)) as usize];
                p.mem.write_at(pfn, (lo - page) as usize, src)?;
            }
            let mut space = p.task(slot).space.take().expect("a new process's address space");
            let r = devirt!(p.mem.hv.mmu(), |m| space.map(&mut p.mem.ctx_with(m), page, pfn, f));
            p.task(slot).space = Some(space);
            r?;
            page += 4096;
        }
    }
    Ok(entry)
}

/// mmap(len): a new anonymous region, faulted in on touch.
pub fn mmap(p: &mut Procs, len: u32) -> Result<u32, i32> {
    let len = len.checked_add(0xFFF).ok_or(-errno::EINVAL)? & !0xFFF;
    let t = p.cur();
    let start = t.mmap_next;
    let end = start
        .checked_add(len)
        .filter(|&e| len > 0 && e <= user_abi::STACK_TOP - user_abi::STACK_SIZE)
        .ok_or(-errno::ENOMEM)?;
    if !t.add_vma(Vma { start, end, writable: true, executable: false }) {
        return Err(-errno::ENOMEM);
    }
    // A guard page between regions.
    t.mmap_next = end + 4096;
    Ok(start)
}

/// munmap(addr, len): a whole region, or its first or last part; the pages
/// (and the pte pages the range emptied) go back at once.
pub fn munmap(p: &mut Procs, addr: u32, len: u32) -> Result<(), i32> {
    if addr & 0xFFF != 0 || len == 0 {
        return Err(-errno::EINVAL);
    }
    let end = addr.checked_add((len + 0xFFF) & !0xFFF).ok_or(-errno::EINVAL)?;
    let slot = p.current;
    let t = p.task(slot);
    let i = t
        .vmas
        .iter()
        .position(|v| v.is_some_and(|v| v.start <= addr && end <= v.end))
        .ok_or(-errno::EINVAL)?;
    let v = t.vmas[i].unwrap();
    t.vmas[i] = match (v.start == addr, v.end == end) {
        (true, true) => None,
        (true, false) => Some(Vma { start: end, ..v }),
        (false, true) => Some(Vma { end: addr, ..v }),
        (false, false) => return Err(-errno::EINVAL),
    };
    let mut space = t.space.take().expect("a process has an address space");
    let refs = &mut p.refs;
    let r = devirt!(p.mem.hv.mmu(), |m| {
        space.unmap_range(&mut p.mem.ctx_with(m), addr, (end - addr) / 4096, true, |frames, pfn| {
            if refs.put(pfn) && frames.free(pfn).is_err() {
                crate::fail!("munmap: frame {:#x} freed twice", pfn.0);
            }
        })
    });
    p.task(slot).space = Some(space);
    r.map(|_| ()).map_err(|e| {
        kprintln!("munmap in pid {}: {}", p.cur().pid, e);
        -errno::ENOMEM
    })
}
