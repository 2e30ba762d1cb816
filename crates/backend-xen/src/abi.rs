//! Xen's public ABI as a 32-bit PAE guest sees it (Xen 4.17,
//! xen/include/public/). A 64-bit Xen runs a 32-bit PV guest in "compat"
//! mode and translates these structures from their i386 layouts, which
//! are what is written here: `unsigned long` and `xen_pfn_t` are 4 bytes.

/// Hypercall numbers (xen.h).
pub mod nr {
    pub const SET_TRAP_TABLE: u32 = 0;
    pub const MMU_UPDATE: u32 = 1;
    pub const STACK_SWITCH: u32 = 3;
    pub const MEMORY_OP: u32 = 12;
    pub const MULTICALL: u32 = 13;
    pub const UPDATE_VA_MAPPING: u32 = 14;
    pub const XEN_VERSION: u32 = 17;
    pub const IRET: u32 = 23;
    pub const VCPU_OP: u32 = 24;
    pub const CONSOLE_IO: u32 = 18;
    pub const MMUEXT_OP: u32 = 26;
    pub const SCHED_OP: u32 = 29;
    pub const CALLBACK_OP: u32 = 30;
    pub const EVENT_CHANNEL_OP: u32 = 32;
    pub const PHYSDEV_OP: u32 = 33;
    pub const HVM_OP: u32 = 34;
}

pub const DOMID_SELF: u32 = 0x7FF0;

/// The flat selectors Xen provides a 32-bit PV guest, in the part of the
/// GDT it keeps: the kernel's (ring 1) and user mode's (ring 3).
pub const FLAT_RING1_CS: u16 = 0xE019;
pub const FLAT_RING1_DS: u16 = 0xE021;
pub const FLAT_RING3_CS: u16 = 0xE02B;
pub const FLAT_RING3_DS: u16 = 0xE033;

/// `trap_info.flags` bit 2: mask events on entry (an interrupt gate).
pub const TI_MASK_EVENTS: u8 = 4;

/// `struct mmu_update`: `ptr` is the machine address of the entry (low two
/// bits: the command; 0, MMU_NORMAL_PT_UPDATE, a checked `*ptr = val`, is
/// the only one this kernel uses, and an 8-aligned entry address already
/// says it), `val` the new entry (machine frame + flags).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuUpdate {
    pub ptr: u64,
    pub val: u64,
}

/// `struct mmuext_op` (12 bytes on i386).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MmuextOp {
    pub cmd: u32,
    /// mfn or linear address
    pub arg1: u32,
    pub arg2: u32,
}

pub mod mmuext {
    pub const PIN_L3_TABLE: u32 = 2;
    pub const UNPIN_TABLE: u32 = 4;
    pub const NEW_BASEPTR: u32 = 5;
    pub const TLB_FLUSH_LOCAL: u32 = 6;
    pub const INVLPG_LOCAL: u32 = 7;
}

/// update_va_mapping flags: invalidate just this address.
pub const UVMF_INVLPG: u32 = 2;

/// `struct multicall_entry` on i386: all fields 32-bit.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MulticallEntry {
    pub op: u32,
    /// The sub-call's return value, written by Xen.
    pub result: u32,
    pub args: [u32; 6],
}

/// `struct trap_info` (8 bytes): the PV IDT entry.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrapInfo {
    pub vector: u8,
    /// Bits 0-1: DPL that may `int n` to it; bit 2: mask events on entry.
    pub flags: u8,
    pub cs: u16,
    pub address: u32,
}

