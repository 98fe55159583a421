//! The XDP program that steers an interface's queues into XSK sockets.
//!
//! It is libxdp's own default AF_XDP program (`xsk_def_xdp_prog.o`, in
//! Debian's `libxdp1`): an `XSKMAP` indexed by the receive queue and one
//! `bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS)`. libxdp
//! loads and attaches it (`xsk_setup_xdp_prog`: native XDP where the driver
//! has it, else generic; through its dispatcher when a bpffs is mounted,
//! else alone) and hands back the map; we put each queue's socket in the
//! map ourselves (`BPF_MAP_UPDATE_ELEM`). No BPF code is written here.
//!
//! libxdp is opened at run time (`dlopen("libxdp.so.1")`), so building
//! warpcore needs neither libxdp nor clang; only running an AF_XDP NIC
//! needs the library, and its absence is a clear error.

use core::ffi::{c_char, c_int, c_long, c_void};
use core::fmt;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::OnceLock;

use crate::sys;

/// Why the XDP program could not be set up or take a socket.
#[derive(Debug)]
pub enum ProgramError {
    /// `libxdp.so.1` (Debian package `libxdp1`) could not be loaded, or
    /// lacks a function we call.
    Library(String),
    /// The interface is unusable.
    Interface(String),
    /// libxdp could not load or attach the program; its reason.
    Attach {
        /// The Linux interface.
        ifname: String,
        /// libxdp's error text.
        reason: String,
    },
    /// The socket could not be put into the program's XSKMAP.
    MapUpdate {
        /// The queue (map key).
        queue: u32,
        /// What the kernel said.
        error: io::Error,
    },
}

impl fmt::Display for ProgramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Library(reason) => {
                write!(f, "cannot load libxdp (install Debian's libxdp1): {reason}")
            }
            Self::Interface(reason) => f.write_str(reason),
            Self::Attach { ifname, reason } => {
                write!(f, "attaching the XDP program to {ifname} failed: {reason}")
            }
            Self::MapUpdate { queue, error } => {
                write!(
                    f,
                    "putting the socket of queue {queue} into the XSKMAP failed: {error}"
                )
            }
        }
    }
}

impl std::error::Error for ProgramError {}

/// `enum xdp_attach_mode` of libxdp.
const XDP_MODE_NATIVE: c_int = 1;
const XDP_MODE_SKB: c_int = 2;
const XDP_MODE_HW: c_int = 3;

type SetupXdpProg = unsafe extern "C" fn(c_int, *mut c_int) -> c_int;
type GetFromIfindex = unsafe extern "C" fn(c_int) -> *mut c_void;
type AttachMode = unsafe extern "C" fn(*const c_void) -> c_int;
type Detach = unsafe extern "C" fn(*mut c_void) -> c_int;
type Close = unsafe extern "C" fn(*mut c_void);
type GetError = unsafe extern "C" fn(*const c_void) -> c_long;
type StrError = unsafe extern "C" fn(c_int, *mut c_char, usize) -> c_int;

/// The few libxdp functions we use, resolved once.
struct Libxdp {
    setup_xdp_prog: SetupXdpProg,
    multiprog_get_from_ifindex: GetFromIfindex,
    multiprog_attach_mode: AttachMode,
    multiprog_detach: Detach,
    multiprog_close: Close,
    get_error: GetError,
    strerror: StrError,
}

// SAFETY: the struct holds only function pointers into a library that is
// never unloaded; libxdp's functions are callable from any thread.
unsafe impl Send for Libxdp {}
// SAFETY: as above; the pointers are never written after loading.
unsafe impl Sync for Libxdp {}

