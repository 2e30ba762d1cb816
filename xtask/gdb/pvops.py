"""pvops's gdb commands. `cargo xtask gdb` loads this file; by hand:
`source xtask/gdb/pvops.py`.

  bp PATH     break on a function by its Rust path, generic or not
  pt [LO HI]  walk the live pagetable from CR3, as the CPU sees it
  hv          the chosen backend: its name and its counters

Why `bp`: rustc names each instance of a generic function after its type
arguments (`mm::pagetable::pagetable_init<dyn paravirt::mmu::Mmu>`), and
gdb looks Rust names up literally, so `break mm::pagetable::pagetable_init`
finds nothing; nor does `rbreak`, which sets its breakpoints by the linkage
name, and gdb 13 cannot resolve v0-mangled ones. `bp` finds every function
whose path, type arguments left out, is PATH (or ends in ::PATH), and
breaks on each by its full name.
"""

import struct

import gdb

# ---- bp --------------------------------------------------------------------


def split_name(decl):
    """The function name of an `info functions` line's declaration:
    `static fn a::b<T>(x: u32) -> u32;` -> `a::b<T>`."""
    decl = decl.strip()
    for prefix in ("static ", "fn "):
        if decl.startswith(prefix):
            decl = decl[len(prefix):]
    depth = 0
    for i, c in enumerate(decl):
        if c == "<":
            depth += 1
        elif c == ">" and decl[i - 1] != "-":
            depth -= 1
        elif c == "(" and depth == 0:
            return decl[:i]
    return decl


def without_generics(name):
    """`a::B<dyn C>::f<u8>` -> `a::B::f`."""
    out, depth = [], 0
    for i, c in enumerate(name):
        if c == "<":
            depth += 1
        elif c == ">" and name[i - 1] != "-":
            depth -= 1
        elif depth == 0:
            out.append(c)
    return "".join(out)


def functions_named(path):
    """Full names of the functions whose path without type arguments is
    `path` or ends in `::path`."""
    leaf = path.rsplit("::", 1)[-1]
    # gdb's regexes are POSIX basic ones.
    pattern = "".join("\\" + c if c in ".[]*^$\\" else c for c in leaf)
    listing = gdb.execute("info functions -q -n " + pattern, to_string=True)
    names = []
    for line in listing.splitlines():
        if ":\t" not in line:
            continue
        name = split_name(line.split(":\t", 1)[1])
        plain = without_generics(name)
        if (plain == path or plain.endswith("::" + path)) and name not in names:
            names.append(name)
    return names


class Bp(gdb.Command):
    """bp PATH: break on the function PATH (a Rust path, such as
mm::pagetable::pagetable_init or pagetable_init), and on every instance
of it if it is generic."""

    def __init__(self):
        super().__init__("bp", gdb.COMMAND_BREAKPOINTS)

    def invoke(self, arg, from_tty):
        path = arg.strip()
        if not path:
            raise gdb.GdbError("usage: bp PATH")
        names = functions_named(path)
        if not names:
            raise gdb.GdbError("bp: no function %s, nor an instance of one" % path)
        for name in names:
            gdb.Breakpoint(name)


# ---- pt --------------------------------------------------------------------

PRESENT, RW, USER, PSE, GLOBAL = 1 << 0, 1 << 1, 1 << 2, 1 << 7, 1 << 8
NX = 1 << 63
CR0_PG, CR4_PSE, CR4_PAE, EFER_LMA = 1 << 31, 1 << 4, 1 << 5, 1 << 10


def register(name):
    try:
        return int(gdb.parse_and_eval("$" + name)) & 0xFFFFFFFFFFFFFFFF
    except gdb.error:
        return 0


class Physical:
    """Reads of physical memory (machine memory under Xen), through
    QEMU's gdbstub in its physical-memory mode, one page at a time."""

    def __enter__(self):
        if "PhyMemMode" not in gdb.execute("maintenance packet qqemu.Supported", to_string=True):
            raise gdb.GdbError("pt: this gdbstub cannot read physical memory (QEMU's can)")
        gdb.execute("maintenance packet Qqemu.PhyMemMode:1", to_string=True)
        self.cache = {}
        return self

    def __exit__(self, *exc):
        gdb.execute("maintenance packet Qqemu.PhyMemMode:0", to_string=True)

    def entries(self, table, width):
        """The entries of the table page at physical address `table`."""
        if table not in self.cache:
            raw = bytes(gdb.selected_inferior().read_memory(table, 4096))
            fmt = "<1024I" if width == 4 else "<512Q"
            self.cache[table] = struct.unpack(fmt, raw)
        return self.cache[table]


