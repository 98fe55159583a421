//! `/api/v1/status`: the instance's generation, conditions, uptime and
//! each core's load and services, as JSON.

use crate::json::push_string;
use crate::metrics::node_names;
use crate::supervision;
use alloc::string::String;
use control::reconcile::Controller;
use core::fmt::Write;
use dataplane::CountersBoard;
use dataplane::stats::CoreCounters;

/// The spec generation of an instance without a controller.
pub const GENERATION: u64 = 1;

/// `1 - idle/polls` in ten-thousandths (0 before the first poll).
pub fn busy_share_ten_thousandths(polls: u64, idle_polls: u64) -> u64 {
    if polls == 0 {
        return 0;
    }
    let busy = u128::from(polls - idle_polls.min(polls));
    (busy * 10_000 / u128::from(polls)) as u64
}

/// Renders the status document into `out`: the controller's generations
/// and conditions (without one: generation 1, ready), `Degraded` true
/// when the last change was rolled back or a service is down
/// (supervision).
pub fn render(
    out: &mut String,
    board: &CountersBoard,
    controller: Option<&Controller>,
    uptime_seconds: u64,
) {
    let Some(controller) = controller else {
        let _ = write!(
            out,
            "{{\"generation\":{GENERATION},\"observedGeneration\":{GENERATION},\"conditions\":[{{\"type\":\"Ready\",\"status\":\"True\",\"reason\":\"Running\",\"message\":"
        );
        push_string(out, "the running spec is applied on every core");
        out.push('}');
        supervision::push_degraded_condition(out, board);
        let _ = write!(out, "],\"uptimeSeconds\":{uptime_seconds},\"cores\":[");
        render_cores(out, board);
        return;
    };
    let _ = write!(
        out,
        "{{\"generation\":{},\"observedGeneration\":{},\"conditions\":[",
        controller.generation(),
        controller.observed_generation()
    );
    let [ready, reconciling, mut degraded] = controller.conditions();
    // One `Degraded`: a rolled-back change, a service down, or both.
    if let Some((reason, message)) = supervision::degraded(board) {
        if degraded.status {
            degraded.message.push_str("; ");
            degraded.message.push_str(&message);
        } else {
            degraded.status = true;
            degraded.reason = reason;
            degraded.message = message;
        }
    }
    for (index, condition) in [ready, reconciling, degraded].iter().enumerate() {
        if index > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"type\":\"{}\",\"status\":\"{}\",\"reason\":\"{}\",\"observedGeneration\":{},\"message\":",
            condition.kind,
            if condition.status { "True" } else { "False" },
            condition.reason,
            condition.generation
        );
        push_string(out, &condition.message);
        out.push('}');
    }
    let _ = write!(out, "],\"uptimeSeconds\":{uptime_seconds},\"cores\":[");
    render_cores(out, board);
}

/// Each core's polls, busy share and services, and the end of the
/// document.
fn render_cores(out: &mut String, board: &CountersBoard) {
    for (position, (core, counters)) in board.cores().enumerate() {
        let counters: &CoreCounters = &counters;
        if position > 0 {
            out.push(',');
        }
        let polls = counters.polls.get();
        let idle_polls = counters.idle_polls.get();
        let share = busy_share_ten_thousandths(polls, idle_polls);
        let _ = write!(
            out,
            "{{\"core\":{core},\"polls\":{polls},\"idlePolls\":{idle_polls},\"busyShare\":{}.{:04},\"services\":[",
            share / 10_000,
            share % 10_000
        );
        for (index, name) in node_names(counters).enumerate() {
            if index > 0 {
                out.push(',');
            }
            push_string(out, name);
        }
        out.push_str("],");
        supervision::push_core_services(out, counters);
        out.push('}');
    }
    out.push_str("]}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_share() {
        assert_eq!(busy_share_ten_thousandths(0, 0), 0);
        assert_eq!(busy_share_ten_thousandths(4, 1), 7_500);
        assert_eq!(busy_share_ten_thousandths(3, 9), 0);
        assert_eq!(busy_share_ten_thousandths(u64::MAX, 0), 10_000);
    }
}