/// The latest `dlerror()` text.
fn dl_error() -> String {
    // SAFETY: dlerror returns null or a NUL-terminated string valid until
    // the next dl call on this thread; we copy it at once.
    let text = unsafe { libc::dlerror() };
    if text.is_null() {
        return "unknown dlopen error".to_owned();
    }
    // SAFETY: non-null, NUL-terminated (above).
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

impl Libxdp {
    fn load() -> Result<Self, String> {
        // SAFETY: dlopen with a constant NUL-terminated name; the handle is
        // kept for the life of the process (never dlclose'd).
        let handle = unsafe { libc::dlopen(c"libxdp.so.1".as_ptr(), libc::RTLD_NOW) };
        if handle.is_null() {
            return Err(dl_error());
        }
        let symbol = |name: &CStr| -> Result<*mut c_void, String> {
            // SAFETY: `handle` is a live dlopen handle, `name` NUL-terminated.
            let pointer = unsafe { libc::dlsym(handle, name.as_ptr()) };
            if pointer.is_null() {
                Err(format!("{}: {}", name.to_string_lossy(), dl_error()))
            } else {
                Ok(pointer)
            }
        };
        // Each symbol is the libxdp 1.x function of that name, whose C
        // prototype (libxdp.h, xsk.h) is the Rust type it is turned into;
        // function and data pointers have one size on Linux.
        macro_rules! function {
            ($name:literal, $type:ty) => {{
                let pointer = symbol($name)?;
                // SAFETY: see above: `pointer` is the non-null address of a
                // C function of type `$type`, in a library never unloaded.
                unsafe { core::mem::transmute::<*mut c_void, $type>(pointer) }
            }};
        }
        Ok(Self {
            setup_xdp_prog: function!(c"xsk_setup_xdp_prog", SetupXdpProg),
            multiprog_get_from_ifindex: function!(
                c"xdp_multiprog__get_from_ifindex",
                GetFromIfindex
            ),
            multiprog_attach_mode: function!(c"xdp_multiprog__attach_mode", AttachMode),
            multiprog_detach: function!(c"xdp_multiprog__detach", Detach),
            multiprog_close: function!(c"xdp_multiprog__close", Close),
            get_error: function!(c"libxdp_get_error", GetError),
            strerror: function!(c"libxdp_strerror", StrError),
        })
    }

    fn get() -> Result<&'static Self, ProgramError> {
        static LIBRARY: OnceLock<Result<Libxdp, String>> = OnceLock::new();
        LIBRARY
            .get_or_init(Self::load)
            .as_ref()
            .map_err(|reason| ProgramError::Library(reason.clone()))
    }

    /// libxdp's text for error `code` (negative errno or libxdp's own).
    fn error_text(&self, code: c_int) -> String {
        let mut buffer = [0 as c_char; 256];
        // SAFETY: the buffer is writable for its length and outlives the
        // call; libxdp NUL-terminates within it.
        unsafe { (self.strerror)(code, buffer.as_mut_ptr(), buffer.len()) };
        // SAFETY: NUL-terminated within the buffer (above).
        let text = unsafe { CStr::from_ptr(buffer.as_ptr()) };
        text.to_string_lossy().into_owned()
    }

    /// The attach mode of the XDP program on `ifindex`, or `None` when
    /// there is none.
    fn attached_mode(&self, ifindex: u32) -> Option<c_int> {
        // SAFETY: a plain query; the result is checked with libxdp's own
        // error test and closed below.
        let multiprog = unsafe { (self.multiprog_get_from_ifindex)(ifindex as c_int) };
        // SAFETY: `get_error` accepts any pointer libxdp returned.
        if multiprog.is_null() || unsafe { (self.get_error)(multiprog) } != 0 {
            return None;
        }
        // SAFETY: `multiprog` is a live object from libxdp, closed once.
        let mode = unsafe { (self.multiprog_attach_mode)(multiprog) };
        // SAFETY: as above.
        unsafe { (self.multiprog_close)(multiprog) };
        Some(mode)
    }
}

/// libxdp's AF_XDP redirect program attached to one interface, with its
/// XSKMAP. Detached on drop if this process attached it (a program that
/// was there before, e.g. another process's, is left alone).
pub struct XdpProgram {
    ifname: String,
    ifindex: u32,
    map: OwnedFd,
    mode: &'static str,
    attached_here: bool,
}

impl fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("XdpProgram")
            .field("ifname", &self.ifname)
            .field("mode", &self.mode)
            .field("attached_here", &self.attached_here)
            .finish()
    }
}