class Format:
    """A paging format: levels as (index shift, index bits), entry width,
    the address bits of an entry."""

    def __init__(self, name, levels, width, addr_mask):
        self.name, self.levels, self.width, self.addr_mask = name, levels, width, addr_mask


TWO_LEVEL = Format("2-level", [(22, 10), (12, 10)], 4, 0xFFFFF000)
PAE = Format("PAE", [(30, 2), (21, 9), (12, 9)], 8, 0x000FFFFFFFFFF000)
# Long mode: only the low 4 GiB, which is all a 32-bit kernel can see
# (under Xen, L4 slot 0: the guest's own L3 page).
LONG = Format("long mode (4-level)", [(39, 9), (30, 9), (21, 9), (12, 9)], 8, 0x000FFFFFFFFFF000)


def walk(mem, fmt, root, lo, hi, visit):
    """Calls visit(va, size, entry) for every present leaf in [lo, hi),
    and returns the number of table pages read."""
    tables = [0]

    def level(table, depth, base):
        tables[0] += 1
        shift, bits = fmt.levels[depth]
        entries = mem.entries(table, fmt.width)
        # A PAE root is 4 entries at cr3 (32-byte aligned), not a page.
        offset = (table & 0xFFF) // fmt.width if depth == 0 and fmt is PAE else 0
        for i in range(1 << bits):
            va = base + (i << shift)
            size = 1 << shift
            if va + size <= lo or va >= hi:
                continue
            e = entries[offset + i]
            if not e & PRESENT:
                continue
            last = depth == len(fmt.levels) - 1
            # PSE marks a large page in a pmd (2-level: the pgd), or a
            # 1 GiB page in long mode's L3; a PAE root entry and an L4
            # entry always point to a table.
            large = not last and e & PSE and not (depth == 0 and fmt is not TWO_LEVEL)
            if last or large:
                visit(va, size, e)
            else:
                level(e & fmt.addr_mask, depth + 1, va)

    level(root, 0, 0)
    return tables[0]


def flags_text(e, fmt):
    return "%s %s %s %s" % (
        "RW" if e & RW else "ro",
        "NX" if fmt.width == 8 and e & NX else "x ",
        "USR" if e & USER else "ker",
        "GLB" if e & GLOBAL else "   ",
    )


def size_text(n):
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return "%dM" % (n >> 20)
    return "%dK" % (n >> 10)


