//! Two shards wired with real rings: remote gets and sets round trip,
//! a pipeline mixing local and remote keys is answered in order, a full
//! ring delays requests without losing them.

use crate::kv::hash::shard_of;
use crate::kv::shard::link_shards;
use crate::kv::{KvApp, KvSession};
use crate::tcp::StreamHarness;
use crate::tcp::{ConnectionId, TcpApp};
use alloc::string::String;
use alloc::vec::Vec;
use core::net::{Ipv4Addr, SocketAddrV4};

/// Two cores' apps and one connection on core 0.
struct TwoCores {
    apps: Vec<KvApp>,
    session: KvSession,
    stream: StreamHarness,
}

impl TwoCores {
    fn new(ring_capacity: usize) -> Self {
        let mut apps: Vec<KvApp> = link_shards(2, ring_capacity)
            .into_iter()
            .map(|end| KvApp::new(1 << 20, 64 * 1024, Some(end)))
            .collect();
        let mut stream = StreamHarness::new(1 << 20);
        let peer = SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 40000);
        let session = apps[0].accept(peer, &mut stream.stream()).unwrap();
        Self {
            apps,
            session,
            stream,
        }
    }

    /// Delivers `input` to the connection on core 0 (all of it must be
    /// consumed).
    fn send(&mut self, input: &str) {
        let consumed = self.apps[0].data(
            &mut self.session,
            input.as_bytes(),
            &mut self.stream.stream(),
        );
        assert_eq!(consumed, input.len());
    }

    /// Runs both cores' polls (core 1 first, as if it ran meanwhile) and
    /// resumes the connection when core 0 says so, `rounds` times.
    fn run(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let mut ready: Vec<ConnectionId> = Vec::new();
            self.apps[1].poll(&mut ready);
            assert!(ready.is_empty(), "core 1 has no connections");
            self.apps[0].poll(&mut ready);
            for id in ready {
                assert_eq!(id, self.session.id);
                self.apps[0].resume(&mut self.session, &mut self.stream.stream());
            }
        }
    }

    fn sent(&mut self) -> String {
        String::from_utf8(self.stream.take_sent()).unwrap()
    }
}

/// A key owned by `shard` of two.
fn key_on(shard: usize, name: &str) -> String {
    (0..)
        .map(|number| alloc::format!("{name}{number}"))
        .find(|key| shard_of(key.as_bytes(), 2) == shard)
        .unwrap()
}

#[test]
fn a_remote_set_and_get_round_trip() {
    let mut cores = TwoCores::new(16);
    let remote = key_on(1, "r");
    cores.send(&alloc::format!("set {remote} 3 0 2\r\nhi\r\n"));
    assert_eq!(cores.sent(), "", "the answer comes from core 1");
    cores.run(1);
    assert_eq!(cores.sent(), "STORED\r\n");
    cores.send(&alloc::format!("get {remote}\r\n"));
    cores.run(1);
    assert_eq!(
        cores.sent(),
        alloc::format!("VALUE {remote} 3 2\r\nhi\r\nEND\r\n")
    );
    assert_eq!(cores.apps[1].items(), 1);
    assert_eq!(cores.apps[0].items(), 0);
    let (origin, owner) = (cores.apps[0].counters(), cores.apps[1].counters());
    assert_eq!(origin.remote_requests_sent, 2);
    assert_eq!(owner.remote_requests_served, 2);
    assert_eq!((owner.cmd_get, owner.get_hits, owner.cmd_set), (1, 1, 1));
}

#[test]
fn a_pipeline_of_local_and_remote_keys_is_answered_in_order() {
    let mut cores = TwoCores::new(16);
    let (local, remote) = (key_on(0, "l"), key_on(1, "r"));
    let input = alloc::format!(
        "set {local} 0 0 1\r\nL\r\nset {remote} 0 0 1\r\nR\r\nget {local}\r\n\
         get {remote} {local} {remote}\r\nincr {remote} 1\r\ndelete {local}\r\nversion\r\n"
    );
    cores.send(&input);
    // The local set is answered at once; the rest waits behind the
    // remote set.
    assert_eq!(cores.sent(), "STORED\r\n");
    cores.run(1);
    let expected = alloc::format!(
        "STORED\r\nVALUE {local} 0 1\r\nL\r\nEND\r\n\
         VALUE {remote} 0 1\r\nR\r\nVALUE {local} 0 1\r\nL\r\nVALUE {remote} 0 1\r\nR\r\nEND\r\n\
         CLIENT_ERROR cannot increment or decrement non-numeric value\r\nDELETED\r\nVERSION 1.6.0-warpcore\r\n"
    );
    assert_eq!(cores.sent(), expected);
}

