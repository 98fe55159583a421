// warpcore.ts: writes a warpcore Wasm nanoservice (wasm/ABI.md, version 1)
// in AssemblyScript.
//
// Build (npm assemblyscript, pinned in wasm/toolchain):
//   asc acl.ts --runtime stub --use abort= -O3 --noAssert -o acl.wasm
//
// A module imports this file, re-exports the four ABI functions and names
// its two functions once, at top level:
//
//   export { warpcore_abi_version, warpcore_buffer, warpcore_init,
//            warpcore_process_batch } from "../../../wasm/abi/warpcore";
//   function init(config: Span): i32 { ... return 0; }   // 0 accepts
//   function process(slot: Slot): void { ... }            // per packet
//   service(init, process);
//
// The stub runtime never frees: allocate in init (and at top level) only,
// never per packet. `Slot` and `FiveTuple` objects are made once and reused.

export const ABI_VERSION: i32 = 1;

// ---- The host's imports (module "warpcore") ----
@external("warpcore", "packet_read")
export declare function packet_read(slot: i32, offset: i32, dst: usize, len: i32): i32;
@external("warpcore", "packet_write")
export declare function packet_write(slot: i32, offset: i32, src: usize, len: i32): i32;
@external("warpcore", "map_lookup")
export declare function map_lookup(key: usize, key_len: i32, value: usize, value_cap: i32): i32;
@external("warpcore", "map_update")
export declare function map_update(key: usize, key_len: i32, value: usize, value_len: i32): i32;
@external("warpcore", "map_delete")
export declare function map_delete(key: usize, key_len: i32): i32;
@external("warpcore", "clock_ns")
export declare function clock_ns(): i64;
@external("warpcore", "log")
export declare function log(level: i32, msg: usize, len: i32): void;
@external("warpcore", "counter")
export declare function counter(name: usize, name_len: i32): i32;
@external("warpcore", "counter_add")
export declare function counter_add(id: i32, delta: i64): void;

// ---- Constants ----
export const PASS: u8 = 0; // on to what follows the service
export const DROP: u8 = 1; // dropped, counted `dropped-by-module`
export const TX: u8 = 2; // back out of the interface it came in on
export const REDIRECT: u8 = 3; // to outputs[output]
export const ABSENT: u16 = 0xffff; // l3 / l4 when the header is not there
export const ERROR: i32 = 0;
export const WARN: i32 = 1;
export const INFO: i32 = 2;
export const DEBUG: i32 = 3;
export const ICMP: u8 = 1;
export const TCP: u8 = 6;
export const UDP: u8 = 17;

// Descriptor field offsets (16 bytes; wasm/ABI.md, "Descriptor").
export const D_WINDOW: usize = 0; // u32, host
export const D_LEN: usize = 4; // u16, host
export const D_PACKET_LEN: usize = 6; // u16, host
export const D_INTERFACE: usize = 8; // u8, host
export const D_VERDICT: usize = 9; // u8, module
export const D_DIRTY: usize = 10; // u8, module
export const D_OUTPUT: usize = 11; // u8, module
export const D_L3: usize = 12; // u16, host
export const D_L4: usize = 14; // u16, host

// ---- A packet of the batch ----
export class Slot {
  index: i32 = 0;
  descriptor: usize = 0;
  /** The window's address: `len` bytes of the packet. */
  window: usize = 0;
  len: i32 = 0;

