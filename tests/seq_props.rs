//! Property tests for sequence-number arithmetic across the 2^32 wrap (RFC 9293 §3.4).

use proptest::prelude::*;
use tcp_proto::seq::SeqNum;

proptest! {
    #[test]
    fn after_adding_less_than_half_space_is_after(raw in any::<u32>(), step in 1u32..(1 << 31)) {
        let a = SeqNum::new(raw);
        let b = a + step;
        prop_assert!(b.after(a));
        prop_assert!(a.before(b));
        prop_assert!(!a.after(b));
        prop_assert_eq!(b.since(a), step);
        prop_assert_eq!(i64::from(b.wrapping_distance(a)), i64::from(step));
    }

    #[test]
    fn before_and_after_are_antisymmetric(x in any::<u32>(), y in any::<u32>()) {
        let (a, b) = (SeqNum::new(x), SeqNum::new(y));
        prop_assume!(x.wrapping_sub(y) != 1 << 31);
        prop_assert_eq!(a.before(b), b.after(a));
        prop_assert!(!(a.before(b) && a.after(b)));
        prop_assert_eq!(a == b, !a.before(b) && !a.after(b));
        prop_assert_eq!(a.before_eq(b), !a.after(b));
    }

    #[test]
    fn addition_is_associative_modulo_2_32(x in any::<u32>(), m in any::<u32>(), n in any::<u32>()) {
        let a = SeqNum::new(x);
        prop_assert_eq!((a + m) + n, a + m.wrapping_add(n));
        prop_assert_eq!((a + m).since(a), m);
    }

    #[test]
    fn in_range_matches_distance(start in any::<u32>(), len in 0u32..(1 << 31), off in any::<u32>()) {
        let s = SeqNum::new(start);
        let x = s + off;
        prop_assert_eq!(x.in_range(s, len), off < len);
    }

    #[test]
    fn max_and_min_pick_the_later_and_earlier(x in any::<u32>(), step in 0u32..(1 << 31)) {
        let a = SeqNum::new(x);
        let b = a + step;
        prop_assert_eq!(a.max_seq(b), b);
        prop_assert_eq!(b.max_seq(a), b);
        prop_assert_eq!(a.min_seq(b), a);
    }
}