pub const CONSOLEIO_WRITE: u32 = 0;
pub const SCHEDOP_YIELD: u32 = 0;
pub const SCHEDOP_SHUTDOWN: u32 = 2;
/// SCHEDOP_shutdown reasons: how `xl` sees the domain end. A run that
/// passed (or skipped) powers off; one that failed says it crashed.
pub const SHUTDOWN_POWEROFF: u32 = 0;
pub const SHUTDOWN_CRASH: u32 = 3;
/// event_channel_op: bind a virtual IRQ to a new port; notify the other
/// end of a port.
pub const EVTCHNOP_BIND_VIRQ: u32 = 1;
pub const EVTCHNOP_SEND: u32 = 4;
/// The per-vCPU timer's virtual IRQ.
pub const VIRQ_TIMER: u32 = 0;

/// sched_op: block until an event (unmasking atomically).
pub const SCHEDOP_BLOCK: u32 = 1;

/// vcpu_op commands (ebx = cmd, ecx = vcpu, edx = argument).
pub const VCPUOP_DOWN: u32 = 2;
pub const VCPUOP_STOP_PERIODIC_TIMER: u32 = 7;
pub const VCPUOP_SET_SINGLESHOT_TIMER: u32 = 8;
pub const VCPUOP_STOP_SINGLESHOT_TIMER: u32 = 9;

/// callback_op: register a callback; the two a PV kernel must have.
pub const CALLBACKOP_REGISTER: u32 = 0;
pub const CALLBACKTYPE_EVENT: u16 = 0;
pub const CALLBACKTYPE_FAILSAFE: u16 = 1;
pub const CALLBACKF_MASK_EVENTS: u16 = 1;

/// `struct callback_register`, compat: 12 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct CallbackRegister {
    pub kind: u16,
    pub flags: u16,
    pub cs: u32,
    pub eip: u32,
}

/// hvm_op: set and get HVM parameters.
pub const HVMOP_SET_PARAM: u32 = 0;
pub const HVMOP_GET_PARAM: u32 = 1;
/// How events reach an HVM/PVH guest; type 2 in bits 63:56 = an IDT
/// vector in bits 7:0.
pub const HVM_PARAM_CALLBACK_IRQ: u32 = 0;
pub const HVM_CALLBACK_VECTOR: u64 = 2 << 56;
/// A PVH domU's console ring (guest frame) and its event channel.
pub const HVM_PARAM_CONSOLE_PFN: u32 = 17;
pub const HVM_PARAM_CONSOLE_EVTCHN: u32 = 18;

/// `struct xen_hvm_param`: 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct HvmParam {
    pub domid: u16,
    pub pad: u16,
    pub index: u32,
    pub value: u64,
}

/// memory_op: put a Xen-owned page (shared_info) at a guest frame.
pub const XENMEM_ADD_TO_PHYSMAP: u32 = 7;
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;

/// `struct xen_add_to_physmap`, compat: 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct AddToPhysmap {
    pub domid: u16,
    pub size: u16,
    pub space: u32,
    pub idx: u32,
    pub gpfn: u32,
}
pub const PHYSDEVOP_SET_IOPL: u32 = 6;
/// memory_op: where the read-only machine-to-phys table is mapped.
pub const XENMEM_MACHPHYS_MAPPING: u32 = 12;

/// `struct xen_machphys_mapping` (compat: three 32-bit words).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MachphysMapping {
    pub v_start: u32,
    pub v_end: u32,
    pub max_mfn: u32,
}

/// Where the hypervisor's part of a compat guest's address space starts,
/// if Xen does not say otherwise (HYPERVISOR_COMPAT_VIRT_START).
pub const DEFAULT_HV_START: u32 = 0xF580_0000;

const _: () = {
    assert!(core::mem::size_of::<MmuUpdate>() == 16);
    assert!(core::mem::size_of::<MmuextOp>() == 12);
    assert!(core::mem::size_of::<MulticallEntry>() == 32);
    assert!(core::mem::size_of::<TrapInfo>() == 8);
    assert!(core::mem::size_of::<CallbackRegister>() == 12);
    assert!(core::mem::size_of::<HvmParam>() == 16);
    assert!(core::mem::size_of::<AddToPhysmap>() == 16);
};