  packetLen(): i32 { return load<u16>(this.descriptor + D_PACKET_LEN); }
  interface(): u8 { return load<u8>(this.descriptor + D_INTERFACE); }
  /** The window byte at `offset` (callers check it is below `len`). */
  byte(offset: i32): u8 { return load<u8>(this.window + offset); }
  be16(offset: i32): u16 { return bswap<u16>(load<u16>(this.window + offset)); }
  be32(offset: i32): u32 { return bswap<u32>(load<u32>(this.window + offset)); }
  /** Writes a window byte and marks the slot dirty. */
  setByte(offset: i32, value: u8): void { this.markDirty(); store<u8>(this.window + offset, value); }
  /** Writes a big-endian u16 into the window and marks the slot dirty. */
  setBe16(offset: i32, value: u16): void { this.markDirty(); store<u16>(this.window + offset, bswap<u16>(value)); }
  markDirty(): void { store<u8>(this.descriptor + D_DIRTY, 1); }
  setVerdict(verdict: u8, output: u8 = 0): void {
    store<u8>(this.descriptor + D_VERDICT, verdict);
    store<u8>(this.descriptor + D_OUTPUT, output);
  }
  /** The IPv4 header's offset (its fixed 20 bytes in the window), or -1. */
  l3(): i32 {
    const l3 = load<u16>(this.descriptor + D_L3);
    return l3 != ABSENT && <i32>l3 + 20 <= this.len ? <i32>l3 : -1;
  }
  /** The transport header's offset in the window, or -1. */
  l4(): i32 {
    const l4 = load<u16>(this.descriptor + D_L4);
    return l4 != ABSENT && <i32>l4 < this.len ? <i32>l4 : -1;
  }
  /** Copies packet bytes from `offset` (beyond the window too) to `dst`. */
  read(offset: i32, dst: usize, len: i32): i32 { return packet_read(this.index, offset, dst, len); }
  write(offset: i32, src: usize, len: i32): i32 { return packet_write(this.index, offset, src, len); }
}

/** A flow: addresses as numbers (10.0.0.1 is 0x0a000001); ports 0 unless TCP/UDP in the window. */
export class FiveTuple {
  source: u32 = 0;
  destination: u32 = 0;
  sourcePort: u16 = 0;
  destinationPort: u16 = 0;
  protocol: u8 = 0;

  /** Fills this from the slot; false if the packet is not IPv4. */
  of(slot: Slot): bool {
    const l3 = slot.l3();
    if (l3 < 0) return false;
    const l4 = slot.l4();
    this.protocol = slot.byte(l3 + 9);
    this.source = slot.be32(l3 + 12);
    this.destination = slot.be32(l3 + 16);
    this.sourcePort = 0;
    this.destinationPort = 0;
    if (l4 >= 0 && (this.protocol == TCP || this.protocol == UDP) && l4 + 4 <= slot.len) {
      this.sourcePort = slot.be16(l4);
      this.destinationPort = slot.be16(l4 + 2);
    }
    return true;
  }

  /** The 13-byte map key at `key`: source, destination, ports (big-endian), protocol. */
  key(key: usize): void {
    store<u32>(key, bswap<u32>(this.source));
    store<u32>(key + 4, bswap<u32>(this.destination));
    store<u16>(key + 8, bswap<u16>(this.sourcePort));
    store<u16>(key + 10, bswap<u16>(this.destinationPort));
    store<u8>(key + 12, this.protocol);
  }
}

// ---- RFC 1624 incremental checksum update (eqn. 3: HC' = ~(~HC + ~m + m')) ----
export function checksumUpdate16(checksum: u16, old: u16, updated: u16): u16 {
  let sum: u32 = <u32>(~checksum & 0xffff) + <u32>(~old & 0xffff) + <u32>updated;
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return <u16>(~sum & 0xffff);
}

/** For UDP: 0 (no checksum) stays 0, and a computed 0 is sent as 0xffff (RFC 768). */
export function checksumUpdate16Udp(checksum: u16, old: u16, updated: u16): u16 {
  if (checksum == 0) return 0;
  const result = checksumUpdate16(checksum, old, updated);
  return result == 0 ? 0xffff : result;
}

// ---- Reading the config text: rules split by ';' or newlines, words by spaces ----
export const RULES = ";\n";
export const WORDS = " \t\r";

/** Bytes of memory: the config, a rule, a word. */
export class Span {
  constructor(public start: usize = 0, public len: i32 = 0) {}

  /** Takes the next non-empty piece between `separators` into `piece`; false at the end. */
  take(piece: Span, separators: string): bool {
    while (this.len > 0 && isSeparator(load<u8>(this.start), separators)) { this.start++; this.len--; }
    if (this.len == 0) return false;
    piece.start = this.start;
    piece.len = 0;
    while (this.len > 0 && !isSeparator(load<u8>(this.start), separators)) { this.start++; this.len--; piece.len++; }
    return true;
  }

  equals(text: string): bool {
    if (this.len != text.length) return false;
    for (let i = 0; i < this.len; i++) if (<i32>load<u8>(this.start + i) != text.charCodeAt(i)) return false;
    return true;
  }

