/*
 * warpcore.h: writes a warpcore Wasm nanoservice (wasm/ABI.md, version 1) in C.
 *
 * Build (Debian clang + lld, no libc):
 *   clang --target=wasm32 -nostdlib -ffreestanding -mbulk-memory -Os \
 *         -I wasm/abi -Wl,--no-entry -o acl.wasm acl.c
 *
 * A module defines two functions and includes this header once:
 *   int32_t service_init(const uint8_t *config, uint32_t config_len);   0 accepts
 *   void service_process(warpcore_slot *slot);                          per packet
 * and the header exports the ABI's functions around them (define
 * WARPCORE_NO_EXPORTS to write them yourself). No allocator: keep state in
 * static arrays.
 */
#ifndef WARPCORE_H
#define WARPCORE_H

#include <stddef.h>
#include <stdint.h>

#define WARPCORE_ABI_VERSION 1

/* The 16-byte slot descriptor (wasm/ABI.md, "Descriptor"). */
typedef struct {
    uint32_t window;     /*  0: address of this slot's window (host) */
    uint16_t len;        /*  4: bytes of the packet in the window (host) */
    uint16_t packet_len; /*  6: the packet's whole length (host) */
    uint8_t interface;   /*  8: arrival interface index (host) */
    uint8_t verdict;     /*  9: WARPCORE_PASS ... (module) */
    uint8_t dirty;       /* 10: 1 when the module changed window bytes (module) */
    uint8_t output;      /* 11: with WARPCORE_REDIRECT, index into `outputs` (module) */
    uint16_t l3;         /* 12: IPv4 header offset in the window, or WARPCORE_ABSENT */
    uint16_t l4;         /* 14: TCP/UDP/ICMP header offset, or WARPCORE_ABSENT */
} warpcore_descriptor;
_Static_assert(sizeof(warpcore_descriptor) == 16, "the descriptor is 16 bytes");

#define WARPCORE_ABSENT 0xffff

enum warpcore_verdict {
    WARPCORE_PASS = 0,     /* on to what follows the service */
    WARPCORE_DROP = 1,     /* dropped, counted `dropped-by-module` */
    WARPCORE_TX = 2,       /* back out of the interface it came in on */
    WARPCORE_REDIRECT = 3, /* to outputs[descriptor->output] */
};

enum warpcore_log_level { WARPCORE_ERROR = 0, WARPCORE_WARN = 1, WARPCORE_INFO = 2, WARPCORE_DEBUG = 3 };

enum { WARPCORE_ICMP = 1, WARPCORE_TCP = 6, WARPCORE_UDP = 17 };

/* ---- The host's imports (module "warpcore") ---- */
#define WARPCORE_IMPORT(name) __attribute__((import_module("warpcore"), import_name(#name)))
int32_t warpcore_packet_read(int32_t slot, int32_t offset, void *dst, int32_t len) WARPCORE_IMPORT(packet_read);
int32_t warpcore_packet_write(int32_t slot, int32_t offset, const void *src, int32_t len) WARPCORE_IMPORT(packet_write);
int32_t warpcore_map_lookup(const void *key, int32_t key_len, void *value, int32_t value_cap) WARPCORE_IMPORT(map_lookup);
int32_t warpcore_map_update(const void *key, int32_t key_len, const void *value, int32_t value_len) WARPCORE_IMPORT(map_update);
int32_t warpcore_map_delete(const void *key, int32_t key_len) WARPCORE_IMPORT(map_delete);
int64_t warpcore_clock_ns(void) WARPCORE_IMPORT(clock_ns);
void warpcore_log(int32_t level, const char *msg, int32_t len) WARPCORE_IMPORT(log);
int32_t warpcore_counter(const char *name, int32_t name_len) WARPCORE_IMPORT(counter);
void warpcore_counter_add(int32_t id, int64_t delta) WARPCORE_IMPORT(counter_add);

/* ---- A packet of the batch ---- */
typedef struct {
    uint32_t index;                  /* the slot number, for packet_read/packet_write */
    warpcore_descriptor *descriptor; /* its descriptor */
    uint8_t *bytes;                  /* its window: descriptor->len bytes */
} warpcore_slot;

/* A flow: addresses as numbers (10.0.0.1 is 0x0a000001); ports 0 unless TCP/UDP in the window. */
typedef struct {
    uint32_t source, destination;
    uint16_t source_port, destination_port;
    uint8_t protocol;
} warpcore_five_tuple;

static inline uint16_t warpcore_be16(const uint8_t *bytes) { return (uint16_t)(bytes[0] << 8 | bytes[1]); }
static inline uint32_t warpcore_be32(const uint8_t *bytes) {
    return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | bytes[3];
}
static inline void warpcore_set_be16(uint8_t *bytes, uint16_t value) {
    bytes[0] = (uint8_t)(value >> 8);
    bytes[1] = (uint8_t)value;
}

/* The IPv4 header's offset in the window (its fixed 20 bytes inside), or -1. */
static inline int32_t warpcore_l3(const warpcore_slot *slot) {
    uint32_t l3 = slot->descriptor->l3;
    return l3 != WARPCORE_ABSENT && l3 + 20 <= slot->descriptor->len ? (int32_t)l3 : -1;
}

