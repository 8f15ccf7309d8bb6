//! Stream entries and hash fields read straight from the RESP2 bytes of a `RedisModule_Call`
//! reply.
//!
//! Asking a call reply for its type or an element makes Redis parse the whole reply into a tree
//! of call-reply objects first (one allocation per array; for XREADGROUP's 100 entries ~5.7k
//! instructions per entry, callgrind), and walking that tree costs a module API call per
//! element. The reply's own protocol bytes (`RedisModule_CallReplyProto`, no parsing) are read
//! here instead, in one pass, into the [`StreamEntry`] values the store returns. A call reply is
//! RESP2 (no `3` flag), so only RESP2's types can appear.

use zrq_core::store::StreamEntry;

/// One RESP2 value's head: a string (bulk or status) with its bytes, an array with its element
/// count (`None`: the null array), or anything else (an integer, an error, the null bulk
/// string), which stream replies use for nothing read here.
enum Head<'a> {
    Text(&'a [u8]),
    Array(Option<usize>),
    Other,
}

/// A reader over RESP2 bytes. Every read is bounds-checked: bytes that are not RESP2 end the
/// reading (`None`), they never panic.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    /// The line from the cursor to the next CRLF (without it); the cursor moves past the CRLF.
    /// A head's line holds no CR of its own (a type byte and a number, or a status).
    fn line(&mut self) -> Option<&'a [u8]> {
        let rest = self.bytes.get(self.at..)?;
        let end = rest.iter().position(|&b| b == b'\r')?;
        if rest.get(end + 1) != Some(&b'\n') {
            return None;
        }
        self.at += end + 2;
        rest.get(..end)
    }

    /// A line's decimal integer (RESP2 lengths: `-1` for null, else a count), digit by digit
    /// (`str::parse` measured twice the instructions of the rest of a head).
    fn length(line: &[u8]) -> Option<i64> {
        if line == b"-1" {
            return Some(-1);
        }
        if line.is_empty() {
            return None;
        }
        line.iter().try_fold(0i64, |n, &b| {
            if !b.is_ascii_digit() {
                return None;
            }
            n.checked_mul(10)?.checked_add(i64::from(b - b'0'))
        })
    }

    /// The next value's head; a bulk string's bytes are consumed with it, an array's elements
    /// are not (they follow).
    fn head(&mut self) -> Option<Head<'a>> {
        let line = self.line()?;
        let (&kind, rest) = line.split_first()?;
        match kind {
            b'+' => Some(Head::Text(rest)),
            b'$' => match Self::length(rest)? {
                -1 => Some(Head::Other),
                len => {
                    let len = usize::try_from(len).ok()?;
                    let end = self.at.checked_add(len)?;
                    let text = self.bytes.get(self.at..end)?;
                    if self.bytes.get(end..end.checked_add(2)?)? != b"\r\n" {
                        return None;
                    }
                    self.at = end + 2;
                    Some(Head::Text(text))
                }
            },
            b'*' => match Self::length(rest)? {
                -1 => Some(Head::Array(None)),
                len => Some(Head::Array(Some(usize::try_from(len).ok()?))),
            },
            b'-' | b':' => Some(Head::Other),
            _ => None,
        }
    }

    /// Skips the rest of a value whose head was read (an array's elements, nested ones too).
    fn skip_rest(&mut self, head: &Head<'a>) -> Option<()> {
        let mut pending = match head {
            Head::Array(Some(len)) => *len,
            _ => 0,
        };
        while pending > 0 {
            pending -= 1;
            if let Head::Array(Some(len)) = self.head()? {
                pending = pending.checked_add(len)?;
            }
        }
        Some(())
    }

    /// The next value as UTF-8 text (a bulk or status string); anything else is skipped whole
    /// and is `None` inside.
    fn text(&mut self) -> Option<Option<String>> {
        let head = self.head()?;
        if let Head::Text(bytes) = head {
            return Some(utf8(bytes));
        }
        self.skip_rest(&head)?;
        Some(None)
    }

    /// A flat `[field, value, …]` array as pairs, skipping pairs that are not both UTF-8 text
    /// (an odd last element is dropped); anything but an array is no pairs.
    fn pairs(&mut self) -> Option<Vec<(String, String)>> {
        let head = self.head()?;
        let Head::Array(Some(len)) = head else {
            self.skip_rest(&head)?;
            return Some(Vec::new());
        };
        let mut out = Vec::with_capacity(len / 2);
        for _ in 0..len / 2 {
            if let (Some(field), Some(value)) = (self.text()?, self.text()?) {
                out.push((field, value));
            }
        }
        if len % 2 == 1 {
            self.text()?;
        }
        Some(out)
    }

    /// One `[entry-id, [field, value, …]]` entry; `None` inside when it is not one (its id is
    /// not text, or it has no fields element): skipped.
    fn entry(&mut self) -> Option<Option<StreamEntry>> {
        let head = self.head()?;
        let Head::Array(Some(len)) = head else {
            self.skip_rest(&head)?;
            return Some(None);
        };
        let mut id = None;
        let mut fields = None;
        for index in 0..len {
            match index {
                0 => id = self.text()?,
                1 => fields = Some(self.pairs()?),
                _ => {
                    let head = self.head()?;
                    self.skip_rest(&head)?;
                }
            }
        }
        Some(id.zip(fields))
    }

    /// An array of entries, appended to `out`; anything but an array holds none.
    fn entries(&mut self, out: &mut Vec<StreamEntry>) -> Option<()> {
        let head = self.head()?;
        let Head::Array(Some(len)) = head else {
            return self.skip_rest(&head);
        };
        out.reserve(len);
        for _ in 0..len {
            if let Some(entry) = self.entry()? {
                out.push(entry);
            }
        }
        Some(())
    }
}

