//! Arbitrary bytes into the segment parser: never a panic; what parses re-emits to bytes that
//! parse to the same segment; the checksummed parse agrees with the structural one.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use libfuzzer_sys::fuzz_target;
use tcp_proto::wire::Segment;
use tcp_proto::wire::ip::{Ipv4Header, Ipv6Header};

fuzz_target!(|data: &[u8]| {
    let v4 = (IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
    let v6 = (IpAddr::V6(Ipv6Addr::LOCALHOST), IpAddr::V6(Ipv6Addr::UNSPECIFIED));
    let _ = Ipv4Header::parse(data);
    let _ = Ipv6Header::parse(data);
    for (src, dst) in [v4, v6] {
        if let Ok(checked) = Segment::parse_checked(data, src, dst) {
            assert_eq!(Segment::parse(data), Ok(checked));
        }
    }
    let Ok(first) = Segment::parse(data) else { return };
    let mut buf = vec![0u8; data.len() + 64];
    let (src, dst) = v4;
    // Our option layout pads with NOPs, so a densely packed header may not fit 40 octets.
    let Ok(len) = first.emit(src, dst, &mut buf) else { return };
    let again = Segment::parse_checked(&buf[..len], src, dst).expect("what we emit verifies");
    assert_eq!(again, first);
});
