/* A per-flow packet counter: each IPv4 flow's packets counted in the
 * module's map (key: the 13-byte 5-tuple, value: the count as a
 * little-endian u64); with `limit N`, a flow's packets after its Nth are dropped. */
#include "warpcore.h"

static uint64_t limit;
static int has_limit;
static int32_t flows, over_limit, map_full;

int32_t service_init(const uint8_t *config, uint32_t config_len) {
    warpcore_span text = {config, config_len}, rule, word, number;
    while (warpcore_take(&text, &rule, WARPCORE_RULES)) {
        uint32_t value;
        if (!warpcore_take(&rule, &word, WARPCORE_WORDS)) continue; /* a blank rule */
        if (!warpcore_equals(word, "limit") || !warpcore_take(&rule, &number, WARPCORE_WORDS) ||
            !warpcore_number(number, 0xffffffffu, &value) || warpcore_take(&rule, &word, WARPCORE_WORDS)) {
            warpcore_log_text(WARPCORE_ERROR, "flow-counter: the config is empty or `limit N`");
            return 1;
        }
        limit = value;
        has_limit = 1;
    }
    flows = warpcore_counter_named("flows");
    over_limit = warpcore_counter_named("over-limit");
    map_full = warpcore_counter_named("map-full");
    return flows < 0 || over_limit < 0 || map_full < 0 ? 3 : 0;
}

void service_process(warpcore_slot *slot) {
    warpcore_five_tuple flow;
    uint8_t key[13], value[8];
    uint64_t count = 0;
    if (!warpcore_five_tuple_of(slot, &flow)) return;
    warpcore_five_tuple_key(&flow, key);
    int known = warpcore_map_lookup(key, sizeof key, value, sizeof value) == sizeof value;
    if (known) __builtin_memcpy(&count, value, sizeof count); /* Wasm is little-endian */
    count++;
    __builtin_memcpy(value, &count, sizeof count);
    if (warpcore_map_update(key, sizeof key, value, sizeof value) != 0)
        warpcore_counter_add(map_full, 1);
    else if (!known)
        warpcore_counter_add(flows, 1);
    if (has_limit && count > limit) {
        warpcore_counter_add(over_limit, 1);
        warpcore_set_verdict(slot, WARPCORE_DROP, 0);
    }
}