/* The transport header's offset in the window, or -1. */
static inline int32_t warpcore_l4(const warpcore_slot *slot) {
    uint32_t l4 = slot->descriptor->l4;
    return l4 != WARPCORE_ABSENT && l4 < slot->descriptor->len ? (int32_t)l4 : -1;
}

/* Fills `tuple`; 0 if the packet is not IPv4. */
static inline int warpcore_five_tuple_of(const warpcore_slot *slot, warpcore_five_tuple *tuple) {
    int32_t l3 = warpcore_l3(slot), l4 = warpcore_l4(slot);
    if (l3 < 0) return 0;
    const uint8_t *ip = slot->bytes + l3;
    tuple->protocol = ip[9];
    tuple->source = warpcore_be32(ip + 12);
    tuple->destination = warpcore_be32(ip + 16);
    tuple->source_port = tuple->destination_port = 0;
    if (l4 >= 0 && (tuple->protocol == WARPCORE_TCP || tuple->protocol == WARPCORE_UDP) &&
        (uint32_t)l4 + 4 <= slot->descriptor->len) {
        tuple->source_port = warpcore_be16(slot->bytes + l4);
        tuple->destination_port = warpcore_be16(slot->bytes + l4 + 2);
    }
    return 1;
}

/* The 13-byte map key: source, destination, ports (big-endian, as on the wire), protocol. */
static inline void warpcore_five_tuple_key(const warpcore_five_tuple *tuple, uint8_t key[13]) {
    uint32_t source = __builtin_bswap32(tuple->source), destination = __builtin_bswap32(tuple->destination);
    __builtin_memcpy(key, &source, 4); /* Wasm is little-endian: swapped, the bytes are big-endian */
    __builtin_memcpy(key + 4, &destination, 4);
    warpcore_set_be16(key + 8, tuple->source_port);
    warpcore_set_be16(key + 10, tuple->destination_port);
    key[12] = tuple->protocol;
}

/* The window to change: marks the slot dirty so the host copies it back. */
static inline uint8_t *warpcore_bytes_mut(warpcore_slot *slot) {
    slot->descriptor->dirty = 1;
    return slot->bytes;
}

static inline void warpcore_set_verdict(warpcore_slot *slot, enum warpcore_verdict verdict, uint8_t output) {
    slot->descriptor->verdict = (uint8_t)verdict;
    slot->descriptor->output = output;
}