#[test]
fn stats_and_flush_reach_every_shard() {
    let mut cores = TwoCores::new(16);
    let (local, remote) = (key_on(0, "l"), key_on(1, "r"));
    cores.send(&alloc::format!(
        "set {local} 0 0 1\r\nL\r\nset {remote} 0 0 1\r\nR\r\nstats\r\n"
    ));
    cores.run(1);
    let stats = cores.sent();
    for line in [
        "STAT curr_items 2\r\n",
        "STAT cmd_set 2\r\n",
        "STAT threads 2\r\n",
        "STAT limit_maxbytes 2097152\r\n",
    ] {
        assert!(stats.contains(line), "{line:?} not in {stats:?}");
    }
    cores.send(&alloc::format!("flush_all\r\nget {remote} {local}\r\n"));
    cores.run(1);
    assert!(cores.sent().ends_with("OK\r\nEND\r\n"));
    assert_eq!(cores.apps[1].items(), 0);
}

#[test]
fn a_full_ring_delays_requests_without_losing_them() {
    let mut cores = TwoCores::new(2);
    let remote = key_on(1, "r");
    cores.send(&alloc::format!("set {remote} 0 0 1\r\n0\r\n"));
    for _ in 0..6 {
        cores.send(&alloc::format!("incr {remote} 1\r\n"));
    }
    cores.run(8);
    assert_eq!(cores.sent(), "STORED\r\n1\r\n2\r\n3\r\n4\r\n5\r\n6\r\n");
    assert!(cores.apps[0].counters().ring_full_retries > 0);
}

#[test]
fn answers_for_a_closed_connection_are_dropped() {
    let mut cores = TwoCores::new(16);
    let remote = key_on(1, "r");
    cores.send(&alloc::format!("get {remote}\r\nget {remote}\r\n"));
    let session = core::mem::replace(
        &mut cores.session,
        KvSession::new(ConnectionId {
            slot: 9,
            generation: 1,
        }),
    );
    cores.apps[0].closed(session, crate::tcp::CloseReason::Reset);
    let mut ready = Vec::new();
    cores.apps[1].poll(&mut ready);
    cores.apps[0].poll(&mut ready);
    assert!(ready.is_empty());
    assert_eq!(cores.apps[0].counters().orphan_replies, 2);
}

#[test]
fn a_half_close_waits_for_remote_answers_before_closing() {
    // `printf 'set ...' | nc -q1`: the request and the client's FIN come
    // together, before core 1 has answered.
    let mut cores = TwoCores::new(16);
    let (local, remote) = (key_on(0, "l"), key_on(1, "r"));
    cores.send(&alloc::format!(
        "set {remote} 0 0 1\r\nR\r\nget {local} {remote}\r\n"
    ));
    cores.apps[0].read_closed(&mut cores.session, &mut cores.stream.stream());
    assert!(
        !cores.stream.requests.close,
        "closing now would orphan the remote answers"
    );
    cores.run(1);
    assert_eq!(
        cores.sent(),
        alloc::format!("STORED\r\nVALUE {remote} 0 1\r\nR\r\nEND\r\n")
    );
    assert!(cores.stream.requests.close, "closed once answered");
    assert_eq!(cores.apps[0].counters().orphan_replies, 0);
}

#[test]
fn a_half_close_with_nothing_waiting_closes_at_once() {
    let mut cores = TwoCores::new(16);
    let local = key_on(0, "l");
    cores.send(&alloc::format!("set {local} 0 0 1\r\nL\r\n"));
    cores.apps[0].read_closed(&mut cores.session, &mut cores.stream.stream());
    assert_eq!(cores.sent(), "STORED\r\n");
    assert!(cores.stream.requests.close);
}

#[test]
fn warm_remote_gets_allocate_no_message_buffers() {
    let mut cores = TwoCores::new(16);
    let remote = key_on(1, "r");
    cores.send(&alloc::format!("set {remote} 0 0 2\r\nhi\r\n"));
    cores.run(1);
    assert_eq!(cores.sent(), "STORED\r\n");
    let value = alloc::format!("VALUE {remote} 0 2\r\nhi\r\nEND\r\n");
    // One get at a time: core 0 writes the keys into the buffer of the
    // last answer it wrote out, core 1 the answer into the buffer of the
    // last keys it served. Only the set's key (core 0) and answer
    // (core 1) come from the heap; the set's key buffer stays with core 1
    // for its answers.
    for _ in 0..100 {
        cores.send(&alloc::format!("get {remote}\r\n"));
        cores.run(1);
        assert_eq!(cores.sent(), value);
    }
    let allocated =
        |cores: &TwoCores| [0, 1].map(|core| cores.apps[core].counters().message_buffers_allocated);
    assert_eq!(allocated(&cores), [1, 1]);
    // Eight in flight at once: core 0 holds one spare and takes seven
    // more; core 1 gets each run's keys back before the next answer.
    // Once they have come back, eight more take nothing new.
    for round in 0..2 {
        for _ in 0..8 {
            cores.send(&alloc::format!("get {remote}\r\n"));
        }
        cores.run(1);
        assert_eq!(cores.sent(), value.repeat(8), "round {round}");
        assert_eq!(allocated(&cores), [8, 1], "round {round}");
    }
    let (origin, owner) = (cores.apps[0].counters(), cores.apps[1].counters());
    assert_eq!(origin.remote_requests_sent, 117);
    assert_eq!(owner.remote_requests_served, 117);
    assert_eq!((owner.cmd_get, owner.get_hits), (116, 116));
}

