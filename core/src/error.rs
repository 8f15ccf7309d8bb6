//! The error table: every error zrq replies with starts with one of these codes.
//!
//! Errors are API: clients match on the code (the first word), people read the rest. Both backends
//! (module and Lua) produce exactly the same text for the same input; the conformance suite checks
//! it. Constructors live here so a given mistake is always described the same way.

use std::fmt;

/// The code that starts an error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The command was malformed: arity, unknown option, a value that is not a number or is out
    /// of range, an invalid name.
    Err,
    /// A key that zrq uses holds a value of another Redis type.
    WrongType,
    /// A payload or result argument is not valid JSON.
    BadJson,
    /// The command needs an existing job and there is none with that id.
    NoJob,
    /// A stored record could not be read (written by something other than zrq).
    Corrupt,
    /// The caller's ACL denies a Redis command the Lua library needs on the queue's keys (checked
    /// before the first write). The module never replies it: Redis checks a module command's ACL
    /// before it runs and refuses with its own `NOPERM` text.
    NoPerm,
    /// The command is well-formed but goes beyond a limit set by a module config (`zrq.*`).
    Limit,
    /// zrq hit a bug; the command was aborted and the server stays up.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the documentation table.
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::Err,
        ErrorCode::WrongType,
        ErrorCode::BadJson,
        ErrorCode::NoJob,
        ErrorCode::Corrupt,
        ErrorCode::NoPerm,
        ErrorCode::Limit,
        ErrorCode::Internal,
    ];

    /// The code as it appears at the start of the error reply.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Err => "ERR",
            ErrorCode::WrongType => "WRONGTYPE",
            ErrorCode::BadJson => "BADJSON",
            ErrorCode::NoJob => "NOJOB",
            ErrorCode::Corrupt => "CORRUPT",
            ErrorCode::NoPerm => "NOPERM",
            ErrorCode::Limit => "LIMIT",
            ErrorCode::Internal => "INTERNAL",
        }
    }
}

/// An error reply: a code and a sentence that names the offending argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZrqError {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// The human-readable rest of the reply.
    pub message: String,
}

impl fmt::Display for ZrqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ZrqError {}

