//! The packed job record: a job's record is one Redis string at its key, `zrq:{queue}:job:<id>`,
//! rather than a hash of its fields.
//!
//! Why: a hash pays for every field it holds (a listpack entry for each name and value, grown one
//! field at a time), and a job's record is written whole by FETCH and read whole by most commands.
//! Measured on Redis 7.0 (callgrind, 3,000 commands): an HSET of a running job's 9 fields on a new
//! key costs about 30k instructions and an HGETALL 15.8k; a SET of the same data packed into one
//! string 5.7k and a GET 3.7k. A string also holds a finished job in fewer bytes.
//!
//! The format, readable with `redis-cli GET`: the record's fields in [`crate::job::FIELDS`] order,
//! each as `<tag><length>:<value>`, separated by one space. The tag is one ASCII letter
//! ([`TAGS`]), the length the value's length in bytes, in decimal without a leading zero; the
//! value follows unescaped, since its length says where it ends. So
//! `t4:noop p7:{"n":1} s6:active a1:1` is a job of task `noop`, payload `{"n":1}`, state
//! `active`, attempt 1. Which fields are stored is the compact record's rule
//! ([`crate::job::Job::to_fields`]): not `id` nor `queue`, no field at its default.
//!
//! Reading is strict: anything but that grammar is `CORRUPT`, as an unreadable hash record is.

use crate::{Result, ZrqError};

/// Each stored field of a job record and its one-letter tag, in [`crate::job::FIELDS`] order
/// (less `id` and `queue`, which a record never stores). The Lua library's table is generated
/// from this one.
pub const TAGS: [(&str, u8); 29] = [
    ("task", b't'),
    ("payload", b'p'),
    ("state", b's'),
    ("attempt", b'a'),
    ("max_attempts", b'm'),
    ("timeout", b'o'),
    ("priority", b'i'),
    ("backoff", b'b'),
    ("keep", b'k'),
    ("unique", b'u'),
    ("parents", b'P'),
    ("children", b'C'),
    ("waiting_on", b'W'),
    ("parents_done", b'D'),
    ("with_results", b'R'),
    ("on_parent_fail", b'F'),
    ("batch", b'B'),
    ("schedule", b'S'),
    ("created_at", b'c'),
    ("run_at", b'r'),
    ("started_at", b'g'),
    ("finished_at", b'f'),
    ("consumer", b'w'),
    ("lease", b'l'),
    ("progress", b'n'),
    ("cancel_requested", b'x'),
    ("entry", b'e'),
    ("result", b'v'),
    ("error", b'E'),
];

/// The byte between two fields.
const SEPARATOR: u8 = b' ';
/// The byte between a field's length and its value.
const LENGTH_END: u8 = b':';
/// At most this many digits in a length: 10 digits pass 4 GiB, beyond any Redis string (512 MB).
const MAX_LENGTH_DIGITS: usize = 10;

/// The tag of stored field `name`.
pub fn tag_of(name: &str) -> Option<u8> {
    TAGS.iter()
        .find(|(field, _)| *field == name)
        .map(|(_, tag)| *tag)
}

/// The stored field tagged `tag`.
pub fn field_of(tag: u8) -> Option<&'static str> {
    tag_index(tag).map(|i| TAGS[i].0)
}

/// The position in [`TAGS`] of the field tagged `tag`: one look-up in a table made from [`TAGS`]
/// at compile time, where a search of the list compares up to 29 tags for every field read.
pub fn tag_index(tag: u8) -> Option<usize> {
    match TAG_INDEX[usize::from(tag)] {
        NO_TAG => None,
        i => Some(usize::from(i)),
    }
}

/// [`TAG_INDEX`]'s entry for a byte that is no tag.
const NO_TAG: u8 = u8::MAX;