#[test]
fn a_multi_key_get_ending_remote_brings_its_end_along() {
    let mut cores = TwoCores::new(16);
    let (local, remote, other) = (key_on(0, "l"), key_on(1, "r"), key_on(1, "s"));
    let missing = key_on(1, "m");
    cores.send(&alloc::format!(
        "set {local} 0 0 1\r\nL\r\nset {remote} 0 0 1\r\nR\r\nset {other} 0 0 1\r\nS\r\n"
    ));
    cores.run(1);
    assert_eq!(cores.sent(), "STORED\r\nSTORED\r\nSTORED\r\n");
    // The local value is written at once; the remote run of three keys
    // (one missing) is one request and comes back whole, `END` included.
    cores.send(&alloc::format!(
        "get {local} {remote} {missing} {other}\r\n"
    ));
    assert_eq!(cores.sent(), alloc::format!("VALUE {local} 0 1\r\nL\r\n"));
    // Queued: only the remote run's slot, waiting; no ready `END` behind
    // it (the run brings it).
    assert_eq!(cores.session.replies.waiting_parts(), 1);
    assert_eq!(cores.session.replies.queued_bytes(), 0);
    cores.run(1);
    assert_eq!(
        cores.sent(),
        alloc::format!("VALUE {remote} 0 1\r\nR\r\nVALUE {other} 0 1\r\nS\r\nEND\r\n")
    );
    let (origin, owner) = (cores.apps[0].counters(), cores.apps[1].counters());
    assert_eq!(origin.remote_requests_sent, 3);
    assert_eq!((owner.cmd_get, owner.get_hits, owner.get_misses), (3, 2, 1));
}

#[test]
fn remote_sets_with_answers_balance_the_buffer_pools() {
    let mut cores = TwoCores::new(16);
    let remote = key_on(1, "r");
    let allocated =
        |cores: &TwoCores| [0, 1].map(|core| cores.apps[core].counters().message_buffers_allocated);
    // One at a time: the origin writes each key into the buffer of the
    // last answer; the owner writes each answer into the last key's.
    for round in 0..500 {
        cores.send(&alloc::format!("set {remote} 0 0 2\r\nhi\r\n"));
        cores.run(1);
        assert_eq!(cores.sent(), "STORED\r\n", "set {round}");
    }
    assert_eq!(allocated(&cores), [1, 1]);
    // incr and delete too, eight in flight at once, twice: the origin
    // takes seven more; the owner gets each key back before the next
    // answer.
    cores.send(&alloc::format!("set {remote} 0 0 1\r\n0\r\n"));
    cores.run(1);
    assert_eq!(cores.sent(), "STORED\r\n");
    for round in 0..2 {
        for _ in 0..8 {
            cores.send(&alloc::format!("incr {remote} 1\r\n"));
        }
        cores.run(1);
        assert_eq!(cores.sent().lines().count(), 8, "round {round}");
        assert_eq!(allocated(&cores), [8, 1], "round {round}");
    }
    cores.send(&alloc::format!("delete {remote}\r\n"));
    cores.run(1);
    assert_eq!(cores.sent(), "DELETED\r\n");
    assert_eq!(allocated(&cores), [8, 1]);
    assert_eq!(cores.apps[1].counters().remote_requests_served, 518);
}

#[test]
fn data_holds_the_ack_only_while_a_remote_answer_is_awaited() {
    let mut cores = TwoCores::new(16);
    let (local, remote) = (key_on(0, "l"), key_on(1, "r"));
    cores.send(&alloc::format!("get {local}\r\n"));
    assert_eq!(cores.sent(), "END\r\n");
    assert!(!cores.stream.requests.hold_ack, "answered at once: no hold");
    cores.send(&alloc::format!("get {remote}\r\n"));
    assert!(
        cores.stream.requests.hold_ack,
        "the ACK waits for the answer"
    );
    cores.run(1);
    assert_eq!(cores.sent(), "END\r\n");
}
