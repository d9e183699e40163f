;; The runtime every compiled pack carries: a bump allocator, the comparison of
;; two tagged values, the building of a text for `join` and the append of a
;; finding. `build.rs` assembles this
;; module and `codegen` splices its functions and globals, with the same
;; indices, into each pack; the pack's own `describe` and `evaluate` follow
;; them. Only the functions, their order and the globals are taken from here:
;; the pack declares its own memory, sized for its static data, and sets
;; `$heap` past that data. What is exported here is what `codegen` refers to
;; by name (`F_ALLOC`, `G_HEAP`, ...); the exports of a pack are its own.
;;
;; Value tags (`pack::tag`): 0 null, 1 bool, 2 int, 3 float (the payload is
;; the f64's bits), 4 string (the payload is a string id); a tag above 4 is an
;; object or a list.
(module
  (memory 1)

  ;; the next free byte
  (global $heap (export "heap") (mut i32) (i32.const 0))
  ;; the findings written so far: a list of `finding` records (24 bytes each
  ;; in the canonical ABI), its length and its capacity
  (global $out_ptr (export "out_ptr") (mut i32) (i32.const 0))
  (global $out_len (export "out_len") (mut i32) (i32.const 0))
  (global $out_cap (mut i32) (i32.const 0))

  ;; `cabi_realloc(old_ptr, old_size, align, new_size)`, what the host calls
  ;; to write into guest memory: shrinks in place, grows by copying.
  (func $cabi_realloc (export "cabi_realloc")
    (param $old i32) (param $old_size i32) (param $align i32) (param $new_size i32)
    (result i32)
    (local $p i32)
    (if (i32.and (i32.ne (local.get $old) (i32.const 0))
                 (i32.le_u (local.get $new_size) (local.get $old_size)))
      (then (return (local.get $old))))
    (local.set $p (call $alloc (local.get $new_size) (local.get $align)))
    (if (local.get $old)
      (then (memory.copy (local.get $p) (local.get $old) (local.get $old_size))))
    (local.get $p))

  ;; `alloc(size, align)`: `size` bytes at the next multiple of `align` (a
  ;; power of two); grows the memory as needed, traps when it cannot.
  (func $alloc (export "alloc") (param $size i32) (param $align i32) (result i32)
    (local $p i32) (local $end i32)
    (local.set $p
      (i32.and (i32.sub (i32.add (global.get $heap) (local.get $align)) (i32.const 1))
               (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $p) (local.get $size)))
    ;; the end wrapped around the address space
    (if (i32.lt_u (local.get $end) (local.get $p))
      (then unreachable))
    (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
      (then
        ;; the missing bytes, in 64 KiB pages, rounded up
        (if (i32.eq
              (memory.grow
                (i32.shr_u
                  (i32.add (i32.sub (local.get $end) (i32.shl (memory.size) (i32.const 16)))
                           (i32.const 65535))
                  (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  ;; `cmp(tag_a, a, tag_b, b, op) -> bool`, `op` being 0 `==`, 1 `<`, 2 `<=`,
  ;; 3 `>`, 4 `>=` (`!=` is the negation of `==`). Null equals null and
  ;; nothing else, and is not ordered; objects and lists equal nothing. Ints
  ;; and floats compare as numbers, mixed ones as f64; values of the same other
  ;; kind (strings, booleans) only for equality; anything else is false.
  (func $cmp (export "cmp")
    (param $ta i32) (param $a i64) (param $tb i32) (param $b i64) (param $op i32)
    (result i32)
    (local $fa f64) (local $fb f64)
    ;; null: equal to null alone, never ordered
    (if (i32.or (i32.eqz (local.get $ta)) (i32.eqz (local.get $tb)))
      (then (return (i32.and (i32.eqz (local.get $op)) (i32.eq (local.get $ta) (local.get $tb))))))
    ;; objects and lists (tags above string)
    (if (i32.or (i32.gt_u (local.get $ta) (i32.const 4)) (i32.gt_u (local.get $tb) (i32.const 4)))
      (then (return (i32.const 0))))
    ;; the same kind, not float: the payloads compare as integers
    (if (i32.and (i32.eq (local.get $ta) (local.get $tb))
                 (i32.ne (local.get $ta) (i32.const 3)))
      (then
        ;; only ints are ordered
        (if (i32.and (i32.ne (local.get $op) (i32.const 0))
                     (i32.ne (local.get $ta) (i32.const 2)))
          (then (return (i32.const 0))))
        (block $other
          (block $ge (block $gt (block $le (block $lt (block $eq
            (br_table $eq $lt $le $gt $ge $other (local.get $op)))
            (return (i64.eq (local.get $a) (local.get $b))))
            (return (i64.lt_s (local.get $a) (local.get $b))))
            (return (i64.le_s (local.get $a) (local.get $b))))
            (return (i64.gt_s (local.get $a) (local.get $b))))
            (return (i64.ge_s (local.get $a) (local.get $b))))
        (return (i32.const 0))))
    ;; kinds that differ: only numbers (ints and floats) compare, as f64
    (if (i32.or (i32.eqz (call $is_number (local.get $ta)))
                (i32.eqz (call $is_number (local.get $tb))))
      (then (return (i32.const 0))))
    (local.set $fa (call $to_f64 (local.get $ta) (local.get $a)))
    (local.set $fb (call $to_f64 (local.get $tb) (local.get $b)))
    (block $other
      (block $ge (block $gt (block $le (block $lt (block $eq
        (br_table $eq $lt $le $gt $ge $other (local.get $op)))
        (return (f64.eq (local.get $fa) (local.get $fb))))
        (return (f64.lt (local.get $fa) (local.get $fb))))
        (return (f64.le (local.get $fa) (local.get $fb))))
        (return (f64.gt (local.get $fa) (local.get $fb))))
        (return (f64.ge (local.get $fa) (local.get $fb))))
    (i32.const 0))

  ;; whether a tag is int or float
  (func $is_number (param $tag i32) (result i32)
    (i32.or (i32.eq (local.get $tag) (i32.const 2)) (i32.eq (local.get $tag) (i32.const 3))))

  ;; a number as f64: an int converted, a float's bits reinterpreted
  (func $to_f64 (param $tag i32) (param $v i64) (result f64)
    (if (result f64) (i32.eq (local.get $tag) (i32.const 2))
      (then (f64.convert_i64_s (local.get $v)))
      (else (f64.reinterpret_i64 (local.get $v)))))

  ;; `join(list, sep)` builds a text at the top of the heap, each piece
  ;; appended after the last, within 1024 bytes.

  ;; `append_string(strings, offsets, id, start) -> full`: appends string `id`
  ;; of the batch (its bytes in `strings`, where `offsets[id]` and
  ;; `offsets[id + 1]` say) to the text begun at `start`. A string that does
  ;; not fit in the 1024 bytes is cut before the character that would pass
  ;; them, and 1 is returned.
  (func $append_string (export "append_string")
    (param $strings i32) (param $offsets i32) (param $id i32) (param $start i32) (result i32)
    (local $from i32) (local $len i32) (local $room i32) (local $full i32)
    (local.set $offsets (i32.add (local.get $offsets) (i32.shl (local.get $id) (i32.const 2))))
    (local.set $from (i32.add (local.get $strings) (i32.load (local.get $offsets))))
    (local.set $len (i32.sub (i32.load offset=4 (local.get $offsets)) (i32.load (local.get $offsets))))
    (local.set $room (i32.sub (i32.const 1024) (i32.sub (global.get $heap) (local.get $start))))
    (if (i32.gt_s (local.get $len) (local.get $room))
      (then
        (local.set $full (i32.const 1))
        (local.set $len (select (local.get $room) (i32.const 0) (i32.gt_s (local.get $room) (i32.const 0))))
        ;; back to the first byte of the character the cut falls in (a
        ;; continuation byte is 0b10xxxxxx)
        (block $boundary
          (loop $back
            (br_if $boundary (i32.eqz (local.get $len)))
            (br_if $boundary
              (i32.ne (i32.and (i32.load8_u (i32.add (local.get $from) (local.get $len))) (i32.const 0xc0))
                      (i32.const 0x80)))
            (local.set $len (i32.sub (local.get $len) (i32.const 1)))
            (br $back)))))
    (memory.copy (call $alloc (local.get $len) (i32.const 1)) (local.get $from) (local.get $len))
    (local.get $full))

  ;; `append_int(v, start) -> full`: appends `v` in decimal to the text begun
  ;; at `start`, or returns 1 when it does not fit in the 1024 bytes.
  (func $append_int (export "append_int") (param $v i64) (param $start i32) (result i32)
    (local $digits i64) (local $rest i64) (local $n i32) (local $p i32)
    ;; the magnitude, unsigned (that of i64::MIN included)
    (local.set $digits
      (select (i64.sub (i64.const 0) (local.get $v)) (local.get $v) (i64.lt_s (local.get $v) (i64.const 0))))
    ;; its length: a sign, then the digits
    (local.set $n (i64.lt_s (local.get $v) (i64.const 0)))
    (local.set $rest (local.get $digits))
    (loop $count
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (local.set $rest (i64.div_u (local.get $rest) (i64.const 10)))
      (br_if $count (i64.ne (local.get $rest) (i64.const 0))))
    (if (i32.gt_s (local.get $n) (i32.sub (i32.const 1024) (i32.sub (global.get $heap) (local.get $start))))
      (then (return (i32.const 1))))
    (local.set $p (call $alloc (local.get $n) (i32.const 1)))
    (if (i64.lt_s (local.get $v) (i64.const 0))
      (then (i32.store8 (local.get $p) (i32.const 0x2d))))
    ;; the digits from the last
    (local.set $p (i32.add (local.get $p) (local.get $n)))
    (loop $digit
      (local.set $p (i32.sub (local.get $p) (i32.const 1)))
      (i32.store8 (local.get $p) (i32.add (i32.const 0x30) (i32.wrap_i64 (i64.rem_u (local.get $digits) (i64.const 10)))))
      (local.set $digits (i64.div_u (local.get $digits) (i64.const 10)))
      (br_if $digit (i64.ne (local.get $digits) (i64.const 0))))
    (i32.const 0))

  ;; `push(case, rule, has_container, container, args_ptr, args_len)`: appends
  ;; a `finding` record { case: u32, rule: u32, container: option<u32>,
  ;; args: list<value> } to the findings, doubling their capacity (from 16)
  ;; when full.
  (func $push (export "push")
    (param $case i32) (param $rule i32) (param $has_container i32) (param $container i32)
    (param $args i32) (param $nargs i32)
    (local $cap i32) (local $p i32)
    (if (i32.eq (global.get $out_len) (global.get $out_cap))
      (then
        (local.set $cap
          (select (i32.const 16) (i32.shl (global.get $out_cap) (i32.const 1))
                  (i32.eqz (global.get $out_cap))))
        (local.set $p (call $alloc (i32.mul (local.get $cap) (i32.const 24)) (i32.const 4)))
        (memory.copy (local.get $p) (global.get $out_ptr)
                     (i32.mul (global.get $out_len) (i32.const 24)))
        (global.set $out_ptr (local.get $p))
        (global.set $out_cap (local.get $cap))))
    (local.set $p (i32.add (global.get $out_ptr) (i32.mul (global.get $out_len) (i32.const 24))))
    (i32.store offset=0 (local.get $p) (local.get $case))
    (i32.store offset=4 (local.get $p) (local.get $rule))
    (i32.store8 offset=8 (local.get $p) (local.get $has_container))
    (i32.store offset=12 (local.get $p) (local.get $container))
    (i32.store offset=16 (local.get $p) (local.get $args))
    (i32.store offset=20 (local.get $p) (local.get $nargs))
    (global.set $out_len (i32.add (global.get $out_len) (i32.const 1))))
)