impl XdpProgram {
    /// Loads and attaches the program to `ifname`, or takes the one an
    /// earlier AF_XDP user left there.
    pub fn attach(ifname: &str) -> Result<Self, ProgramError> {
        let ifindex = sys::interface_index(ifname)
            .map_err(|error| ProgramError::Interface(format!("{ifname}: {error}")))?;
        let library = Libxdp::get()?;
        let attached_before = library.attached_mode(ifindex).is_some();
        let mut map_fd: c_int = -1;
        // SAFETY: `map_fd` is a writable int that outlives the call.
        let result = unsafe { (library.setup_xdp_prog)(ifindex as c_int, &mut map_fd) };
        if result < 0 || map_fd < 0 {
            return Err(ProgramError::Attach {
                ifname: ifname.to_owned(),
                reason: library.error_text(result),
            });
        }
        // SAFETY: libxdp returned a descriptor of the XSKMAP for us to own.
        let map = unsafe { OwnedFd::from_raw_fd(map_fd) };
        let mode = match library.attached_mode(ifindex) {
            Some(XDP_MODE_NATIVE) => "native",
            Some(XDP_MODE_SKB) => "generic",
            Some(XDP_MODE_HW) => "offloaded",
            _ => "unknown",
        };
        Ok(Self {
            ifname: ifname.to_owned(),
            ifindex,
            map,
            mode,
            attached_here: !attached_before,
        })
    }

    /// How the program runs: `native` (in the driver), `generic` (on the
    /// skb, any interface) or `offloaded`.
    pub fn mode(&self) -> &'static str {
        self.mode
    }

    /// True when this process attached the program (and detaches it).
    pub fn attached_here(&self) -> bool {
        self.attached_here
    }

    /// The Linux interface.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// Steers queue `queue` into `socket` (an XSK socket bound to it).
    pub fn insert(&self, queue: u32, socket: BorrowedFd<'_>) -> Result<(), ProgramError> {
        /// The `BPF_MAP_*_ELEM` member of `union bpf_attr`.
        #[repr(C)]
        struct MapElementAttribute {
            map_fd: u32,
            _pad: u32,
            key: u64,
            value: u64,
            flags: u64,
        }
        const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
        let key = queue;
        let value = socket.as_raw_fd() as u32;
        let attribute = MapElementAttribute {
            map_fd: self.map.as_raw_fd() as u32,
            _pad: 0,
            key: (&raw const key) as u64,
            value: (&raw const value) as u64,
            flags: 0, // BPF_ANY
        };
        // SAFETY: bpf(2) reads `size_of::<MapElementAttribute>()` bytes of
        // `attribute` and the u32 key and value it points to, all of which
        // outlive the call.
        let result = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_UPDATE_ELEM,
                &raw const attribute,
                size_of::<MapElementAttribute>(),
            )
        };
        if result < 0 {
            return Err(ProgramError::MapUpdate {
                queue,
                error: io::Error::last_os_error(),
            });
        }
        Ok(())
    }

    /// Detaches the program now (what drop does); returns libxdp's error
    /// text if that failed.
    fn detach(&self) -> Result<(), String> {
        let library = Libxdp::get().map_err(|error| error.to_string())?;
        // SAFETY: a plain query, checked and closed below.
        let multiprog = unsafe { (library.multiprog_get_from_ifindex)(self.ifindex as c_int) };
        // SAFETY: `get_error` accepts any pointer libxdp returned.
        if multiprog.is_null() || unsafe { (library.get_error)(multiprog) } != 0 {
            // Gone already (the interface too, perhaps).
            return Ok(());
        }
        // SAFETY: `multiprog` is live, detached and closed once.
        let result = unsafe { (library.multiprog_detach)(multiprog) };
        // SAFETY: as above.
        unsafe { (library.multiprog_close)(multiprog) };
        if result < 0 {
            return Err(library.error_text(result));
        }
        Ok(())
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        if self.attached_here
            && let Err(reason) = self.detach()
        {
            eprintln!(
                "af-xdp: detaching the XDP program from {} failed: {reason}",
                self.ifname
            );
        }
    }
}