  /** A decimal number no larger than `max`, or -1. */
  number(max: u32): i64 {
    if (this.len == 0 || this.len > 10) return -1;
    let value: u64 = 0;
    for (let i = 0; i < this.len; i++) {
      const digit = load<u8>(this.start + i);
      if (digit < 0x30 || digit > 0x39) return -1;
      value = value * 10 + <u64>(digit - 0x30);
    }
    return value > <u64>max ? -1 : <i64>value;
  }

  /** A port or `any` (-1); -2 if it is neither. */
  port(): i32 {
    if (this.equals("any")) return -1;
    const value = this.number(65535);
    return value < 0 ? -2 : <i32>value;
  }

  /** tcp, udp, icmp, a number or `any` (-1); -2 if it is none. */
  protocol(): i32 {
    if (this.equals("any")) return -1;
    if (this.equals("tcp")) return TCP;
    if (this.equals("udp")) return UDP;
    if (this.equals("icmp")) return ICMP;
    const value = this.number(255);
    return value < 0 ? -2 : <i32>value;
  }
}

function isSeparator(byte: u8, separators: string): bool {
  for (let i = 0; i < separators.length; i++) if (<i32>byte == separators.charCodeAt(i)) return true;
  return false;
}

/** An address prefix: `a.b.c.d`, `a.b.c.d/len` or `any` (mask 0). */
export class Prefix {
  address: u32 = 0;
  mask: u32 = 0;

  /** Reads `word` into this; false if it is no prefix. */
  parse(word: Span): bool {
    this.address = 0;
    this.mask = 0;
    if (word.equals("any")) return true;
    let length: i64 = 32;
    let end = word.len;
    for (let i = 0; i < word.len; i++) {
      if (load<u8>(word.start + i) == 0x2f) {
        length = new Span(word.start + i + 1, word.len - i - 1).number(32);
        if (length < 0) return false;
        end = i;
        break;
      }
    }
    let value: u32 = 0;
    let octets = 0;
    let start = 0;
    for (let i = 0; i <= end; i++) {
      if (i == end || load<u8>(word.start + i) == 0x2e) {
        const octet = new Span(word.start + start, i - start).number(255);
        if (octet < 0) return false;
        value = (value << 8) | <u32>octet;
        octets++;
        start = i + 1;
      }
    }
    if (octets != 4) return false;
    this.mask = length == 0 ? 0 : <u32>0xffffffff << <u32>(32 - length);
    this.address = value & this.mask;
    return true;
  }
}

// ---- Counters and log (they allocate: call them in init, not per packet) ----
/** Registers counter `name` (during init only); its id, or -1. */
export function counterNamed(name: string): i32 {
  const bytes = String.UTF8.encode(name);
  return counter(changetype<usize>(bytes), bytes.byteLength);
}

/** Writes `text` into the appliance's log. */
export function logText(level: i32, text: string): void {
  const bytes = String.UTF8.encode(text);
  log(level, changetype<usize>(bytes), bytes.byteLength);
}

// ---- The exports, around the module's init and process ----
let serviceInit: (config: Span) => i32 = (config: Span): i32 => -1;
let serviceProcess: (slot: Slot) => void = (slot: Slot): void => {};
let bufferBase: usize = 0;
const theSlot = new Slot();

/** Names the module's init and process functions; call once, at top level. */
export function service(init: (config: Span) => i32, process: (slot: Slot) => void): void {
  serviceInit = init;
  serviceProcess = process;
}

export function warpcore_abi_version(): i32 {
  return ABI_VERSION;
}

/** The buffer from the stub runtime's bump allocator: never moved, never freed. */
export function warpcore_buffer(size: i32): i32 {
  if (size < 0) return 0;
  bufferBase = heap.alloc(<usize>max(size, 16));
  return <i32>bufferBase;
}

export function warpcore_init(config_len: i32): i32 {
  if (config_len < 0 || (bufferBase == 0 && config_len > 0)) return -1;
  const code = serviceInit(new Span(bufferBase, config_len));
  return code;
}

export function warpcore_process_batch(n: i32): void {
  const slot = theSlot;
  for (let i = 0; i < n; i++) {
    const descriptor = bufferBase + 16 * <usize>i;
    slot.index = i;
    slot.descriptor = descriptor;
    slot.window = <usize>load<u32>(descriptor + D_WINDOW);
    slot.len = <i32>load<u16>(descriptor + D_LEN);
    serviceProcess(slot);
  }
}
