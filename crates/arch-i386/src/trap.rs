//! Exceptions as the CPU reports them: the vector names, which vectors
//! push an error code, and the frame an entry stub that does `push error`
//! (or a dummy 0), `push vector`, `pushad` leaves on the stack.

/// Vectors for which the CPU pushes an error code: #DF, #TS, #NP, #SS,
/// #GP, #PF, #AC, #CP, #VC, #SX.
pub const HAS_ERROR_CODE: u32 = (1 << 8)
    | (1 << 10)
    | (1 << 11)
    | (1 << 12)
    | (1 << 13)
    | (1 << 14)
    | (1 << 17)
    | (1 << 21)
    | (1 << 29)
    | (1 << 30);

const NAMES: [&str; 32] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF",
    "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25", "#26", "#27", "#HV", "#VC",
    "#SX", "#31",
];

/// "#PF" for 14; "interrupt" above the exceptions.
pub fn name(vector: u32) -> &'static str {
    NAMES.get(vector as usize).copied().unwrap_or("interrupt")
}

/// `pushad` (lowest address first), then what the stub pushed (vector,
/// error code), then what the CPU pushed for a same-ring exception.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    pub edi: u32,
    pub esi: u32,
    pub ebp: u32,
    pub esp: u32,
    pub ebx: u32,
    pub edx: u32,
    pub ecx: u32,
    pub eax: u32,
    pub vector: u32,
    pub error: u32,
    pub eip: u32,
    pub cs: u32,
    pub eflags: u32,
}

/// What the kernel's entry stubs leave on the stack, for exceptions,
/// interrupts and system calls alike (lowest address first): `pushad`, the
/// data segments the interrupted code had, what the stub pushed (vector,
/// error code or 0), what the CPU pushed (eip, cs, eflags), and, only when
/// the CPU came from ring 3 and switched stacks, the user stack pointer
/// and segment. A ring-0 kernel frame has no `user_esp`/`user_ss`: those
/// words belong to whatever was on the stack before.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EntryFrame {
    pub edi: u32,
    pub esi: u32,
    pub ebp: u32,
    pub esp: u32,
    pub ebx: u32,
    pub edx: u32,
    pub ecx: u32,
    pub eax: u32,
    pub es: u32,
    pub ds: u32,
    pub vector: u32,
    pub error: u32,
    pub eip: u32,
    pub cs: u32,
    pub eflags: u32,
    pub user_esp: u32,
    pub user_ss: u32,
}

impl EntryFrame {
    /// Did the CPU come from user mode (ring 3)?
    pub fn from_user(&self) -> bool {
        self.cs & 3 == 3
    }

    /// The frame minus the words a same-ring entry does not push.
    pub const KERNEL_SIZE: usize = core::mem::size_of::<EntryFrame>() - 8;
}

impl core::fmt::Display for EntryFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "eax={:#010x} ebx={:#010x} ecx={:#010x} edx={:#010x} esi={:#010x} edi={:#010x} ebp={:#010x}",
            self.eax, self.ebx, self.ecx, self.edx, self.esi, self.edi, self.ebp
        )?;
        if self.from_user() {
            write!(f, " user esp={:#010x} ss={:#x}", self.user_esp, self.user_ss)?;
        }
        Ok(())
    }
}

impl core::fmt::Display for TrapFrame {
    /// The general registers, for a fault report.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "eax={:#010x} ebx={:#010x} ecx={:#010x} edx={:#010x} esi={:#010x} edi={:#010x} ebp={:#010x} esp={:#010x}",
            self.eax, self.ebx, self.ecx, self.edx, self.esi, self.edi, self.ebp, self.esp
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes() {
        assert_eq!(HAS_ERROR_CODE, 0x6022_7D00);
        assert_eq!(name(14), "#PF");
        assert_eq!(name(40), "interrupt");
    }
}
