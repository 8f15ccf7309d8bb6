//! Argument reading shared by every command: names, strict integers, JSON, `NAME value` options.
//!
//! The rules are deliberately narrow (decimal integers only, printable ASCII names) so the Lua
//! backend can apply exactly the same ones and both backends accept and refuse the same input.

use crate::config::{Setting, JSON_DEPTH_MAX};
use crate::{Result, ZrqError};

/// Longest queue, task, job id or consumer name, in bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Largest duration in milliseconds any option accepts (ten years): small enough to add to a
/// unix-ms timestamp without overflow, and exact as a Lua number.
pub const MAX_DURATION_MS: i64 = 315_360_000_000;
/// Largest `RETRIES`.
pub const MAX_RETRIES: i64 = 1000;
/// Largest `COUNT` for commands that return several jobs.
pub const MAX_COUNT: i64 = 1000;

/// Reads a name: 1 to [`MAX_NAME_LEN`] bytes of printable ASCII without spaces. Queue names may
/// not contain braces either, because the queue is the hash tag of every key (`zrq:{queue}:…`).
pub fn name<'a>(what: &str, raw: &'a [u8]) -> Result<&'a str> {
    let printable = raw.iter().all(|b| (0x21..=0x7e).contains(b));
    let braces = what == "queue" && raw.iter().any(|&b| b == b'{' || b == b'}');
    if raw.is_empty() || raw.len() > MAX_NAME_LEN || !printable || braces {
        return Err(ZrqError::invalid_name(what, raw));
    }
    // Printable ASCII is valid UTF-8.
    std::str::from_utf8(raw).map_err(|_| ZrqError::invalid_name(what, raw))
}

/// Reads a decimal integer (optional leading `-`, digits only) within `min..=max`.
pub fn integer(what: &str, raw: &[u8], min: i64, max: i64) -> Result<i64> {
    let err = || ZrqError::integer_out_of_range(what, raw, min, max);
    let digits = raw.strip_prefix(b"-").unwrap_or(raw);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(err());
    }
    let text = std::str::from_utf8(raw).map_err(|_| err())?;
    let value: i64 = text.parse().map_err(|_| err())?;
    if value < min || value > max {
        return Err(err());
    }
    Ok(value)
}

/// Refuses a value of `bytes` bytes beyond `max` (the value of config `setting`) with `LIMIT`;
/// checked before anything else about the value, so an oversized one costs nothing to refuse.
pub fn within(subject: &str, bytes: usize, setting: &Setting, max: i64) -> Result<()> {
    if i64::try_from(bytes).map_or(true, |n| n > max) {
        return Err(ZrqError::limit(
            &format!("{subject} is {bytes} bytes"),
            setting,
            max,
        ));
    }
    Ok(())
}

/// Reads a JSON document of at most `max_depth` nested arrays and objects (`zrq.json-depth-max`)
/// and returns it as text, unchanged. Validity is checked first (`BADJSON`), then the depth
/// (`LIMIT`).
pub fn json<'a>(what: &str, raw: &'a [u8], max_depth: i64) -> Result<&'a str> {
    let text = std::str::from_utf8(raw).map_err(|_| ZrqError::bad_json(what, "not UTF-8"))?;
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| ZrqError::bad_json(what, &e.to_string()))?;
    let depth = json_depth(raw);
    if i64::try_from(depth).map_or(true, |d| d > max_depth) {
        return Err(ZrqError::limit(
            &format!("{what} nests {depth} levels deep"),
            &JSON_DEPTH_MAX,
            max_depth,
        ));
    }
    Ok(text)
}

/// How deeply arrays and objects nest in a valid JSON document (0 for a scalar), in one pass.
fn json_depth(doc: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in doc {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Options that may be given several times (`AFTER a AFTER b`, `JOB … JOB …`).
pub const REPEATABLE: [&str; 2] = ["AFTER", "JOB"];
/// Options without a value.
pub const FLAGS: [&str; 1] = ["WITHRESULTS"];

/// Walks the `NAME value` options that follow a command's positional arguments.
///
/// Each option may be given once (except those in [`REPEATABLE`]); its name is matched
/// case-insensitively against the command's list, and an unknown one is refused with its text in
/// the error. Options in [`FLAGS`] take no value.
pub struct Options<'a> {
    rest: &'a [&'a [u8]],
    seen: Vec<&'static str>,
}

