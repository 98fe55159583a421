use super::*;
use crate::output;

#[test]
fn status_is_a_summary_and_two_tables() {
    let status: Value = serde_json::from_str(
        r#"{"generation":2,"observedGeneration":1,"conditions":[{"type":"Ready","status":"False","reason":"Reconciling","message":"core 1 runs generation 1"}],"uptimeSeconds":90061,"cores":[{"core":0,"polls":1000,"idlePolls":880,"busyShare":0.12,"services":["ipv4","tcp"]},{"core":1,"polls":123456,"idlePolls":7,"busyShare":0.99999,"services":[]}]}"#,
    )
    .unwrap();
    assert_eq!(
        output::status(&status),
        "generation 2, observed 1, up 1d 1h 1m 1s\n\
         \n\
         CONDITION  STATUS  REASON       MESSAGE\n\
         Ready      False   Reconciling  core 1 runs generation 1\n\
         \n\
         CORE   POLLS  IDLE POLLS    BUSY  SERVICES\n\
         \x20  0    1000         880   12.0%  ipv4, tcp\n\
         \x20  1  123456           7  100.0%\n"
    );
}

#[test]
fn a_sparse_status_still_prints() {
    let status: Value = serde_json::from_str(r#"{"generation":1}"#).unwrap();
    assert_eq!(
        output::status(&status),
        "generation 1, observed -\n\nno conditions reported\n\nno cores reported\n"
    );
}

#[test]
fn durations_leave_out_leading_zero_units() {
    assert_eq!(duration(0), "0s");
    assert_eq!(duration(59), "59s");
    assert_eq!(duration(3600), "1h 0m 0s");
    assert_eq!(duration(86_400 * 3 + 5), "3d 0h 0m 5s");
}

#[test]
fn plans_list_their_changes() {
    let dry: Value = serde_json::from_str(
        r#"{"dryRun":true,"valid":true,"generation":3,"changes":["add service http:80",{"op":"remove","port":7,"service":"udp-echo"}]}"#,
    )
    .unwrap();
    assert_eq!(
        output::plan(&dry),
        "dry run: the spec is valid (generation 3), 2 changes:\n  add service http:80\n  op=remove port=7 service=udp-echo\n"
    );
    let applied: Value =
        serde_json::from_str(r#"{"dryRun":false,"valid":true,"generation":4,"changes":[]}"#)
            .unwrap();
    assert_eq!(
        output::plan(&applied),
        "accepted: generation 4, no changes\n"
    );
}

#[test]
fn grep_keeps_matching_lines() {
    let scrape = "# HELP warpcore_a_total A.\nwarpcore_a_total 1\nwarpcore_b_total 2\n";
    assert_eq!(
        output::metrics(scrape, Some("_a_")),
        "# HELP warpcore_a_total A.\nwarpcore_a_total 1\n"
    );
    assert_eq!(output::metrics(scrape, None), scrape);
}

#[test]
fn log_lines_line_up_under_the_header() {
    let entry: Value = serde_json::from_str(
        r#"{"seq":123456,"timeMs":98765432,"level":"debug","target":"a-target-longer-than-twenty","message":"x\r\ny"}"#,
    )
    .unwrap();
    assert_eq!(
        output::log_header(),
        "   SEQ    TIME (s)  LEVEL  TARGET                MESSAGE\n"
    );
    assert_eq!(
        output::log_line(&entry),
        "123456   98765.432  debug  a-target-longer-than-twenty  x\\r\\ny\n"
    );
    let sparse: Value = serde_json::from_str(r#"{"message":""}"#).unwrap();
    assert_eq!(output::log_line(&sparse), "     -           -  -      -\n");
}
