/* A header rewriter: `dscp D` marks every IPv4 packet's DSCP (ECN kept;
 * the host redoes the IPv4 checksum), `port FROM TO` remaps a TCP/UDP
 * destination port with the transport checksum updated incrementally. */
#include "warpcore.h"

#define MAX_REMAPS 8

static int32_t dscp = -1; /* -1: no marking */
static uint16_t remap_from[MAX_REMAPS], remap_to[MAX_REMAPS];
static uint32_t remap_count;
static int32_t marked, remapped;

int32_t service_init(const uint8_t *config, uint32_t config_len) {
    warpcore_span text = {config, config_len}, rule, word, first, second;
    while (warpcore_take(&text, &rule, WARPCORE_RULES)) {
        uint32_t from, to, value;
        if (!warpcore_take(&rule, &word, WARPCORE_WORDS)) continue; /* a blank rule */
        int have_first = warpcore_take(&rule, &first, WARPCORE_WORDS);
        int have_second = warpcore_take(&rule, &second, WARPCORE_WORDS);
        if (warpcore_take(&rule, &word, WARPCORE_WORDS)) return 1; /* a fourth word */
        if (warpcore_equals(word, "dscp") && have_first && !have_second && warpcore_number(first, 63, &value)) {
            dscp = (int32_t)value;
        } else if (warpcore_equals(word, "port") && have_second && remap_count < MAX_REMAPS &&
                   warpcore_number(first, 65535, &from) && warpcore_number(second, 65535, &to)) {
            remap_from[remap_count] = (uint16_t)from;
            remap_to[remap_count++] = (uint16_t)to;
        } else {
            warpcore_log_text(WARPCORE_ERROR, "rewriter: rules are `dscp D` and at most 8 `port FROM TO`");
            return 1;
        }
    }
    marked = warpcore_counter_named("dscp-marked");
    remapped = warpcore_counter_named("port-remapped");
    return marked < 0 || remapped < 0 ? 3 : 0;
}

void service_process(warpcore_slot *slot) {
    warpcore_five_tuple flow;
    if (!warpcore_five_tuple_of(slot, &flow)) return;
    int32_t l3 = warpcore_l3(slot), l4 = warpcore_l4(slot);
    uint8_t tos = slot->bytes[l3 + 1];
    if (dscp >= 0 && tos >> 2 != dscp) {
        warpcore_bytes_mut(slot)[l3 + 1] = (uint8_t)(dscp << 2 | (tos & 3));
        warpcore_counter_add(marked, 1);
    }
    if (l4 < 0 || (flow.protocol != WARPCORE_UDP && flow.protocol != WARPCORE_TCP)) return;
    uint32_t checksum_at = (uint32_t)l4 + (flow.protocol == WARPCORE_UDP ? 6 : 16);
    if (checksum_at + 2 > slot->descriptor->len) return;
    for (uint32_t i = 0; i < remap_count; i++)
        if (remap_from[i] == flow.destination_port && remap_from[i] != remap_to[i]) {
            uint8_t *bytes = warpcore_bytes_mut(slot);
            uint16_t old = warpcore_be16(bytes + checksum_at), from = remap_from[i], to = remap_to[i];
            warpcore_set_be16(bytes + l4 + 2, to);
            warpcore_set_be16(bytes + checksum_at, flow.protocol == WARPCORE_UDP
                                                       ? warpcore_checksum_update16_udp(old, from, to)
                                                       : warpcore_checksum_update16(old, from, to));
            warpcore_counter_add(remapped, 1);
            return;
        }
}
