//! No drift between the module's definitions (zrq-core) and the Lua library. The library's
//! constants (config defaults, error codes, key kinds, job fields, states, options, the command
//! table) are generated from zrq-core by zrq-lua's build.rs, so they cannot drift; what is still
//! written by hand is checked here: one function per command, flagged like the command (a command
//! added to the core without its Lua function fails here), the error codes the library raises,
//! and the commands its ACL check covers.

use std::collections::BTreeMap;

use zrq_core::spec::COMMANDS;
use zrq_core::ErrorCode;
use zrq_tests::redis::{self, Value};
use zrq_tests::Backend;

/// Flags of every function of the `zrq` library, as FUNCTION LIST reports them.
fn lua_functions() -> BTreeMap<String, Vec<String>> {
    let server = Backend::Lua.server();
    let list: Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .arg("LIBRARYNAME")
        .arg(zrq_lua::LIBRARY_NAME)
        .query(&mut server.conn())
        .expect("FUNCTION LIST");
    fn text(v: &Value) -> String {
        match v {
            Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
            Value::SimpleString(s) => s.clone(),
            other => format!("{other:?}"),
        }
    }
    fn field<'a>(record: &'a Value, name: &str) -> &'a Value {
        let Value::Array(items) = record else {
            panic!("not a record: {record:?}")
        };
        items
            .chunks(2)
            .find(|pair| text(&pair[0]) == name)
            .map(|pair| &pair[1])
            .unwrap_or_else(|| panic!("no {name} in {record:?}"))
    }
    let Value::Array(libraries) = list else {
        panic!("FUNCTION LIST: {list:?}")
    };
    assert_eq!(libraries.len(), 1, "exactly one zrq library: {libraries:?}");
    let Value::Array(functions) = field(&libraries[0], "functions") else {
        panic!("functions: {libraries:?}")
    };
    functions
        .iter()
        .map(|f| {
            let flags = match field(f, "flags") {
                Value::Array(items) | Value::Set(items) => items.iter().map(text).collect(),
                other => panic!("flags: {other:?}"),
            };
            (text(field(f, "name")), flags)
        })
        .collect()
}

#[test]
fn the_library_has_one_function_per_command_flagged_like_it() {
    let got = lua_functions();
    let mut want: BTreeMap<String, Vec<String>> = COMMANDS
        .iter()
        .map(|spec| {
            // Read-only commands cannot write; write commands that the module does not flag
            // `deny-oom` may run when Redis is out of memory, as the module's do.
            let flags = if spec.readonly {
                vec!["no-writes".to_string()]
            } else if spec.flags.split(' ').any(|f| f == "deny-oom") {
                Vec::new()
            } else {
                vec!["allow-oom".to_string()]
            };
            (spec.function_name(), flags)
        })
        .collect();
    want.insert("zrq_version".to_string(), vec!["no-writes".to_string()]);
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "functions missing from the Lua library: {missing:?}; functions it has that no command \
         explains: {extra:?}"
    );
    assert_eq!(got, want, "function flags");
}

#[test]
fn zrq_version_reports_the_library_version() {
    let server = Backend::Lua.server();
    let version: String = redis::cmd("FCALL")
        .arg("zrq_version")
        .arg(0)
        .query(&mut server.conn())
        .expect("FCALL zrq_version");
    assert_eq!(version, zrq_lua::VERSION);
    assert!(zrq_lua::library().contains(&format!("local VERSION = '{}'", zrq_lua::VERSION)));
}

#[test]
fn error_codes_are_the_core_table() {
    // The library's table of codes is generated from ErrorCode::ALL (zrq-lua's build.rs). Every
    // error it raises goes through `fail('<CODE>', …)` with a literal code of the table, and every
    // code of the table is raised somewhere; error replies are built in one place.
    let want: Vec<String> = ErrorCode::ALL
        .iter()
        .map(|c| c.as_str().to_string())
        .collect();
    let source = zrq_lua::library();
    let mut used: Vec<String> = source
        .match_indices("fail(")
        .filter(|(at, _)| {
            let line_start = source[..*at].rfind('\n').map_or(0, |i| i + 1);
            let in_comment = source[line_start..*at].contains("--");
            !in_comment && !source[..*at].ends_with("function ")
        })
        .map(|(at, _)| {
            let rest = &source[at + 5..];
            let code = rest
                .strip_prefix('\'')
                .and_then(|r| r.split_once('\''))
                .map(|(code, _)| code.to_string());
            code.unwrap_or_else(|| panic!("fail( without a literal code: {}", &rest[..40]))
        })
        .collect();
    used.sort();
    used.dedup();
    let mut all = want.clone();
    all.sort();
    assert_eq!(used, all, "codes raised by the library");
    assert_eq!(
        source.matches("redis.error_reply(").count(),
        2,
        "error replies are made in `run` only (a zrq error, or INTERNAL)"
    );
}

#[test]
fn the_acl_check_covers_every_command_the_library_calls() {
    // Functions check every command they may call before their first write (`acl_probes`), so a
    // command missing from that list could be denied half-way through. PUBLISH is best-effort
    // (checked where events are sent), so is INFO (memory, before schedule ticks: a caller who may
    // not run it fires them) and SCAN is only used by zrq_queues, which has no queue.
    let source = zrq_lua::library();
    let body_at = source
        .find("local function acl_probes")
        .expect("acl_probes in the library");
    let body = &source[body_at..body_at + source[body_at..].find("\nend").expect("its end")];
    let probed: std::collections::BTreeSet<&str> = body
        .split("{ ")
        .skip(1)
        .filter_map(|entry| entry.split('\'').nth(1))
        .collect();
    let mut called: std::collections::BTreeSet<&str> = source
        .split("call('")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next())
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_uppercase()))
        .collect();
    called.retain(|c| !matches!(*c, "PUBLISH" | "INFO" | "SCAN"));
    assert!(called.len() > 20, "found the library's calls: {called:?}");
    let missing: Vec<&&str> = called.difference(&probed).collect();
    assert!(
        missing.is_empty(),
        "called but not checked up front: {missing:?}"
    );
}