impl<'a> Options<'a> {
    /// Starts reading options from `rest`.
    pub fn new(rest: &'a [&'a [u8]]) -> Self {
        Options {
            rest,
            seen: Vec::new(),
        }
    }

    /// Returns the next option (one of `known`, in its canonical upper-case spelling) and its
    /// value, or `None` when all arguments are read.
    pub fn next(&mut self, known: &[&'static str]) -> Result<Option<(&'static str, &'a [u8])>> {
        let Some((&word, rest)) = self.rest.split_first() else {
            return Ok(None);
        };
        let option = known
            .iter()
            .find(|k| k.as_bytes().eq_ignore_ascii_case(word))
            .copied()
            .ok_or_else(|| ZrqError::unknown_option(word))?;
        if self.seen.contains(&option) && !REPEATABLE.contains(&option) {
            return Err(ZrqError::repeated_option(option));
        }
        self.seen.push(option);
        self.rest = rest;
        if FLAGS.contains(&option) {
            return Ok(Some((option, b"")));
        }
        self.value(option).map(|value| Some((option, value)))
    }

    /// Reads one more value of `option` (for options with several values, like `JOB`).
    pub fn value(&mut self, option: &str) -> Result<&'a [u8]> {
        let Some((&value, rest)) = self.rest.split_first() else {
            return Err(ZrqError::missing_value(option));
        };
        self.rest = rest;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_strict_decimal() {
        let cases: &[(&[u8], Option<i64>)] = &[
            (b"0", Some(0)),
            (b"42", Some(42)),
            (b"007", Some(7)),
            (b"-1", None),
            (b"+1", None),
            (b"", None),
            (b"-", None),
            (b" 1", None),
            (b"1.0", None),
            (b"1e3", None),
            (b"0x10", None),
            (b"99999999999999999999999", None),
            (b"\xff", None),
            (b"1001", None),
        ];
        for (raw, want) in cases {
            assert_eq!(integer("N", raw, 0, 1000).ok(), *want, "{raw:?}");
        }
    }

    #[test]
    fn integer_error_names_the_argument() {
        let err = integer("COUNT", b"x", 1, 10).err();
        assert_eq!(
            err.map(|e| e.to_string()),
            Some("ERR COUNT must be an integer from 1 to 10, got 'x'".to_string())
        );
    }

    #[test]
    fn names() {
        let long = vec![b'a'; MAX_NAME_LEN + 1];
        let cases: &[(&str, &[u8], bool)] = &[
            ("queue", b"default", true),
            ("queue", b"a:b.c-d_e", true),
            ("queue", b"", false),
            ("queue", b"a b", false),
            ("queue", b"a{b", false),
            ("task", b"a{b}", true),
            ("queue", b"caf\xc3\xa9", false),
            ("queue", b"a\nb", false),
            ("queue", &long, false),
        ];
        for (what, raw, ok) in cases {
            assert_eq!(name(what, raw).is_ok(), *ok, "{what} {raw:?}");
        }
    }

    #[test]
    fn json_validation() {
        assert!(json("payload", br#"{"a":[1,2,{"b":null}]}"#, 3).is_ok());
        assert!(json("payload", b"42", 1).is_ok());
        assert!(json("payload", b"\"x\"", 1).is_ok());
        for bad in [
            &b"{"[..],
            b"",
            b"{'a':1}",
            b"\xff",
            b"[1,]",
            b"{} {}",
            b"[[[[[",
        ] {
            let err = json("payload", bad, 2).err().map(|e| e.code);
            assert_eq!(err, Some(crate::ErrorCode::BadJson), "{bad:?}");
        }
    }

    #[test]
    fn json_depth_counts_arrays_and_objects_outside_strings() {
        let cases: &[(&[u8], usize)] = &[
            (b"1", 0),
            (b"[]", 1),
            (br#"{"a":[1,{"b":[]}]}"#, 4),
            (br#"["[[[[", "\\", "\"[["]"#, 1),
            (br#"[[1],[2],[[3]]]"#, 3),
        ];
        for (doc, want) in cases {
            assert_eq!(json_depth(doc), *want, "{doc:?}");
        }
        let err = json("RESULT", b"[[[]]]", 2).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("LIMIT RESULT nests 3 levels deep: zrq.json-depth-max is 2")
        );
    }

    #[test]
    fn sizes_beyond_the_limit_are_refused() {
        assert!(within("payload", 10, &JSON_DEPTH_MAX, 10).is_ok());
        let err = within("payload", 11, &JSON_DEPTH_MAX, 10).err();
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some("LIMIT payload is 11 bytes: zrq.json-depth-max is 10")
        );
    }

    #[test]
    fn options_are_case_insensitive_and_checked() {
        let args: Vec<&[u8]> = vec![b"retries", b"2", b"TIMEOUT", b"5"];
        let mut o = Options::new(&args);
        let known = ["RETRIES", "TIMEOUT"];
        assert_eq!(o.next(&known).ok().flatten(), Some(("RETRIES", &b"2"[..])));
        assert_eq!(o.next(&known).ok().flatten(), Some(("TIMEOUT", &b"5"[..])));
        assert_eq!(o.next(&known).ok().flatten(), None);

        let cases: &[&[&[u8]]] = &[
            &[b"BOGUS", b"1"],
            &[b"RETRIES"],
            &[b"RETRIES", b"1", b"retries", b"2"],
        ];
        for args in cases {
            let mut o = Options::new(args);
            let mut result = Ok(None);
            for _ in 0..3 {
                result = o.next(&known);
                if result.is_err() {
                    break;
                }
            }
            assert!(result.is_err(), "{args:?}");
        }
    }
}
