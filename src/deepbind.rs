//! Libraries loaded with `RTLD_DEEPBIND` look their symbols up in their own
//! dependencies first: their `socket()` and `connect()` bind straight to
//! libc, past every preloaded library, so their connections get nothing
//! from the shim (PHP loads its extensions this way: libcurl in the curl
//! extension, libpq in pgsql). The shim cannot reach those calls; it says
//! so, once per library, naming it.
//!
//! How it notices, without changing how the program's libraries are found:
//! the exported `dlopen` (see `crate::hooks`) is a trampoline that, for a
//! `RTLD_DEEPBIND` load, records where the loader's list of objects ended,
//! then *jumps* to the real `dlopen`, so that the real one still sees the
//! program as its caller (glibc resolves `$ORIGIN` and the caller's
//! `RUNPATH` from that return address). The objects that load added are
//! examined later, at the next hooked call or at exit, through the loader's
//! debugger interface (`r_debug`, found through the executable's
//! `DT_DEBUG`): no lock, no allocation, and every read goes through
//! [`sys::read_plain`], which cannot fault. An object that imports `socket`,
//! `connect`, `sendto` or `sendmsg` gets one warning.

use core::ffi::{c_char, c_int, c_void};
use core::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use keepalive_shim_config::{put_escaped, Level, Sink};

use crate::log;
use crate::sys::{self, read_plain};

/// The last object in the loader's list when a `RTLD_DEEPBIND` load began;
/// 0 when nothing is pending. Objects after it are examined once.
static PENDING_AFTER: AtomicUsize = AtomicUsize::new(0);

/// Bounds for walking the loader's structures (they are read racily: a
/// concurrent `dlclose` may leave a dangling link, so every walk ends).
const MAX_OBJECTS: usize = 4096;
const MAX_DYNAMIC: usize = 512;
const MAX_SYMBOLS: usize = 1 << 16;

/// The symbols whose import means "this library opens connections".
const SOCKET_CALLS: [&[u8]; 4] = [b"socket\0", b"connect\0", b"sendto\0", b"sendmsg\0"];

