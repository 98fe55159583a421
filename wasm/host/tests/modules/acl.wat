;; A UDP port ACL: drops datagrams to the destination ports of its config
;; ("9 19": decimal ports, any separator, at most 10 rules) and passes
;; the rest, counting drops per rule as `rule-<n>`. The same job as the
;; native `port-filter` example, for the cost comparison (count-wasm) and
;; the hosted test.
(module
  (import "warpcore" "counter" (func $counter (param i32 i32) (result i32)))
  (import "warpcore" "counter_add" (func $counter_add (param i32 i64)))
  (memory (export "memory") 2)
  ;; 0: rule count; 16 + 4r: rule r's port; 128 + 4r: its counter id;
  ;; 200: a counter name being made; 4096: the host's buffer.
  (data (i32.const 200) "rule-")
  (func (export "warpcore_abi_version") (result i32) (i32.const 1))
  (func (export "warpcore_buffer") (param i32) (result i32) (i32.const 4096))
  (func (export "warpcore_init") (param $len i32) (result i32)
    (local $i i32) (local $c i32) (local $value i32) (local $digits i32) (local $n i32)
    (loop $scan
      (local.set $c (i32.const 32))
      (if (i32.lt_u (local.get $i) (local.get $len))
        (then (local.set $c (i32.load8_u offset=4096 (local.get $i)))))
      (if (i32.and (i32.ge_u (local.get $c) (i32.const 48)) (i32.le_u (local.get $c) (i32.const 57)))
        (then
          (local.set $value
            (i32.add (i32.mul (local.get $value) (i32.const 10)) (i32.sub (local.get $c) (i32.const 48))))
          (local.set $digits (i32.add (local.get $digits) (i32.const 1))))
        (else
          (if (i32.gt_u (local.get $digits) (i32.const 0))
            (then
              (if (i32.ge_u (local.get $n) (i32.const 10)) (then (return (i32.const 2))))
              (if (i32.gt_u (local.get $value) (i32.const 65535)) (then (return (i32.const 3))))
              (i32.store offset=16 (i32.shl (local.get $n) (i32.const 2)) (local.get $value))
              (i32.store8 offset=205 (i32.const 0) (i32.add (i32.const 48) (local.get $n)))
              (i32.store offset=128 (i32.shl (local.get $n) (i32.const 2))
                (call $counter (i32.const 200) (i32.const 6)))
              (local.set $n (i32.add (local.get $n) (i32.const 1)))
              (local.set $value (i32.const 0))
              (local.set $digits (i32.const 0))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $scan (i32.le_u (local.get $i) (local.get $len))))
    (i32.store (i32.const 0) (local.get $n))
    (i32.const 0))
  (func (export "warpcore_process_batch") (param $n i32)
    (local $i i32) (local $d i32) (local $w i32) (local $l4 i32) (local $port i32) (local $r i32)
    (local $rules i32)
    (local.set $rules (i32.load (i32.const 0)))
    (local.set $d (i32.const 4096))
    (loop $each
      (local.set $l4 (i32.load16_u offset=14 (local.get $d)))
      (if (i32.ne (local.get $l4) (i32.const 0xffff))
        (then
          (local.set $w (i32.load (local.get $d)))
          (if (i32.eq
                (i32.load8_u offset=9 (i32.add (local.get $w) (i32.load16_u offset=12 (local.get $d))))
                (i32.const 17))
            (then
              (local.set $w (i32.add (local.get $w) (local.get $l4)))
              (local.set $port
                (i32.or (i32.shl (i32.load8_u offset=2 (local.get $w)) (i32.const 8))
                        (i32.load8_u offset=3 (local.get $w))))
              (local.set $r (i32.const 0))
              (block $matched
                (loop $rule
                  (br_if $matched (i32.ge_u (local.get $r) (local.get $rules)))
                  (if (i32.eq (local.get $port)
                              (i32.load offset=16 (i32.shl (local.get $r) (i32.const 2))))
                    (then
                      (i32.store8 offset=9 (local.get $d) (i32.const 1))
                      (call $counter_add
                        (i32.load offset=128 (i32.shl (local.get $r) (i32.const 2)))
                        (i64.const 1))
                      (br $matched)))
                  (local.set $r (i32.add (local.get $r) (i32.const 1)))
                  (br $rule)))))))
      (local.set $d (i32.add (local.get $d) (i32.const 16)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $i) (local.get $n)))))
)
