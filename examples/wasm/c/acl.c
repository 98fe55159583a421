/* A 5-tuple ACL firewall: the first rule matching a packet decides (no
 * match: pass), and counter `rule-<n>` counts the packets rule n matched. */
#include "warpcore.h"

#define MAX_RULES 16

static struct rule {
    int drop;
    int32_t protocol, source_port, destination_port; /* -1: any */
    uint32_t source, source_mask, destination, destination_mask;
    int32_t counter;
} rules[MAX_RULES];
static uint32_t rule_count;

/* `drop|pass PROTO SRC SPORT DST DPORT`. */
static int parse(warpcore_span text, struct rule *rule) {
    warpcore_span word;
    if (!warpcore_take(&text, &word, WARPCORE_WORDS)) return 0;
    if (!(rule->drop = warpcore_equals(word, "drop")) && !warpcore_equals(word, "pass")) return 0;
    return warpcore_take(&text, &word, WARPCORE_WORDS) && warpcore_protocol(word, &rule->protocol) &&
           warpcore_take(&text, &word, WARPCORE_WORDS) && warpcore_prefix(word, &rule->source, &rule->source_mask) &&
           warpcore_take(&text, &word, WARPCORE_WORDS) && warpcore_port(word, &rule->source_port) &&
           warpcore_take(&text, &word, WARPCORE_WORDS) &&
           warpcore_prefix(word, &rule->destination, &rule->destination_mask) &&
           warpcore_take(&text, &word, WARPCORE_WORDS) && warpcore_port(word, &rule->destination_port) &&
           !warpcore_take(&text, &word, WARPCORE_WORDS);
}

static int matches(const struct rule *rule, const warpcore_five_tuple *flow) {
    return (rule->protocol < 0 || rule->protocol == flow->protocol) &&
           (flow->source & rule->source_mask) == rule->source &&
           (flow->destination & rule->destination_mask) == rule->destination &&
           (rule->source_port < 0 || rule->source_port == flow->source_port) &&
           (rule->destination_port < 0 || rule->destination_port == flow->destination_port);
}

int32_t service_init(const uint8_t *config, uint32_t config_len) {
    warpcore_span text = {config, config_len}, line, word;
    while (warpcore_take(&text, &line, WARPCORE_RULES)) {
        warpcore_span probe = line;
        if (!warpcore_take(&probe, &word, WARPCORE_WORDS)) continue; /* a blank rule */
        if (rule_count == MAX_RULES) return 2;
        struct rule *rule = &rules[rule_count];
        if ((rule->counter = warpcore_counter_numbered("rule-", rule_count)) < 0) return 3;
        if (!parse(line, rule)) {
            warpcore_log_text(WARPCORE_ERROR, "acl: a rule is not `drop|pass PROTO SRC SPORT DST DPORT`");
            return 1;
        }
        rule_count++;
    }
    return 0;
}

void service_process(warpcore_slot *slot) {
    warpcore_five_tuple flow;
    if (!warpcore_five_tuple_of(slot, &flow)) return;
    for (uint32_t i = 0; i < rule_count; i++)
        if (matches(&rules[i], &flow)) {
            warpcore_counter_add(rules[i].counter, 1);
            if (rules[i].drop) warpcore_set_verdict(slot, WARPCORE_DROP, 0);
            return;
        }
}