/* ---- RFC 1624 incremental checksum update (eqn. 3: HC' = ~(~HC + ~m + m')) ---- */
static inline uint16_t warpcore_checksum_update16(uint16_t checksum, uint16_t old, uint16_t new_) {
    uint32_t sum = (uint32_t)(uint16_t)~checksum + (uint16_t)~old + new_;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

/* For UDP: 0 (no checksum) stays 0, and a computed 0 is sent as 0xffff (RFC 768). */
static inline uint16_t warpcore_checksum_update16_udp(uint16_t checksum, uint16_t old, uint16_t new_) {
    if (checksum == 0) return 0;
    uint16_t updated = warpcore_checksum_update16(checksum, old, new_);
    return updated == 0 ? 0xffff : updated;
}

/* ---- Reading the config text: rules split by ';' or newlines, words by spaces ---- */
typedef struct {
    const uint8_t *bytes;
    uint32_t len;
} warpcore_span;

static inline int warpcore_is_separator(uint8_t byte, const char *separators) {
    for (; *separators; separators++)
        if (byte == (uint8_t)*separators) return 1;
    return 0;
}

/* Takes the next non-empty piece of `rest` between `separators` into `piece`; 0 at the end. */
static inline int warpcore_take(warpcore_span *rest, warpcore_span *piece, const char *separators) {
    while (rest->len && warpcore_is_separator(*rest->bytes, separators)) rest->bytes++, rest->len--;
    if (!rest->len) return 0;
    piece->bytes = rest->bytes;
    piece->len = 0;
    while (rest->len && !warpcore_is_separator(*rest->bytes, separators))
        rest->bytes++, rest->len--, piece->len++;
    return 1;
}
#define WARPCORE_RULES ";\n"
#define WARPCORE_WORDS " \t\r"

static inline int warpcore_equals(warpcore_span word, const char *text) {
    uint32_t i = 0;
    for (; i < word.len && text[i]; i++)
        if (word.bytes[i] != (uint8_t)text[i]) return 0;
    return i == word.len && !text[i];
}

/* A decimal number no larger than `max` into `value`; 0 if it is not one. */
static inline int warpcore_number(warpcore_span word, uint32_t max, uint32_t *value) {
    uint64_t number = 0;
    if (word.len == 0 || word.len > 10) return 0;
    for (uint32_t i = 0; i < word.len; i++) {
        if (word.bytes[i] < '0' || word.bytes[i] > '9') return 0;
        number = number * 10 + (word.bytes[i] - '0');
    }
    if (number > max) return 0;
    *value = (uint32_t)number;
    return 1;
}

/* A port, or -1 for `any`; 0 if it is neither. */
static inline int warpcore_port(warpcore_span word, int32_t *port) {
    uint32_t value;
    if (warpcore_equals(word, "any")) return *port = -1, 1;
    if (!warpcore_number(word, 65535, &value)) return 0;
    return *port = (int32_t)value, 1;
}

/* tcp, udp, icmp or a number, or -1 for `any`; 0 if it is none. */
static inline int warpcore_protocol(warpcore_span word, int32_t *protocol) {
    uint32_t value;
    if (warpcore_equals(word, "any")) return *protocol = -1, 1;
    if (warpcore_equals(word, "tcp")) return *protocol = WARPCORE_TCP, 1;
    if (warpcore_equals(word, "udp")) return *protocol = WARPCORE_UDP, 1;
    if (warpcore_equals(word, "icmp")) return *protocol = WARPCORE_ICMP, 1;
    if (!warpcore_number(word, 255, &value)) return 0;
    return *protocol = (int32_t)value, 1;
}

/* `a.b.c.d`, `a.b.c.d/len` or `any` (mask 0) into address and mask; 0 if it is none. */
static inline int warpcore_prefix(warpcore_span word, uint32_t *address, uint32_t *mask) {
    uint32_t length = 32, value = 0, octet, octets = 0, end = word.len;
    if (warpcore_equals(word, "any")) return *address = *mask = 0, 1;
    for (uint32_t i = 0; i < word.len; i++)
        if (word.bytes[i] == '/') {
            warpcore_span bits = {word.bytes + i + 1, word.len - i - 1};
            if (!warpcore_number(bits, 32, &length)) return 0;
            end = i;
            break;
        }
    for (uint32_t start = 0, i = 0; i <= end; i++)
        if (i == end || word.bytes[i] == '.') {
            warpcore_span piece = {word.bytes + start, i - start};
            if (!warpcore_number(piece, 255, &octet)) return 0;
            value = value << 8 | octet;
            octets++;
            start = i + 1;
        }
    if (octets != 4) return 0;
    *mask = length == 0 ? 0 : 0xffffffffu << (32 - length);
    *address = value & *mask;
    return 1;
}

/* ---- Counters and log ---- */
static inline uint32_t warpcore_strlen(const char *text) {
    uint32_t len = 0;
    while (text[len]) len++;
    return len;
}

/* Registers counter `name` (during init only); its id, or -1. */
static inline int32_t warpcore_counter_named(const char *name) {
    return warpcore_counter(name, (int32_t)warpcore_strlen(name));
}

/* Registers counter `<prefix><number>` (`rule-3`); its id, or -1. */
static inline int32_t warpcore_counter_numbered(const char *prefix, uint32_t number) {
    char name[32];
    uint32_t len = warpcore_strlen(prefix), digits = 1;
    for (uint32_t rest = number; rest >= 10; rest /= 10) digits++;
    if (len + digits > sizeof name) return -1;
    for (uint32_t i = 0; i < len; i++) name[i] = prefix[i];
    for (uint32_t i = 0; i < digits; i++, number /= 10) name[len + digits - 1 - i] = (char)('0' + number % 10);
    return warpcore_counter(name, (int32_t)(len + digits));
}

static inline void warpcore_log_text(enum warpcore_log_level level, const char *text) {
    warpcore_log(level, text, (int32_t)warpcore_strlen(text));
}

/* ---- The exports, around service_init and service_process ---- */
#ifndef WARPCORE_NO_EXPORTS
int32_t service_init(const uint8_t *config, uint32_t config_len);
void service_process(warpcore_slot *slot);

static uint8_t *warpcore_buffer_base;

__attribute__((export_name("warpcore_abi_version"))) int32_t warpcore_abi_version(void) {
    return WARPCORE_ABI_VERSION;
}

/* Fresh pages at the end of memory: never moved, used by nothing else. */
__attribute__((export_name("warpcore_buffer"))) int32_t warpcore_buffer(int32_t size) {
    if (size < 0) return 0;
    size_t previous = __builtin_wasm_memory_grow(0, ((uint32_t)size + 65535) / 65536 + (size == 0));
    if (previous == (size_t)-1) return 0;
    warpcore_buffer_base = (uint8_t *)(previous * 65536);
    return (int32_t)(previous * 65536);
}

__attribute__((export_name("warpcore_init"))) int32_t warpcore_init(int32_t config_len) {
    if (config_len < 0 || (!warpcore_buffer_base && config_len > 0)) return -1;
    int32_t code = service_init(warpcore_buffer_base, (uint32_t)config_len);
    return code;
}

__attribute__((export_name("warpcore_process_batch"))) void warpcore_process_batch(int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        warpcore_descriptor *descriptor = (warpcore_descriptor *)(warpcore_buffer_base + 16 * i);
        warpcore_slot slot = {(uint32_t)i, descriptor, (uint8_t *)(uintptr_t)descriptor->window};
        service_process(&slot);
    }
}
#endif

#endif