/// Each byte's position in [`TAGS`] as a tag, [`NO_TAG`] for the others (fewer than 255 tags, so
/// a position fits a byte and is never [`NO_TAG`]; a seen-set of them fits a `u32`, see [`visit`]).
const TAG_INDEX: [u8; 256] = {
    assert!(TAGS.len() <= 32);
    let mut table = [NO_TAG; 256];
    let mut i = 0;
    while i < TAGS.len() {
        table[TAGS[i].1 as usize] = i as u8;
        i += 1;
    }
    table
};

/// Packs `fields` (name and value, in the order given) into a record. A name without a tag is
/// `INTERNAL`: only zrq's own code names fields here.
pub fn encode<N: AsRef<str>, V: AsRef<str>>(fields: &[(N, V)]) -> Result<String> {
    let size: usize = fields.iter().map(|(_, v)| v.as_ref().len() + 13).sum();
    let mut out = String::with_capacity(size);
    for (name, value) in fields {
        let name = name.as_ref();
        let tag = tag_of(name)
            .ok_or_else(|| ZrqError::internal(&format!("no packed tag for field '{name}'")))?;
        if !out.is_empty() {
            out.push(char::from(SEPARATOR));
        }
        let value = value.as_ref();
        out.push(char::from(tag));
        out.push_str(&value.len().to_string());
        out.push(char::from(LENGTH_END));
        out.push_str(value);
    }
    Ok(out)
}

/// Reads the record stored at `key` (named in errors) from its bytes: each field's name and
/// value, in stored order. Anything but the grammar of [`encode`] is `CORRUPT`: an unknown tag, a
/// length that is missing, has a leading zero, is too long or runs past the end, a value that is
/// not UTF-8, anything but one space between fields, a field stored twice, an empty record.
pub fn decode(key: &str, raw: &[u8]) -> Result<Vec<(String, String)>> {
    Ok(decode_tagged(key, raw)?
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect())
}

