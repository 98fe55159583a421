//! ACPI byte fixtures: RSDT and XSDT machines, the BIOS-area search, and
//! tables that are short, lie about their length or fail their checksum.

use super::*;
use crate::memory::Image;
use alloc::vec;

/// Fixes byte `at` of `data` so that all bytes sum to zero.
fn fix_checksum(data: &mut [u8], at: usize) {
    data[at] = 0;
    let sum = data.iter().fold(0u8, |sum, &byte| sum.wrapping_add(byte));
    data[at] = 0u8.wrapping_sub(sum);
}

/// A system description table: `signature`, the header, then `body`.
fn sdt(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut table = vec![0u8; HEADER_LEN];
    table[..4].copy_from_slice(signature);
    table[4..8].copy_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
    table[8] = 2;
    table.extend_from_slice(body);
    fix_checksum(&mut table, 9);
    table
}

/// An RSDP pointing at `rsdt`, or (revision 2) at `xsdt`.
fn rsdp(rsdt: u32, xsdt: Option<u64>) -> Vec<u8> {
    let mut rsdp = vec![0u8; 36];
    rsdp[..8].copy_from_slice(b"RSD PTR ");
    rsdp[16..20].copy_from_slice(&rsdt.to_le_bytes());
    if let Some(xsdt) = xsdt {
        rsdp[15] = 2;
        rsdp[20..24].copy_from_slice(&36u32.to_le_bytes());
        rsdp[24..32].copy_from_slice(&xsdt.to_le_bytes());
    }
    // The first checksum covers the ACPI 1.0 part, the extended one all 36.
    fix_checksum(&mut rsdp[..20], 8);
    if xsdt.is_some() {
        fix_checksum(&mut rsdp, 32);
    }
    rsdp
}

/// A MADT: LAPIC address 0xfee00000, two processors (one disabled), an
/// IOAPIC, ISA IRQ 0 on GSI 2 and IRQ 9 level triggered (as QEMU's), an
/// x2APIC entry for a new id and one repeating id 0.
fn madt() -> Vec<u8> {
    let mut body = vec![];
    body.extend_from_slice(&0xfee0_0000u32.to_le_bytes());
    body.extend_from_slice(&1u32.to_le_bytes());
    body.extend_from_slice(&[0, 8, 0, 0, 1, 0, 0, 0]);
    body.extend_from_slice(&[0, 8, 1, 1, 0, 0, 0, 0]);
    body.extend_from_slice(&[1, 12, 0, 0, 0x00, 0x00, 0xc0, 0xfe, 0, 0, 0, 0]);
    body.extend_from_slice(&[2, 10, 0, 0, 2, 0, 0, 0, 0, 0]);
    body.extend_from_slice(&[2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0]);
    let mut x2apic = vec![9, 16, 0, 0];
    x2apic.extend_from_slice(&300u32.to_le_bytes());
    x2apic.extend_from_slice(&1u32.to_le_bytes());
    x2apic.extend_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&x2apic);
    x2apic[4..8].copy_from_slice(&0u32.to_le_bytes());
    body.extend_from_slice(&x2apic);
    sdt(b"APIC", &body)
}

/// An MCFG with one ECAM window at 0xb0000000, buses 0 to 255.
fn mcfg() -> Vec<u8> {
    let mut body = vec![0u8; 8];
    body.extend_from_slice(&0xb000_0000u64.to_le_bytes());
    body.extend_from_slice(&[0, 0, 0, 255, 0, 0, 0, 0]);
    sdt(b"MCFG", &body)
}

const RSDP: u64 = 0xf0000;
const ROOT: u64 = 0x10_0000;
const MADT: u64 = 0x10_1000;
const MCFG: u64 = 0x10_2000;

/// Memory with the RSDP in the BIOS area and the tables above 1 MiB.
fn machine(xsdt: bool, madt_bytes: &[u8]) -> Image {
    let mut image = Image::new(0xe0000, 0x40000);
    let root = if xsdt {
        let mut body = MADT.to_le_bytes().to_vec();
        body.extend_from_slice(&MCFG.to_le_bytes());
        sdt(b"XSDT", &body)
    } else {
        let mut body = (MADT as u32).to_le_bytes().to_vec();
        body.extend_from_slice(&(MCFG as u32).to_le_bytes());
        sdt(b"RSDT", &body)
    };
    let pointer = rsdp(ROOT as u32, xsdt.then_some(ROOT));
    image.write(RSDP, &pointer);
    image.write(ROOT, &root);
    image.write(MADT, madt_bytes);
    image.write(MCFG, &mcfg());
    image
}

