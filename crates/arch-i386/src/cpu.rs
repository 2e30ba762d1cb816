//! CPUID: what this processor can do, and which hypervisor (if any) says
//! it is underneath.
//!
//! The decoding works on any `cpuid` function so it is tested on the host;
//! [`probe`] supplies the real instruction. A 386 or early 486 has no CPUID
//! at all: [`has_cpuid`] checks that first (EFLAGS.ID can be toggled).

/// The registers CPUID returns.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Regs {
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
}

/// A signature found in the hypervisor CPUID range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HypervisorLeaf {
    /// The leaf the signature was found at (0x40000000 + n * 0x100).
    pub base: u32,
    /// Highest leaf in this hypervisor's range.
    pub max_leaf: u32,
    /// ebx, ecx, edx as text, e.g. "XenVMMXenVMM" or "TCGTCGTCGTCG".
    pub signature: [u8; 12],
}

impl HypervisorLeaf {
    pub fn signature_str(&self) -> &str {
        core::str::from_utf8(&self.signature).unwrap_or("?")
    }
}

/// Most signatures one CPU can show at once (Xen with Viridian shows two).
pub const MAX_HV_LEAVES: usize = 4;

#[derive(Clone, Copy, Debug, Default)]
pub struct CpuFeatures {
    /// false on CPUs without the CPUID instruction; everything else is then
    /// false too.
    pub has_cpuid: bool,
    pub vendor: [u8; 12],
    pub family: u32,
    pub model: u32,
    /// Large (4 MiB) pages in 2-level paging.
    pub pse: bool,
    pub pae: bool,
    /// Global pages.
    pub pge: bool,
    /// No-execute bit (PAE only), from extended leaf 0x80000001.
    pub nx: bool,
    pub tsc: bool,
    pub msr: bool,
    /// An on-chip local APIC (and with it the APIC timer).
    pub apic: bool,
    /// CPUID.1:ECX bit 31: "running under a hypervisor".
    pub hypervisor_bit: bool,
    pub hv_leaves: [Option<HypervisorLeaf>; MAX_HV_LEAVES],
}

impl CpuFeatures {
    pub fn vendor_str(&self) -> &str {
        core::str::from_utf8(&self.vendor).unwrap_or("?")
    }
    pub fn hypervisor_leaves(&self) -> impl Iterator<Item = &HypervisorLeaf> {
        self.hv_leaves.iter().flatten()
    }
    /// The first hypervisor leaf whose signature is `sig`.
    pub fn find_hypervisor(&self, sig: &[u8; 12]) -> Option<&HypervisorLeaf> {
        self.hypervisor_leaves().find(|l| &l.signature == sig)
    }
}

fn signature(r: &Regs) -> [u8; 12] {
    let mut s = [0u8; 12];
    s[0..4].copy_from_slice(&r.ebx.to_le_bytes());
    s[4..8].copy_from_slice(&r.ecx.to_le_bytes());
    s[8..12].copy_from_slice(&r.edx.to_le_bytes());
    s
}

/// Decodes the features from a `cpuid(leaf, subleaf)` function.
pub fn decode(cpuid: impl Fn(u32, u32) -> Regs) -> CpuFeatures {
    let mut f = CpuFeatures { has_cpuid: true, ..Default::default() };
    let l0 = cpuid(0, 0);
    f.vendor = signature(&Regs {
        eax: 0,
        ebx: l0.ebx,
        ecx: l0.edx, // the vendor string is ebx, edx, ecx
        edx: l0.ecx,
    });
    if l0.eax >= 1 {
        let l1 = cpuid(1, 0);
        f.family = (l1.eax >> 8) & 0xF;
        f.model = (l1.eax >> 4) & 0xF;
        f.pse = l1.edx & (1 << 3) != 0;
        f.tsc = l1.edx & (1 << 4) != 0;
        f.msr = l1.edx & (1 << 5) != 0;
        f.pae = l1.edx & (1 << 6) != 0;
        f.apic = l1.edx & (1 << 9) != 0;
        f.pge = l1.edx & (1 << 13) != 0;
        f.hypervisor_bit = l1.ecx & (1 << 31) != 0;
    }
    let ext = cpuid(0x8000_0000, 0);
    if ext.eax >= 0x8000_0001 && ext.eax <= 0x8000_00FF {
        f.nx = cpuid(0x8000_0001, 0).edx & (1 << 20) != 0;
    }
    f.hv_leaves = scan_hypervisor_leaves(&cpuid);
    f
}

/// Looks for hypervisor signatures at 0x40000000..=0x4000FF00 in steps of
/// 0x100. Xen moves its leaves up by 0x100 when it also offers Viridian, so
/// stopping at the first base would miss it.
///
/// On a CPU with no hypervisor these leaves return whatever the CPU returns
/// for out-of-range leaves (Intel repeats the highest basic leaf), so a hit
/// needs a plausible max leaf (within this base's 0x100 leaves) and a
/// printable signature.
pub fn scan_hypervisor_leaves(cpuid: &impl Fn(u32, u32) -> Regs) -> [Option<HypervisorLeaf>; MAX_HV_LEAVES] {
    let mut found = [None; MAX_HV_LEAVES];
    let mut n = 0;
    let mut base = 0x4000_0000u32;
    while base <= 0x4000_FF00 && n < MAX_HV_LEAVES {
        let r = cpuid(base, 0);
        let sig = signature(&r);
        let plausible = r.eax >= base && r.eax < base + 0x100;
        let printable =
            sig.iter().any(|&b| b != 0) && sig.iter().all(|&b| b == 0 || (0x20..0x7F).contains(&b));
        if plausible && printable {
            found[n] = Some(HypervisorLeaf { base, max_leaf: r.eax, signature: sig });
            n += 1;
        }
        base += 0x100;
    }
    found
}