/// `bytes` as text if they are UTF-8. ASCII (every job's fields but a payload's non-ASCII
/// characters) is told word by word first: `str::from_utf8` alone measured ~0.1k instructions
/// a field.
fn utf8(bytes: &[u8]) -> Option<String> {
    if bytes.is_ascii() {
        // SAFETY: ASCII bytes are valid UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) }.to_owned());
    }
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// The entries of an XRANGE reply, `[[entry-id, [field, value, …]], …]`, from its RESP2 bytes,
/// in order. `None` when the bytes are not RESP2 (Redis never makes such a reply).
pub fn read_entry_list(proto: &[u8]) -> Option<Vec<StreamEntry>> {
    let mut out = Vec::new();
    Reader::new(proto).entries(&mut out)?;
    Some(out)
}

/// The pairs of a flat `[field, value, …]` reply (HGETALL), from its RESP2 bytes; pairs that
/// are not both UTF-8 text are skipped. `None` when the bytes are not RESP2.
pub fn read_pairs(proto: &[u8]) -> Option<Vec<(String, String)>> {
    Reader::new(proto).pairs()
}

/// The entries of an XREADGROUP (or XREAD) reply, `[[stream, [[entry-id, [field, value, …]],
/// …]], …]` or the null array, from its RESP2 bytes: of every stream its second element's
/// entries, in order. `None` when the bytes are not RESP2 (Redis never makes such a reply).
pub fn read_entries(proto: &[u8]) -> Option<Vec<StreamEntry>> {
    let mut reader = Reader::new(proto);
    let mut out = Vec::new();
    let head = reader.head()?;
    let Head::Array(Some(streams)) = head else {
        return Some(out);
    };
    for _ in 0..streams {
        let head = reader.head()?;
        let Head::Array(Some(len)) = head else {
            reader.skip_rest(&head)?;
            continue;
        };
        for index in 0..len {
            if index == 1 {
                reader.entries(&mut out)?;
            } else {
                let head = reader.head()?;
                reader.skip_rest(&head)?;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> String {
        format!("${}\r\n{s}\r\n", s.len())
    }

    fn entry(id: &str, fields: &[&str]) -> String {
        let mut out = format!("*2\r\n{}*{}\r\n", bulk(id), fields.len());
        for field in fields {
            out.push_str(&bulk(field));
        }
        out
    }

    fn owned(entries: &[(&str, &[(&str, &str)])]) -> Vec<StreamEntry> {
        entries
            .iter()
            .map(|(id, fields)| {
                (
                    id.to_string(),
                    fields
                        .iter()
                        .map(|(f, v)| (f.to_string(), v.to_string()))
                        .collect(),
                )
            })
            .collect()
    }

    #[test]
    fn reads_the_entries_of_every_stream_in_order() {
        let reply = format!(
            "*2\r\n*2\r\n{}*2\r\n{}{}*2\r\n{}*1\r\n{}",
            bulk("zrq:{q}:s0"),
            entry("1-1", &["task", "noop", "payload", "{\"a\":\"x\\r\\ny\"}"]),
            entry("1-2", &["job", "j2"]),
            bulk("zrq:{q}:s1"),
            entry("2-0", &[]),
        );
        let read = read_entries(reply.as_bytes()).unwrap();
        assert_eq!(
            read,
            owned(&[
                (
                    "1-1",
                    &[("task", "noop"), ("payload", "{\"a\":\"x\\r\\ny\"}")]
                ),
                ("1-2", &[("job", "j2")]),
                ("2-0", &[]),
            ])
        );
    }

    #[test]
    fn a_value_may_hold_crlf_and_any_length() {
        let value = "a\r\nb\r\n".repeat(100);
        let reply = format!(
            "*1\r\n*2\r\n{}*1\r\n{}",
            bulk("s"),
            entry("5-5", &["v", &value])
        );
        let read = read_entries(reply.as_bytes()).unwrap();
        assert_eq!(read, owned(&[("5-5", &[("v", value.as_str())])]));
    }

    #[test]
    fn nothing_new_is_no_entries() {
        assert_eq!(read_entries(b"*-1\r\n").unwrap(), Vec::new());
        assert_eq!(read_entries(b"*0\r\n").unwrap(), Vec::new());
        assert_eq!(read_entries(b"$-1\r\n").unwrap(), Vec::new());
        assert_eq!(
            read_entries(b"*1\r\n*2\r\n$1\r\ns\r\n*0\r\n").unwrap(),
            Vec::new()
        );
    }

    #[test]
    fn skips_what_is_not_text_as_the_reply_walk_did() {
        // A nil entry (a deleted one in a pending list), a non-UTF-8 value, an integer field,
        // a nested array as a value, an odd last element, a status string as text.
        let reply = format!(
            "*1\r\n*2\r\n{}*4\r\n*-1\r\n{}*2\r\n{}*7\r\n{}{}:5\r\n{}{}*2\r\n:1\r\n:2\r\n{}\
             *2\r\n+3-3\r\n*2\r\n+f\r\n{}",
            bulk("s"),
            entry("1-0", &["a", "b"]),
            bulk("2-0"),
            bulk("x"),
            "$2\r\n@@\r\n",
            bulk("y"),
            bulk("z"),
            bulk("odd"),
            bulk("v"),
        );
        // The marker's two bytes become two that are not UTF-8.
        let at = reply.find("@@").unwrap();
        let mut bytes = reply.into_bytes();
        bytes[at..at + 2].copy_from_slice(&[0xff, 0xfe]);
        let read = read_entries(&bytes).unwrap();
        assert_eq!(
            read,
            owned(&[("1-0", &[("a", "b")]), ("2-0", &[]), ("3-3", &[("f", "v")])])
        );
    }

    #[test]
    fn reads_an_entry_list_and_flat_pairs() {
        let list = format!(
            "*2\r\n{}{}",
            entry("1-1", &["id", "j1"]),
            entry("1-2", &["a", "b", "odd"])
        );
        assert_eq!(
            read_entry_list(list.as_bytes()),
            Some(owned(&[("1-1", &[("id", "j1")]), ("1-2", &[("a", "b")])]))
        );
        assert_eq!(read_entry_list(b"*0\r\n"), Some(Vec::new()));
        let pairs = format!(
            "*5\r\n{}{}{}:7\r\n{}",
            bulk("f"),
            bulk("v"),
            bulk("g"),
            bulk("x")
        );
        assert_eq!(
            read_pairs(pairs.as_bytes()),
            Some(vec![("f".to_string(), "v".to_string())])
        );
        assert_eq!(read_pairs(b"*0\r\n"), Some(Vec::new()));
        assert_eq!(read_pairs(b"*2\r\n$1\r\nf\r\n"), None);
        assert_eq!(read_entry_list(b"*1\r\n*2\r\n$1\r\n"), None);
    }

    #[test]
    fn bytes_that_are_not_resp2_are_none_and_never_panic() {
        let good = format!(
            "*1\r\n*2\r\n{}*1\r\n{}",
            bulk("s"),
            entry("1-1", &["a", "b"])
        );
        for cut in 0..good.len() {
            assert_eq!(read_entries(&good.as_bytes()[..cut]), None, "cut at {cut}");
        }
        for bad in [
            &b""[..],
            b"*",
            b"*x\r\n",
            b"*-2\r\n",
            b"$5\r\nab\r\n",
            b"*1\r\n$99999999999999999999\r\n",
            b"*1\r\n*18446744073709551615\r\n",
            b"%1\r\n",
            b"*-0\r\n",
            b"*1-\r\n",
            b"$-1\n",
            b"*1\r\n$2\r\nab\n",
        ] {
            assert_eq!(read_entries(bad), None);
        }
    }
}
