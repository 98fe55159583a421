;; Judges UDP datagrams by destination port, for the host's tests:
;;   9 drop, 10 tx, 11 redirect to outputs[0], 12 a bad verdict,
;;   13 TTL set to 5 (dirty) and tx, 14 trap, 15 loop forever,
;;   16 packet_read/write bounds then tx, 17 map bounds then tx,
;;   18 memory.grow to the cap (16 pages) and one past it, then tx;
;;   anything else pass. Counts `judged` per packet and `bounds-ok` /
;;   `map-ok` / `memory-capped` when every bound held.
(module
  (import "warpcore" "packet_read" (func $packet_read (param i32 i32 i32 i32) (result i32)))
  (import "warpcore" "packet_write" (func $packet_write (param i32 i32 i32 i32) (result i32)))
  (import "warpcore" "map_lookup" (func $map_lookup (param i32 i32 i32 i32) (result i32)))
  (import "warpcore" "map_update" (func $map_update (param i32 i32 i32 i32) (result i32)))
  (import "warpcore" "map_delete" (func $map_delete (param i32 i32) (result i32)))
  (import "warpcore" "counter" (func $counter (param i32 i32) (result i32)))
  (import "warpcore" "counter_add" (func $counter_add (param i32 i64)))
  (import "warpcore" "log" (func $log (param i32 i32 i32)))
  (memory (export "memory") 2)
  (data (i32.const 16) "judged")
  (data (i32.const 32) "bounds-ok")
  (data (i32.const 48) "map-ok")
  (data (i32.const 64) "hello from init")
  (data (i32.const 80) "memory-capped")
  (global $judged (mut i32) (i32.const 0))
  (global $bounds (mut i32) (i32.const 0))
  (global $map (mut i32) (i32.const 0))
  (global $capped (mut i32) (i32.const 0))
  (func (export "warpcore_abi_version") (result i32) (i32.const 1))
  (func (export "warpcore_buffer") (param i32) (result i32) (i32.const 1024))
  (func (export "warpcore_init") (param $len i32) (result i32)
    (global.set $judged (call $counter (i32.const 16) (i32.const 6)))
    (global.set $bounds (call $counter (i32.const 32) (i32.const 9)))
    (global.set $map (call $counter (i32.const 48) (i32.const 6)))
    (global.set $capped (call $counter (i32.const 80) (i32.const 13)))
    (call $log (i32.const 2) (i32.const 64) (i32.const 15))
    ;; config "refuse" refuses
    (if (i32.and (i32.eq (local.get $len) (i32.const 6))
                 (i32.eq (i32.load8_u (i32.const 1024)) (i32.const 114)))
      (then (return (i32.const 7))))
    (i32.const 0))
  (func $bounds_hold (param $slot i32) (param $n i32) (result i32)
    (i32.and
      (i32.and
        (i32.and
          (i32.eq (call $packet_read (local.get $slot) (i32.const 0) (i32.const 60000) (i32.const 14)) (i32.const 14))
          (i32.eq (call $packet_read (local.get $n) (i32.const 0) (i32.const 60000) (i32.const 14)) (i32.const -1)))
        (i32.and
          (i32.eq (call $packet_read (local.get $slot) (i32.const 0) (i32.const 131070) (i32.const 10)) (i32.const -1))
          (i32.eq (call $packet_read (local.get $slot) (i32.const 5000) (i32.const 60000) (i32.const 10)) (i32.const 0))))
      (i32.and
        (i32.eq (call $packet_read (local.get $slot) (i32.const 0) (i32.const -4) (i32.const 10)) (i32.const -1))
        (i32.and
          ;; writes the destination MAC back as it was
          (i32.eq (call $packet_write (local.get $slot) (i32.const 0) (i32.const 60000) (i32.const 6)) (i32.const 6))
          (i32.eq (call $packet_write (local.get $slot) (i32.const 0) (i32.const 131070) (i32.const 6)) (i32.const -1))))))
  (func $map_holds (result i32)
    (i32.and
      (i32.and
        (i32.and
          (i32.eq (call $map_update (i32.const 16) (i32.const 65) (i32.const 32) (i32.const 1)) (i32.const -1))
          (i32.eq (call $map_update (i32.const 16) (i32.const 4) (i32.const 32) (i32.const 257)) (i32.const -1)))
        (i32.and
          (i32.eq (call $map_lookup (i32.const 16) (i32.const 4) (i32.const 60000) (i32.const 8)) (i32.const -1))
          (i32.eq (call $map_delete (i32.const 16) (i32.const 4)) (i32.const -1))))
      (i32.and
        (i32.and
          (i32.eq (call $map_update (i32.const 16) (i32.const 1) (i32.const 32) (i32.const 9)) (i32.const 0))
          (i32.eq (call $map_update (i32.const 17) (i32.const 1) (i32.const 32) (i32.const 9)) (i32.const 0)))
        (i32.and
          ;; map_entries = 2 in the test's spec
          (i32.eq (call $map_update (i32.const 18) (i32.const 1) (i32.const 32) (i32.const 9)) (i32.const -1))
          (i32.and
            (i32.eq (call $map_lookup (i32.const 16) (i32.const 1) (i32.const 60000) (i32.const 4)) (i32.const 9))
            (i32.eq (call $map_lookup (i32.const 16) (i32.const 1) (i32.const 131070) (i32.const 9)) (i32.const -1)))))))
  (func (export "warpcore_process_batch") (param $n i32)
    (local $i i32) (local $d i32) (local $w i32) (local $l4 i32) (local $port i32)
    (loop $each
      (local.set $d (i32.add (i32.const 1024) (i32.shl (local.get $i) (i32.const 4))))
      (local.set $w (i32.load (local.get $d)))
      (local.set $l4 (i32.load16_u offset=14 (local.get $d)))
      (call $counter_add (global.get $judged) (i64.const 1))
      (if (i32.ne (local.get $l4) (i32.const 0xffff))
        (then
          (local.set $port
            (i32.or
              (i32.shl (i32.load8_u offset=2 (i32.add (local.get $w) (local.get $l4))) (i32.const 8))
              (i32.load8_u offset=3 (i32.add (local.get $w) (local.get $l4)))))
          (if (i32.eq (local.get $port) (i32.const 9))
            (then (i32.store8 offset=9 (local.get $d) (i32.const 1))))
          (if (i32.eq (local.get $port) (i32.const 10))
            (then (i32.store8 offset=9 (local.get $d) (i32.const 2))))
          (if (i32.eq (local.get $port) (i32.const 11))
            (then
              (i32.store8 offset=9 (local.get $d) (i32.const 3))
              (i32.store8 offset=11 (local.get $d) (i32.const 0))))
          (if (i32.eq (local.get $port) (i32.const 12))
            (then (i32.store8 offset=9 (local.get $d) (i32.const 7))))
          (if (i32.eq (local.get $port) (i32.const 13))
            (then
              ;; TTL at l3 + 8
              (i32.store8 offset=8
                (i32.add (local.get $w) (i32.load16_u offset=12 (local.get $d)))
                (i32.const 5))
              (i32.store8 offset=10 (local.get $d) (i32.const 1))
              (i32.store8 offset=9 (local.get $d) (i32.const 2))))
          (if (i32.eq (local.get $port) (i32.const 14))
            (then unreachable))
          (if (i32.eq (local.get $port) (i32.const 15))
            (then (loop $forever (br $forever))))
          (if (i32.eq (local.get $port) (i32.const 16))
            (then
              (if (call $bounds_hold (local.get $i) (local.get $n))
                (then (call $counter_add (global.get $bounds) (i64.const 1))))
              (i32.store8 offset=9 (local.get $d) (i32.const 2))))
          (if (i32.eq (local.get $port) (i32.const 17))
            (then
              (if (call $map_holds)
                (then (call $counter_add (global.get $map) (i64.const 1))))
              (i32.store8 offset=9 (local.get $d) (i32.const 2))))
          (if (i32.eq (local.get $port) (i32.const 18))
            (then
              ;; memory_pages = 16 (the default): from 2 pages to 16 is
              ;; allowed, one more is not.
              (if (i32.and
                    (i32.eq (memory.grow (i32.const 14)) (i32.const 2))
                    (i32.eq (memory.grow (i32.const 1)) (i32.const -1)))
                (then (call $counter_add (global.get $capped) (i64.const 1))))
              (i32.store8 offset=9 (local.get $d) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (local.get $n)))))
)
