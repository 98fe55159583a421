//! What a Wasm module can write back into its slots: any descriptor
//! bytes, any window bytes. The host's read-back (`judge`) must accept
//! exactly verdicts 0-3, dirty 0/1 and redirects to outputs it has, and
//! the write-back of a dirty window (with the IPv4 checksum recomputed at
//! the host's own header offset) must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use warpcore_wasm::SlotVerdict;
use warpcore_wasm::descriptor::{DESCRIPTOR_SIZE, NONE, fix_ipv4_checksum, header_offsets, judge};

fuzz_target!(|data: &[u8]| {
    let Some((&outputs, rest)) = data.split_first() else {
        return;
    };
    let outputs = usize::from(outputs % 17);
    let Some((descriptor, window)) = rest.split_first_chunk::<DESCRIPTOR_SIZE>() else {
        return;
    };
    let judged = judge(descriptor, outputs);
    let (verdict, dirty, output) = (descriptor[9], descriptor[10], descriptor[11]);
    let valid = dirty <= 1
        && match verdict {
            0..=2 => true,
            3 => usize::from(output) < outputs,
            _ => false,
        };
    assert_eq!(judged.is_some(), valid, "{descriptor:?} with {outputs} outputs");
    if let Some((SlotVerdict::Redirect(index), _)) = judged {
        assert!(usize::from(index) < outputs);
    }
    // The window written back into a packet: the host's offsets come from
    // the packet before the module ran, here the window itself.
    let mut packet = window.to_vec();
    for ipv4_at in [None, Some(0), Some(14)] {
        let (l3, l4) = header_offsets(&packet, ipv4_at, packet.len());
        if l4 != NONE {
            assert!(l3 != NONE && usize::from(l4) + 8 <= packet.len());
        }
        if judged.is_some_and(|(_, dirty)| dirty) && l3 != NONE {
            fix_ipv4_checksum(&mut packet, usize::from(l3));
        }
    }
});
