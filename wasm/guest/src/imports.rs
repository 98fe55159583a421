//! The host's imports (module `"warpcore"`), behind safe functions over slices.
//!
//! All unsafe of the crate lives here and in [`crate::export`]: each import
//! only reads or writes the module's own memory at the ranges it is given,
//! which come from live slices.

#[cfg(target_arch = "wasm32")]
mod raw {
    #[link(wasm_import_module = "warpcore")]
    unsafe extern "C" {
        pub fn packet_read(slot: i32, offset: i32, dst: *mut u8, len: i32) -> i32;
        pub fn packet_write(slot: i32, offset: i32, src: *const u8, len: i32) -> i32;
        pub fn map_lookup(key: *const u8, key_len: i32, value: *mut u8, value_cap: i32) -> i32;
        pub fn map_update(key: *const u8, key_len: i32, value: *const u8, value_len: i32) -> i32;
        pub fn map_delete(key: *const u8, key_len: i32) -> i32;
        pub fn clock_ns() -> i64;
        pub fn log(level: i32, message: *const u8, len: i32);
        pub fn counter(name: *const u8, name_len: i32) -> i32;
        pub fn counter_add(id: i32, delta: i64);
    }
}

/// Off wasm32 (host unit tests of this crate) there is no host: every
/// import answers as if the thing asked for is not there.
#[cfg(not(target_arch = "wasm32"))]
#[allow(missing_docs, clippy::missing_safety_doc)]
mod raw {
    pub unsafe fn packet_read(_: i32, _: i32, _: *mut u8, _: i32) -> i32 {
        -1
    }
    pub unsafe fn packet_write(_: i32, _: i32, _: *const u8, _: i32) -> i32 {
        -1
    }
    pub unsafe fn map_lookup(_: *const u8, _: i32, _: *mut u8, _: i32) -> i32 {
        -1
    }
    pub unsafe fn map_update(_: *const u8, _: i32, _: *const u8, _: i32) -> i32 {
        -1
    }
    pub unsafe fn map_delete(_: *const u8, _: i32) -> i32 {
        -1
    }
    pub unsafe fn clock_ns() -> i64 {
        0
    }
    pub unsafe fn log(_: i32, _: *const u8, _: i32) {}
    pub unsafe fn counter(_: *const u8, _: i32) -> i32 {
        -1
    }
    pub unsafe fn counter_add(_: i32, _: i64) {}
}

/// Lengths fit an i32: a wasm32 memory is at most 4 GiB and slices here are
/// far smaller; saturate rather than wrap should one ever not.
fn length(bytes: usize) -> i32 {
    i32::try_from(bytes).unwrap_or(i32::MAX)
}

/// `packet_read`: the packet's bytes from `offset` into `destination`.
pub fn packet_read(slot: u32, offset: u32, destination: &mut [u8]) -> i32 {
    // SAFETY: the host writes at most `destination.len()` bytes at its address.
    unsafe {
        raw::packet_read(
            slot as i32,
            offset as i32,
            destination.as_mut_ptr(),
            length(destination.len()),
        )
    }
}

/// `packet_write`: `source` into the packet at `offset`.
pub fn packet_write(slot: u32, offset: u32, source: &[u8]) -> i32 {
    // SAFETY: the host reads `source.len()` bytes at its address.
    unsafe {
        raw::packet_write(
            slot as i32,
            offset as i32,
            source.as_ptr(),
            length(source.len()),
        )
    }
}

/// `map_lookup`.
pub fn map_lookup(key: &[u8], value: &mut [u8]) -> i32 {
    // SAFETY: the host reads the key and writes at most `value.len()` bytes.
    unsafe {
        raw::map_lookup(
            key.as_ptr(),
            length(key.len()),
            value.as_mut_ptr(),
            length(value.len()),
        )
    }
}

/// `map_update`.
pub fn map_update(key: &[u8], value: &[u8]) -> i32 {
    // SAFETY: the host only reads both slices.
    unsafe {
        raw::map_update(
            key.as_ptr(),
            length(key.len()),
            value.as_ptr(),
            length(value.len()),
        )
    }
}

/// `map_delete`.
pub fn map_delete(key: &[u8]) -> i32 {
    // SAFETY: the host only reads the key.
    unsafe { raw::map_delete(key.as_ptr(), length(key.len())) }
}

/// `clock_ns`.
pub fn clock_ns() -> i64 {
    // SAFETY: no memory involved.
    unsafe { raw::clock_ns() }
}

/// `log`.
pub fn log(level: i32, message: &[u8]) {
    // SAFETY: the host only reads the message.
    unsafe { raw::log(level, message.as_ptr(), length(message.len())) }
}

/// `counter`.
pub fn counter(name: &[u8]) -> i32 {
    // SAFETY: the host only reads the name.
    unsafe { raw::counter(name.as_ptr(), length(name.len())) }
}

/// `counter_add`.
pub fn counter_add(id: i32, delta: i64) {
    // SAFETY: no memory involved.
    unsafe { raw::counter_add(id, delta) }
}