// The glibc/musl `<link.h>` public layouts (64-bit targets).
#[repr(C)]
#[derive(Clone, Copy)]
struct LinkMap {
    l_addr: usize,
    l_name: *const c_char,
    l_ld: *const Dyn,
    l_next: *const LinkMap,
    l_prev: *const LinkMap,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct RDebug {
    r_version: c_int,
    r_map: *const LinkMap,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct Dyn {
    d_tag: i64,
    d_val: u64,
}

const DT_NULL: i64 = 0;
const DT_HASH: i64 = 4;
const DT_STRTAB: i64 = 5;
const DT_SYMTAB: i64 = 6;
const DT_DEBUG: i64 = 21;
const DT_GNU_HASH: i64 = 0x6fff_fef5;

/// The `dlopen` the trampoline jumps to: the next library's (libc's).
pub static REAL_DLOPEN: AtomicPtr<c_void> = AtomicPtr::new(core::ptr::null_mut());

/// Finds the real `dlopen`. Called from the constructor, and by the
/// trampoline if a `dlopen` comes before it (another library's
/// constructor). Null only where no `dlopen` exists after this library,
/// in which case the program could not have called one.
pub extern "C" fn resolve_dlopen() -> *mut c_void {
    let mut f = REAL_DLOPEN.load(Ordering::Acquire);
    if f.is_null() {
        f = sys::next_symbol(c"dlopen");
        REAL_DLOPEN.store(f, Ordering::Release);
    }
    f
}

/// Called by the `dlopen` trampoline, before the real `dlopen`, for a
/// `RTLD_DEEPBIND` load. Must not change anything the real call sees.
pub extern "C" fn note_deepbind_load() {
    let _errno = sys::ErrnoGuard::save();
    if PENDING_AFTER.load(Ordering::Relaxed) != 0 {
        return; // an earlier load's objects are still to be examined
    }
    if let Some(tail) = objects().last() {
        PENDING_AFTER.store(tail as usize, Ordering::Relaxed);
    }
}

/// Examines the objects a `RTLD_DEEPBIND` load added, if one happened since
/// the last look; one warning per library that opens connections. Cheap
/// when nothing is pending (one atomic load).
pub fn check_pending() {
    if PENDING_AFTER.load(Ordering::Relaxed) == 0 {
        return;
    }
    let after = PENDING_AFTER.swap(0, Ordering::Relaxed) as *const LinkMap;
    if after.is_null() || !log::enabled(Level::Warn) {
        return;
    }
    let _errno = sys::ErrnoGuard::save();
    // SAFETY: LinkMap is plain data (integers and pointers).
    let Some(mut next) = (unsafe { read_plain(after) }).map(|m| m.l_next) else {
        return;
    };
    for _ in 0..MAX_OBJECTS {
        if next.is_null() {
            break;
        }
        // SAFETY: as above.
        let Some(map) = (unsafe { read_plain(next) }) else {
            break;
        };
        if imports_socket_calls(&map) {
            warn(&map);
        }
        next = map.l_next;
    }
}

fn warn(map: &LinkMap) {
    let mut name = [0u8; 256];
    let len = c_string(map.l_name, &mut name);
    let name = name.get(..len).unwrap_or(&[]);
    log::line(Level::Warn, |b| {
        put_escaped(b, name, 200);
        b.put(b" was loaded with RTLD_DEEPBIND: its own socket()/connect() bind straight to libc, so its connections get no keepalive from the shim; use its own keepalive options, or keepalive-shim attach");
    });
}

/// The loader's objects, in load order.
fn objects() -> impl Iterator<Item = *const LinkMap> {
    let mut next = r_debug()
        // SAFETY: RDebug's first fields are plain data.
        .and_then(|r| unsafe { read_plain(r) })
        .map_or(core::ptr::null(), |r| r.r_map);
    (0..MAX_OBJECTS).map_while(move |_| {
        if next.is_null() {
            return None;
        }
        let this = next;
        // SAFETY: LinkMap is plain data.
        next = unsafe { read_plain(this) }.map_or(core::ptr::null(), |m| m.l_next);
        Some(this)
    })
}

/// `&_r_debug`, which the loader stores in the executable's `DT_DEBUG`.
fn r_debug() -> Option<*const RDebug> {
    let phdr = sys::auxv(libc::AT_PHDR);
    let phnum = sys::auxv(libc::AT_PHNUM);
    let mut bias = None;
    let mut dynamic = None;
    for i in 0..phnum.min(64) {
        let at = phdr.checked_add(i.checked_mul(core::mem::size_of::<libc::Elf64_Phdr>())?)?;
        // SAFETY: a program header is plain data.
        let ph = unsafe { read_plain(at as *const libc::Elf64_Phdr) }?;
        match ph.p_type {
            libc::PT_PHDR => bias = Some(phdr.wrapping_sub(ph.p_vaddr as usize)),
            libc::PT_DYNAMIC => dynamic = Some(ph.p_vaddr as usize),
            _ => {}
        }
    }
    let dynamic = dynamic?.wrapping_add(bias.unwrap_or(0)) as *const Dyn;
    dynamic_entries(dynamic)
        .find(|d| d.d_tag == DT_DEBUG)
        .map(|d| d.d_val as usize as *const RDebug)
        .filter(|p| !p.is_null())
}

fn dynamic_entries(dynamic: *const Dyn) -> impl Iterator<Item = Dyn> {
    (0..MAX_DYNAMIC)
        .map(move |i| {
            // SAFETY: a dynamic entry is plain data; the read cannot fault.
            unsafe { read_plain(dynamic.wrapping_add(i)) }
        })
        .map_while(|d| d.filter(|d| d.d_tag != DT_NULL))
}

/// Whether an object's dynamic symbol table has an undefined
/// `socket`/`connect`/`sendto`/`sendmsg`.
fn imports_socket_calls(map: &LinkMap) -> bool {
    let (mut strtab, mut symtab, mut hash, mut gnu_hash) = (0usize, 0usize, 0usize, 0usize);
    for d in dynamic_entries(map.l_ld) {
        // glibc relocates these in place on most targets; a value below the
        // load address is still an offset.
        let mut addr = d.d_val as usize;
        if addr < map.l_addr {
            addr = addr.wrapping_add(map.l_addr);
        }
        match d.d_tag {
            DT_STRTAB => strtab = addr,
            DT_SYMTAB => symtab = addr,
            DT_HASH => hash = addr,
            DT_GNU_HASH => gnu_hash = addr,
            _ => {}
        }
    }
    if strtab == 0 || symtab == 0 {
        return false;
    }
    let count = if hash != 0 {
        // SAFETY: u32 is plain data; `nchain` is the symbol count.
        unsafe { read_plain((hash as *const u32).wrapping_add(1)) }.map_or(0, |n| n as usize)
    } else if gnu_hash != 0 {
        gnu_hash_symbol_count(gnu_hash)
    } else {
        0
    };
    let syms = symtab as *const libc::Elf64_Sym;
    (0..count.min(MAX_SYMBOLS)).any(|i| {
        // SAFETY: a symbol entry is plain data.
        let Some(sym) = (unsafe { read_plain(syms.wrapping_add(i)) }) else {
            return false;
        };
        if sym.st_shndx != 0 || sym.st_name == 0 {
            return false; // defined here, or nameless
        }
        let name = (strtab as *const u8).wrapping_add(sym.st_name as usize);
        let mut buf = [0u8; 8];
        sys::copy_from_program(&mut buf, name.cast::<c_void>())
            && SOCKET_CALLS
                .iter()
                .any(|want| buf.get(..want.len()) == Some(*want))
    })
}

/// The number of dynamic symbols, from a `DT_GNU_HASH` table: one past the
/// last symbol of the highest bucket's chain.
fn gnu_hash_symbol_count(table: usize) -> usize {
    let words = table as *const u32;
    // SAFETY (all reads here): u32 is plain data; reads cannot fault.
    let header = |i: usize| unsafe { read_plain(words.wrapping_add(i)) };
    let (Some(nbuckets), Some(symoffset), Some(bloom_size)) = (header(0), header(1), header(2))
    else {
        return 0;
    };
    let buckets = (table as *const u64)
        .wrapping_add(2) // the four u32 header words
        .wrapping_add(bloom_size as usize)
        .cast::<u32>();
    let mut last = 0u32;
    for i in 0..(nbuckets as usize).min(MAX_SYMBOLS) {
        // SAFETY: as above.
        if let Some(b) = unsafe { read_plain(buckets.wrapping_add(i)) } {
            last = last.max(b);
        }
    }
    if last < symoffset {
        return symoffset as usize;
    }
    let chains = buckets.wrapping_add(nbuckets as usize);
    let mut index = last as usize;
    for _ in 0..MAX_SYMBOLS {
        let Some(offset) = index.checked_sub(symoffset as usize) else {
            break;
        };
        // SAFETY: as above.
        match unsafe { read_plain(chains.wrapping_add(offset)) } {
            Some(h) if h & 1 == 0 => index = index.saturating_add(1),
            _ => break,
        }
    }
    index.saturating_add(1)
}

/// Copies a NUL-terminated string into `buf`; its length.
fn c_string(s: *const c_char, buf: &mut [u8]) -> usize {
    for (i, slot) in buf.iter_mut().enumerate() {
        // SAFETY: u8 is plain data.
        match unsafe { read_plain(s.cast::<u8>().wrapping_add(i)) } {
            Some(0) | None => return i,
            Some(c) => *slot = c,
        }
    }
    buf.len()
}
