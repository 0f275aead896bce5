//! What a column's type says about masking: whether its text can hold anything a detector
//! looks for, and whether its binary form is just its text.

/// Types whose text output cannot hold a detector match: at most 10 digits in a row, or digit
/// groups joined by characters other than a single space or dash. `int8` is not here (19
/// digits hold any card number), nor `numeric`, nor anything unknown (domains, enums, arrays,
/// records, extension types): those are scanned.
pub(crate) fn is_inert(type_oid: u32) -> bool {
    matches!(
        type_oid,
        16 // bool
            | 18 // "char": one byte
            | 21 // int2
            | 23 // int4
            | 26 // oid
            | 27 // tid
            | 28 // xid
            | 29 // cid
            | 650 // cidr
            | 700 // float4
            | 701 // float8
            | 774 // macaddr8
            | 790 // money: groups joined by commas
            | 829 // macaddr
            | 869 // inet
            | 1082 // date
            | 1083 // time
            | 1114 // timestamp
            | 1184 // timestamptz
            | 1186 // interval
            | 1266 // timetz
            | 2950 // uuid
            | 3220 // pg_lsn
            | 2278 // void: empty text
            | 5069 // xid8
    )
}

/// `int8`: its binary form is scanned as the decimal text it stands for.
pub(crate) const INT8: u32 = 20;

/// Types whose binary format is their text in the client encoding, so detectors can scan it
/// and a text mask is a valid value.
pub(crate) fn binary_is_text(type_oid: u32) -> bool {
    matches!(
        type_oid,
        19 // name
            | 25 // text
            | 114 // json
            | 705 // unknown
            | 1042 // bpchar
            | 1043 // varchar
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_integers_and_text_are_not_inert() {
        for oid in [20, 1700, 25, 1043, 114, 3802, 1009, 16_384] {
            assert!(!is_inert(oid), "{oid}");
        }
        for oid in [16, 23, 1184, 2950] {
            assert!(is_inert(oid));
        }
        assert!(binary_is_text(25) && !binary_is_text(3802) && !binary_is_text(20));
    }
}