/// [`decode`], each field named by its entry in [`TAGS`] (no string made for a name): how the
/// commands read a record.
pub fn decode_tagged(key: &str, raw: &[u8]) -> Result<Vec<(&'static str, String)>> {
    let mut fields: Vec<(&'static str, String)> = Vec::with_capacity(12);
    visit(key, raw, |tag, value| {
        fields.push((TAGS[tag].0, value.to_string()));
    })?;
    Ok(fields)
}

/// Reads the record stored at `key` (named in errors) from its bytes, handing each field to
/// `each` in stored order: its position in [`TAGS`] and its value, borrowed from `raw`. No string
/// is made, so a reader that parses a field (an integer) or skips it pays nothing for it: the one
/// reading of the grammar, which [`decode_tagged`] and [`crate::job::Job::from_packed`] share.
/// The same faults as [`decode`] are `CORRUPT`, each reported where it is met; fields before it
/// have been handed on by then.
pub fn visit<'r>(key: &str, raw: &'r [u8], mut each: impl FnMut(usize, &'r str)) -> Result<()> {
    let corrupt = |detail: String| ZrqError::corrupt(key, &detail);
    if raw.is_empty() {
        return Err(corrupt("the record is empty".to_string()));
    }
    // The tags met so far, one bit each (TAGS has fewer than 32): a field stored twice is found
    // without a search.
    let mut seen: u32 = 0;
    let mut at = 0;
    loop {
        let tag = raw[at];
        let index = tag_index(tag).ok_or_else(|| {
            corrupt(format!(
                "unknown field tag '{}' at byte {at}",
                tag.escape_ascii()
            ))
        })?;
        let name = TAGS[index].0;
        if seen & (1 << index) != 0 {
            return Err(corrupt(format!("field '{name}' is stored twice")));
        }
        seen |= 1 << index;
        let digits_start = at + 1;
        let digits = raw[digits_start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        let bad_length = || corrupt(format!("field '{name}' has no valid length"));
        if digits == 0
            || digits > MAX_LENGTH_DIGITS
            || (digits > 1 && raw[digits_start] == b'0')
            || raw.get(digits_start + digits) != Some(&LENGTH_END)
        {
            return Err(bad_length());
        }
        let length = raw[digits_start..digits_start + digits]
            .iter()
            .try_fold(0usize, |n, d| {
                n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
            });
        let value_start = digits_start + digits + 1;
        let value_end = length
            .and_then(|length| value_start.checked_add(length))
            .filter(|end| *end <= raw.len())
            .ok_or_else(|| corrupt(format!("field '{name}' runs past the end of the record")))?;
        let value = std::str::from_utf8(&raw[value_start..value_end])
            .map_err(|_| corrupt(format!("field '{name}' is not UTF-8 text")))?;
        each(index, value);
        match raw.get(value_end) {
            None => return Ok(()),
            Some(&SEPARATOR) if value_end + 1 < raw.len() => at = value_end + 1,
            Some(_) => {
                return Err(corrupt(format!(
                    "field '{name}' is not followed by one space and another field"
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{DERIVED, FIELDS};
    use crate::ErrorCode;

    #[test]
    fn tags_cover_every_stored_field_in_order_once() {
        let stored: Vec<&str> = FIELDS
            .iter()
            .map(|(name, _)| *name)
            .filter(|name| !DERIVED.contains(name))
            .collect();
        let tagged: Vec<&str> = TAGS.iter().map(|(name, _)| *name).collect();
        assert_eq!(tagged, stored);
        for (i, (_, tag)) in TAGS.iter().enumerate() {
            assert!(tag.is_ascii_alphabetic(), "tag {tag} is a letter");
            assert!(
                TAGS[i + 1..].iter().all(|(_, other)| other != tag),
                "tag {} is used once",
                char::from(*tag)
            );
        }
    }

    #[test]
    fn the_tag_table_finds_what_a_search_of_tags_finds() {
        for byte in 0..=u8::MAX {
            let searched = TAGS.iter().position(|(_, tag)| *tag == byte);
            assert_eq!(tag_index(byte), searched, "{byte}");
            assert_eq!(field_of(byte), searched.map(|i| TAGS[i].0), "{byte}");
        }
    }

    #[test]
    fn encodes_the_documented_example() {
        let fields = [
            ("task", "noop"),
            ("payload", r#"{"n":1}"#),
            ("state", "active"),
            ("attempt", "1"),
        ];
        assert_eq!(
            encode(&fields).ok().as_deref(),
            Some(r#"t4:noop p7:{"n":1} s6:active a1:1"#)
        );
    }

    #[test]
    fn values_round_trip_whatever_they_hold() {
        let values = [
            "",
            " ",
            "a b c",
            "t4:x p1:y",
            "12:34",
            "0",
            "\"quoted\" \\ back\nslash",
            "naïve — ünïcödé ✓",
            "trailing space ",
        ];
        for value in values {
            for name in ["task", "payload", "error"] {
                let fields = [("state", "active"), (name, value), ("result", value)];
                let packed = encode(&fields).unwrap_or_default();
                let back = decode("k", packed.as_bytes()).unwrap_or_default();
                let expected: Vec<(String, String)> = fields
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect();
                assert_eq!(back, expected, "{packed:?}");
            }
        }
    }

    #[test]
    fn a_long_value_gets_a_long_length() {
        let payload = "x".repeat(123_456);
        let packed = encode(&[("payload", payload.as_str())]).unwrap_or_default();
        assert!(packed.starts_with("p123456:xxx"));
        let back = decode("k", packed.as_bytes()).unwrap_or_default();
        assert_eq!(back, vec![("payload".to_string(), payload)]);
    }

    #[test]
    fn a_field_without_a_tag_is_internal() {
        let err = encode(&[("id", "j1")]).err().map(|e| e.code);
        assert_eq!(err, Some(ErrorCode::Internal));
    }

    #[test]
    fn malformed_records_are_corrupt() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "the record is empty"),
            (b"q1:x", "unknown field tag 'q' at byte 0"),
            (b"s6:active q1:x", "unknown field tag 'q' at byte 10"),
            (b"s6:active\x01", "not followed by one space"),
            (b" s6:active", "unknown field tag ' ' at byte 0"),
            (
                b"s6:active ",
                "field 'state' is not followed by one space and another field",
            ),
            (b"s6:active  a1:1", "unknown field tag ' ' at byte 10"),
            (
                b"s6:activea1:1",
                "field 'state' is not followed by one space",
            ),
            (b"s:active", "field 'state' has no valid length"),
            (b"s6active", "field 'state' has no valid length"),
            (b"s06:active", "field 'state' has no valid length"),
            (b"s-6:active", "field 'state' has no valid length"),
            (b"s12345678901:x", "field 'state' has no valid length"),
            (b"s6", "field 'state' has no valid length"),
            (
                b"s7:active",
                "field 'state' runs past the end of the record",
            ),
            (
                b"s99999999:active",
                "field 'state' runs past the end of the record",
            ),
            (b"s2:\xff\xfe", "field 'state' is not UTF-8 text"),
            // Text as a whole, but a length that cuts a character.
            ("s1:é".as_bytes(), "field 'state' is not UTF-8 text"),
            ("t2:é s1:é".as_bytes(), "field 'state' is not UTF-8 text"),
            ("t3:é".as_bytes(), "field 'task' runs past the end"),
            // Not text as a whole: each fault where it is met.
            (b"t1:x s2:\xff\xfe", "field 'state' is not UTF-8 text"),
            (b"t1:\xc3 s1:\xa9", "field 'task' is not UTF-8 text"),
            (b"t1:x q1:\xff", "unknown field tag 'q' at byte 5"),
            (b"t1:x s01:\xff", "field 'state' has no valid length"),
            (b"s6:active a1:1 s4:dead", "field 'state' is stored twice"),
        ];
        for (raw, detail) in cases {
            let err = decode("zrq:{q}:job:j", raw).err();
            let message = err.as_ref().map(|e| e.message.clone()).unwrap_or_default();
            assert_eq!(
                err.map(|e| e.code),
                Some(ErrorCode::Corrupt),
                "{:?}",
                raw.escape_ascii().to_string()
            );
            assert!(
                message.contains(detail) && message.contains("'zrq:{q}:job:j'"),
                "{:?}: {message}",
                raw.escape_ascii().to_string()
            );
        }
    }

    #[test]
    fn the_protocol_documents_every_tag() {
        // docs/PROTOCOL.md, "Job record": the tag table, three (field, tag) pairs a row.
        let doc = include_str!("../../docs/PROTOCOL.md");
        let table = doc
            .split("| field | tag | field | tag | field | tag |")
            .nth(1)
            .and_then(|rest| rest.split("\n\n").next())
            .unwrap_or_default();
        let mut documented: Vec<(String, String)> = Vec::new();
        for row in table.lines().skip(2) {
            let cells: Vec<&str> = row.split('|').map(|c| c.trim().trim_matches('`')).collect();
            for pair in cells
                .get(1..cells.len().saturating_sub(1))
                .unwrap_or_default()
                .chunks(2)
            {
                if let [field, tag] = pair {
                    if !field.is_empty() {
                        documented.push((field.to_string(), tag.to_string()));
                    }
                }
            }
        }
        documented.sort();
        let mut tags: Vec<(String, String)> = TAGS
            .iter()
            .map(|(field, tag)| (field.to_string(), char::from(*tag).to_string()))
            .collect();
        tags.sort();
        assert_eq!(documented, tags);
    }

    #[test]
    fn a_zero_length_is_allowed() {
        let back = decode("k", b"s6:active E0:").unwrap_or_default();
        assert_eq!(back[1], ("error".to_string(), String::new()));
    }
}