class Pt(gdb.Command):
    """pt [LO [HI]]: the live pagetable, from CR3, as the CPU walks it:
runs of mappings contiguous in virtual and physical address with the same
permissions and page size, like the kernel's ptdump lines. 2-level, PAE,
or under Xen long mode (the hardware's L4 is Xen's; slot 0 is the guest's
L3). Addresses on the right are physical: machine addresses under Xen,
host-physical under lguest (CR3 is then the host's shadow)."""

    def __init__(self):
        super().__init__("pt", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        args = [int(gdb.parse_and_eval(a)) for a in gdb.string_to_argv(arg)]
        lo = args[0] if args else 0
        hi = args[1] if len(args) > 1 else 1 << 32
        cr0, cr3, cr4, efer = (register(r) for r in ("cr0", "cr3", "cr4", "efer"))
        if not cr0 & CR0_PG:
            gdb.write("pt: paging is off (cr0 %#x)\n" % cr0)
            return
        if efer & EFER_LMA:
            fmt, root = LONG, cr3 & LONG.addr_mask
        elif cr4 & CR4_PAE:
            fmt, root = PAE, cr3 & 0xFFFFFFE0
        else:
            fmt, root = TWO_LEVEL, cr3 & 0xFFFFF000
        runs = []

        def visit(va, size, e):
            pa = e & fmt.addr_mask
            if size > 4096:
                pa &= ~(size - 1)
            key = (e & (RW | USER | GLOBAL | NX), size)
            if runs and runs[-1][5] == key and runs[-1][1] == va and runs[-1][3] == pa:
                runs[-1][1] += size
                runs[-1][3] += size
            else:
                runs.append([va, va + size, pa, pa + size, e, key])

        with Physical() as mem:
            tables = walk(mem, fmt, root, lo, hi, visit)
        gdb.write("pt: %s, cr3 %#x: %d runs, %d table pages read\n" % (fmt.name, cr3, len(runs), tables))
        for start, end, pa, _, e, (_, size) in runs:
            gdb.write(
                "pt: %#010x-%#010x %6s %s %3s -> pa %#x\n"
                % (start, end, size_text(end - start), flags_text(e, fmt), size_text(size), pa)
            )


# ---- hv --------------------------------------------------------------------

HYPERVISOR = "&dyn paravirt::hypervisor::Hypervisor"


def find_dyn(value, depth=0):
    """The `&dyn Hypervisor` inside `value` (a spin::Once, whatever its
    layers of cells)."""
    if str(value.type.strip_typedefs()) == HYPERVISOR:
        return value
    if depth > 12 or value.type.strip_typedefs().code not in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
        return None
    for f in value.type.strip_typedefs().fields():
        if f.name is None:
            continue
        found = find_dyn(value[f], depth + 1)
        if found is not None:
            return found
    return None


def vtable_methods(vtable):
    """Method name -> function, from the vtable's entries (drop, size,
    align, then the methods, in the trait's order). A method the backend
    does not override is the trait's default, an instance named
    `paravirt::hypervisor::Hypervisor::counters<backend_native::Native>`."""
    methods = {}
    inf = gdb.selected_inferior()
    for i in range(3, 64):
        addr = struct.unpack("<I", bytes(inf.read_memory(vtable + 4 * i, 4)))[0]
        block = gdb.block_for_pc(addr) if addr else None
        if block is None or block.function is None:
            break
        methods.setdefault(without_generics(block.function.name).rsplit("::", 1)[-1], block.function)
    return methods


def constant_str(function):
    """The string a `fn name(&self) -> &'static str { "xen" }` returns,
    read from its code: `mov $ptr, %eax; mov $len, %edx; ret` (a &str comes
    back in eax:edx), in either order. None if the code is not that."""
    inf = gdb.selected_inferior()
    code = bytes(inf.read_memory(int(function.value().address), 11))
    if code[10] != 0xC3 or {code[0], code[5]} != {0xB8, 0xBA}:
        return None
    imm = {code[0]: struct.unpack("<I", code[1:5])[0], code[5]: struct.unpack("<I", code[6:10])[0]}
    ptr, length = imm[0xB8], imm[0xBA]
    if length > 64:
        return None
    return bytes(inf.read_memory(ptr, length)).decode("utf-8", "replace")


def atomic_u32(value):
    """The integer inside an AtomicU32 (whatever its layers of cells)."""
    t = value.type.strip_typedefs()
    if t.code != gdb.TYPE_CODE_STRUCT:
        return int(value)
    return atomic_u32(value[t.fields()[0]])


def find_fields(value, names, found, depth=0):
    """Fills `found` with the fields of `value`, at any depth, named in
    `names` (the first of each name wins)."""
    t = value.type.strip_typedefs()
    if depth > 8 or t.code != gdb.TYPE_CODE_STRUCT:
        return
    for f in t.fields():
        if f.name is None or f.artificial:
            continue
        if f.name in names and f.name not in found:
            found[f.name] = atomic_u32(value[f])
        else:
            find_fields(value[f], names, found, depth + 1)


class Hv(gdb.Command):
    """hv: the backend the kernel chose, its name() and type, and its
counters (hypercalls and what they carried), read where the backend keeps
them: its fields named as paravirt::Counters' are. Reads memory only: no
method is called, so nothing in the stopped kernel changes (a call needs
register writes, which QEMU's gdbstub gets wrong for the 32-bit guest of a
64-bit Xen)."""

    def __init__(self):
        super().__init__("hv", gdb.COMMAND_DATA)

    def invoke(self, arg, from_tty):
        chosen = find_dyn(gdb.parse_and_eval("kernel::console::BACKEND"))
        if chosen is None:
            raise gdb.GdbError("hv: kernel::console::BACKEND holds no &dyn Hypervisor")
        vtable = int(chosen["vtable"])
        if vtable == 0:
            gdb.write("hv: no backend chosen yet\n")
            return
        methods = vtable_methods(vtable)
        if "name" not in methods:
            raise gdb.GdbError("hv: the vtable at %#x has no name()" % vtable)
        ty = methods["name"].type.fields()[0].type.target()
        name = constant_str(methods["name"]) or "(name() is not a constant)"
        gdb.write("hv: backend %s (%s at %#x)\n" % (name, ty, int(chosen["pointer"])))
        names = [f.name for f in gdb.lookup_type("paravirt::counters::Counters").fields()]
        found = {}
        find_fields(chosen["pointer"].cast(ty.pointer()).dereference(), names, found)
        if not found:
            gdb.write("hv: counters: none (%s makes no hypercalls)\n" % name)
            return
        gdb.write("hv: counters: %s\n" % " ".join("%s=%d" % (n, found[n]) for n in names if n in found))


Bp()
Pt()
Hv()