/// Can EFLAGS.ID (bit 21) be toggled? Only then does CPUID exist.
#[cfg(target_arch = "x86")]
pub fn has_cpuid() -> bool {
    let before: u32;
    let after: u32;
    // SAFETY: flips EFLAGS.ID and restores the original EFLAGS; touches no
    // memory but the stack, which is balanced.
    unsafe {
        core::arch::asm!(
            "pushfd",
            "pop {b}",
            "mov {a}, {b}",
            "xor {a}, 0x200000",
            "push {a}",
            "popfd",
            "pushfd",
            "pop {a}",
            "push {b}",
            "popfd",
            a = out(reg) after,
            b = out(reg) before,
        );
    }
    (before ^ after) & 0x20_0000 != 0
}

/// Runs the CPUID instruction (on an x86-64 host too, for host tests).
pub fn cpuid(leaf: u32, subleaf: u32) -> Regs {
    // CPUID is unprivileged and has no side effects; callers check
    // `has_cpuid` first.
    #[cfg(target_arch = "x86")]
    let r = core::arch::x86::__cpuid_count(leaf, subleaf);
    #[cfg(target_arch = "x86_64")]
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    Regs { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }
}

/// Every x86-64 CPU has CPUID.
#[cfg(target_arch = "x86_64")]
pub fn has_cpuid() -> bool {
    true
}

/// The features of the CPU we run on.
pub fn probe() -> CpuFeatures {
    if !has_cpuid() {
        return CpuFeatures::default();
    }
    decode(cpuid)
}

/// The time-stamp counter. Under QEMU with `-icount shift=0` it advances by
/// exactly one per guest instruction, which makes it an instruction
/// counter (the kernel checks this at boot, see its `perf: calibration`).
#[cfg(target_arch = "x86")]
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads a counter; callers check CPUID's TSC bit.
    unsafe { core::arch::x86::_rdtsc() }
}

/// Host builds (tests): no counter.
#[cfg(not(target_arch = "x86"))]
pub fn rdtsc() -> u64 {
    0
}

/// Runs `n` iterations of a 3-instruction loop (nop; dec; jnz), for
/// calibrating instruction counts.
#[cfg(target_arch = "x86")]
pub fn spin3(n: u32) {
    // SAFETY: only ecx is touched, and declared.
    unsafe {
        core::arch::asm!("2:", "nop", "dec ecx", "jnz 2b", inout("ecx") n => _, options(nomem, nostack));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(eax: u32, sig: &[u8; 12]) -> Regs {
        let w = |i: usize| u32::from_le_bytes(sig[i..i + 4].try_into().unwrap());
        Regs { eax, ebx: w(0), ecx: w(4), edx: w(8) }
    }

    #[test]
    fn finds_xen_behind_viridian() {
        let cpuid = |leaf: u32, _| match leaf {
            0 => Regs { eax: 1, ebx: 0x756e_6547, ecx: 0x6c65_746e, edx: 0x4965_6e69 },
            1 => Regs { eax: 0x6d3, ecx: 1 << 31, edx: (1 << 6) | (1 << 3), ..Default::default() },
            0x4000_0000 => regs(0x4000_0005, b"Microsoft Hv"),
            0x4000_0100 => regs(0x4000_0105, b"XenVMMXenVMM"),
            _ => Regs::default(),
        };
        let f = decode(cpuid);
        assert_eq!(f.vendor_str(), "GenuineIntel");
        assert!(f.pae && f.pse && !f.nx && f.hypervisor_bit);
        let xen = f.find_hypervisor(b"XenVMMXenVMM").unwrap();
        assert_eq!(xen.base, 0x4000_0100);
        assert_eq!(f.hypervisor_leaves().count(), 2);
    }

    #[test]
    fn ignores_echoed_basic_leaves() {
        // Intel answers unknown leaves with the highest basic leaf: eax is
        // then small and the "signature" is register garbage.
        let cpuid = |leaf: u32, _| match leaf {
            0 => Regs { eax: 0xd, ..Default::default() },
            _ => Regs { eax: 0x0000_0001, ebx: 0x0010_0800, ecx: 0x7ffa_fbff, edx: 0xbfeb_fbff },
        };
        assert_eq!(decode(cpuid).hypervisor_leaves().count(), 0);
    }

    #[test]
    fn nx_from_extended_leaf() {
        let cpuid = |leaf: u32, _| match leaf {
            0x8000_0000 => Regs { eax: 0x8000_0008, ..Default::default() },
            0x8000_0001 => Regs { edx: 1 << 20, ..Default::default() },
            _ => Regs::default(),
        };
        assert!(decode(cpuid).nx);
    }
}