/// Shows a user-supplied argument inside an error message: printable ASCII as is, anything else
/// escaped, and long values cut, so an error reply is always short, valid text.
pub fn show_arg(raw: &[u8]) -> String {
    const LIMIT: usize = 64;
    let mut out = String::new();
    for &b in raw.iter().take(LIMIT) {
        if (0x20..0x7f).contains(&b) && b != b'\'' && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    if raw.len() > LIMIT {
        out.push_str("...");
    }
    out
}

impl ZrqError {
    fn new(code: ErrorCode, message: String) -> Self {
        ZrqError { code, message }
    }

    /// The command got too few or too many arguments (same text as Redis' own).
    pub fn arity(command: &str) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("wrong number of arguments for '{command}' command"),
        )
    }

    /// An option name that the command does not know.
    pub fn unknown_option(raw: &[u8]) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("unknown option '{}'", show_arg(raw)),
        )
    }

    /// An option given without its value.
    pub fn missing_value(option: &str) -> Self {
        Self::new(ErrorCode::Err, format!("option {option} needs a value"))
    }

    /// An option given twice.
    pub fn repeated_option(option: &str) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("option {option} given more than once"),
        )
    }

    /// Two options that exclude each other.
    pub fn conflicting_options(first: &str, second: &str) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("options {first} and {second} cannot be combined"),
        )
    }

    /// A job that does not exist, where one is required.
    pub fn no_job(queue: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::NoJob,
            format!("no job '{id}' in queue '{queue}'"),
        )
    }

    /// `AFTER` names a job that does not exist.
    pub fn no_parent(queue: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::NoJob,
            format!("AFTER names job '{id}', which does not exist in queue '{queue}' (parents must be in the same queue)"),
        )
    }

    /// A producer-chosen `ID` of the form of a generated job id (an entry id, or one prefixed
    /// `p<n>:`): such ids name jobs held by their stream entries, so a producer may not take one.
    pub fn reserved_id(id: &str) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("ID must not have the form of a generated job id, got '{id}'"),
        )
    }

    /// A job that would depend on itself.
    pub fn self_dependency(id: &str) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("job '{id}' cannot run AFTER itself"),
        )
    }

    /// A batch id that is taken.
    pub fn batch_exists(queue: &str, id: &str) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("batch '{id}' already exists in queue '{queue}'"),
        )
    }

    /// An argument that is not one of the accepted words.
    pub fn not_one_of(what: &str, raw: &[u8], accepted: &[&str]) -> Self {
        Self::new(
            ErrorCode::Err,
            format!(
                "{what} must be one of {}, got '{}'",
                accepted.join(", "),
                show_arg(raw)
            ),
        )
    }

    /// Free text that is not UTF-8 or too long.
    pub fn bad_text(what: &str, max: usize) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("{what} must be UTF-8 text of at most {max} bytes"),
        )
    }

    /// A `CURSOR` that is not one this listing gave out (`expected` says what it accepts).
    pub fn invalid_cursor(raw: &[u8], expected: &str) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("CURSOR must be {expected}, got '{}'", show_arg(raw)),
        )
    }

    /// A malformed cron expression.
    pub fn bad_cron(detail: &str) -> Self {
        Self::new(
            ErrorCode::Err,
            format!("CRON expression is invalid: {detail}"),
        )
    }

    /// A value that is not a decimal integer in the allowed range.
    pub fn integer_out_of_range(what: &str, raw: &[u8], min: i64, max: i64) -> Self {
        Self::new(
            ErrorCode::Err,
            format!(
                "{what} must be an integer from {min} to {max}, got '{}'",
                show_arg(raw)
            ),
        )
    }

    /// A name (queue, task, id, consumer) that breaks the naming rule.
    pub fn invalid_name(what: &str, raw: &[u8]) -> Self {
        Self::new(
            ErrorCode::Err,
            format!(
                "{what} must be 1 to {} printable ASCII characters without spaces{}, got '{}'",
                crate::args::MAX_NAME_LEN,
                if what == "queue" { " or braces" } else { "" },
                show_arg(raw)
            ),
        )
    }

    /// A payload or result that is not JSON.
    pub fn bad_json(what: &str, detail: &str) -> Self {
        Self::new(
            ErrorCode::BadJson,
            format!("{what} is not valid JSON: {detail}"),
        )
    }

    /// A zrq key of the wrong Redis type.
    pub fn wrong_type(key: &str, found: &str, expected: &str) -> Self {
        Self::new(
            ErrorCode::WrongType,
            format!("key '{key}' holds a {found}, zrq expects a {expected}"),
        )
    }

    /// Something beyond a limit: `subject` says what and how much, then the config and its value.
    pub fn limit(subject: &str, setting: &crate::config::Setting, max: i64) -> Self {
        Self::new(
            ErrorCode::Limit,
            format!("{subject}: zrq.{} is {max}", setting.name),
        )
    }

    /// A stored record that zrq cannot read.
    pub fn corrupt(key: &str, detail: &str) -> Self {
        Self::new(
            ErrorCode::Corrupt,
            format!("'{key}' is not a zrq record: {detail}"),
        )
    }

    /// A Redis call failed in a way zrq does not expect.
    pub fn internal(detail: &str) -> Self {
        Self::new(ErrorCode::Internal, detail.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_an_uppercase_word() {
        for code in ErrorCode::ALL {
            let s = code.as_str();
            assert!(s.chars().all(|c| c.is_ascii_uppercase()), "{s}");
        }
    }

    #[test]
    fn display_starts_with_the_code() {
        let e = ZrqError::arity("zrq.ack");
        assert_eq!(
            e.to_string(),
            "ERR wrong number of arguments for 'zrq.ack' command"
        );
    }

    #[test]
    fn show_arg_escapes_and_truncates() {
        assert_eq!(show_arg(b"abc"), "abc");
        assert_eq!(show_arg(b"a\xffb'"), "a\\xffb\\x27");
        assert_eq!(show_arg(&[b'x'; 70]), format!("{}...", "x".repeat(64)));
    }
}