fn expected(uses_xsdt: bool) -> AcpiInfo {
    AcpiInfo {
        local_apics: vec![
            LocalApicEntry {
                apic_id: 0,
                enabled: true,
            },
            LocalApicEntry {
                apic_id: 1,
                enabled: false,
            },
            LocalApicEntry {
                apic_id: 300,
                enabled: true,
            },
        ],
        local_apic_address: 0xfee0_0000,
        io_apic_address: Some(0xfec0_0000),
        io_apic_gsi_base: 0,
        isa_overrides: vec![
            IsaOverride {
                irq: 0,
                gsi: 2,
                flags: 0,
            },
            IsaOverride {
                irq: 9,
                gsi: 9,
                flags: 0x0d,
            },
        ],
        ecam: vec![EcamWindow {
            base: 0xb000_0000,
            segment: 0,
            start_bus: 0,
            end_bus: 255,
        }],
        uses_xsdt,
    }
}

#[test]
fn rsdt_and_xsdt_machines_parse_alike() {
    for xsdt in [false, true] {
        let image = machine(xsdt, &madt());
        assert_eq!(parse(&image, RSDP), Ok(expected(xsdt)), "xsdt {xsdt}");
        // Without the loader's pointer the BIOS area is searched.
        assert_eq!(
            parse(&image, 0),
            Ok(expected(xsdt)),
            "xsdt {xsdt}, searched"
        );
    }
}

#[test]
fn isa_irqs_follow_their_overrides() {
    let info = expected(false);
    let isa = |gsi| IsaRoute {
        gsi,
        active_low: false,
        level: false,
    };
    assert_eq!(info.isa_route(4), isa(4), "no override: as ISA");
    assert_eq!(info.isa_route(0), isa(2));
    assert_eq!(
        info.isa_route(9),
        IsaRoute {
            gsi: 9,
            active_low: false,
            level: true,
        }
    );
}

/// Regression: a MADT of only its 36-byte header used to panic reading
/// the LAPIC address at offset 36.
#[test]
fn a_header_only_madt_parses_to_no_processors() {
    let image = machine(false, &sdt(b"APIC", &[]));
    let info = parse(&image, RSDP).unwrap();
    assert!(info.local_apics.is_empty());
    assert_eq!(info.local_apic_address, 0xfee0_0000);
    assert_eq!(info.ecam.len(), 1);
}

#[test]
fn malformed_madt_entries_end_the_walk() {
    // An entry claiming more bytes than the table has, one of length 0
    // (which would loop forever), and one cut short mid-field.
    for tail in [&[0u8, 40, 0, 2][..], &[0, 0], &[0, 8, 0, 2, 1]] {
        let mut body = madt()[HEADER_LEN..].to_vec();
        body.extend_from_slice(tail);
        let image = machine(false, &sdt(b"APIC", &body));
        assert_eq!(parse(&image, RSDP), Ok(expected(false)), "tail {tail:?}");
    }
}

#[test]
fn a_bad_extended_checksum_falls_back_to_the_rsdt() {
    let mut image = machine(true, &madt());
    // The RSDT the ACPI 1.0 part names: the same two tables, 4-byte entries.
    let rsdt_at = 0x10_3000;
    let mut body = (MADT as u32).to_le_bytes().to_vec();
    body.extend_from_slice(&(MCFG as u32).to_le_bytes());
    image.write(rsdt_at, &sdt(b"RSDT", &body));
    let mut pointer = rsdp(rsdt_at as u32, Some(ROOT));
    pointer[32] ^= 0xff;
    image.write(RSDP, &pointer);
    assert_eq!(parse(&image, RSDP), Ok(expected(false)));
}

#[test]
fn bad_pointers_and_tables_are_errors() {
    let image = Image::new(0xe0000, 0x40000);
    assert_eq!(parse(&image, 0), Err(AcpiError::NoRsdp));
    let mut broken = machine(false, &madt());
    broken.bytes[(MADT + 20 - broken.base) as usize] ^= 1;
    assert_eq!(parse(&broken, RSDP), Err(AcpiError::BadChecksum(MADT)));
    let mut short = machine(false, &madt());
    short.write(MADT + 4, &8u32.to_le_bytes());
    assert_eq!(parse(&short, RSDP), Err(AcpiError::Unreadable(MADT)));
    let mut long = machine(false, &madt());
    long.write(MADT + 4, &0x10_0000u32.to_le_bytes());
    assert_eq!(parse(&long, RSDP), Err(AcpiError::Unreadable(MADT)));
    assert_eq!(
        parse(&machine(false, &madt()), 0x5000_0000),
        Err(AcpiError::Unreadable(0x5000_0000))
    );
    let mut rsdp_bad = machine(false, &madt());
    rsdp_bad.bytes[(RSDP + 9 - rsdp_bad.base) as usize] ^= 0xff;
    assert_eq!(parse(&rsdp_bad, RSDP), Err(AcpiError::BadChecksum(RSDP)));
}
