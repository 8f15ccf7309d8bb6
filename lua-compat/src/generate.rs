//! The Lua text of zrq-core's definitions: the library's constants are generated from the Rust
//! ones, never copied by hand. Used by build.rs, which writes the text to `OUT_DIR/core.lua`
//! (spliced into the library after its header) and folds it into the library version.

use zrq_core::commands::{
    ack, batch, enqueue, fail, fetch, promote, queues, reclaim, release, requeue, result, schedule,
    touch, PAGE_DEFAULT_COUNT, PAGE_OPTIONS, PARENT_FAIL_POLICIES,
};
use zrq_core::job::{FieldKind, DEFAULTS, DERIVED, ENTRY_DERIVED, FIELDS};
use zrq_core::reply::code;
use zrq_core::spec::COMMANDS;
use zrq_core::state::State;
use zrq_core::{args, config, keys, packed, ErrorCode};

/// A Lua string literal.
fn string(text: &str) -> String {
    let mut lua = String::from("'");
    for c in text.chars() {
        match c {
            '\'' | '\\' => {
                lua.push('\\');
                lua.push(c);
            }
            '\n' => lua.push_str("\\n"),
            c => lua.push(c),
        }
    }
    lua.push('\'');
    lua
}

/// `{ 'a', 'b' }`.
fn list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items: Vec<String> = items.into_iter().map(string).collect();
    format!("{{ {} }}", items.join(", "))
}

/// A table key: `a` if it is a Lua name, else `['a-b']`.
fn table_key(key: &str) -> String {
    let plain = key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain {
        key.to_string()
    } else {
        format!("[{}]", string(key))
    }
}

/// `{ a = true, b = true }` (keys that are Lua names), or `{ ['a-b'] = true }`.
fn set<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    map(items.into_iter().map(|item| (item, "true".to_string())))
}

/// `{ a = <lua>, ['b:'] = <lua> }`: each key with its value's Lua text.
fn map<'a>(entries: impl IntoIterator<Item = (&'a str, String)>) -> String {
    let entries: Vec<String> = entries
        .into_iter()
        .map(|(key, value)| format!("{} = {value}", table_key(key)))
        .collect();
    format!("{{ {} }}", entries.join(", "))
}

/// The library's constants, from zrq-core: Lua `local` declarations, each naming its source.
pub fn core_lua() -> String {
    let mut lua = String::from(
        "--------------------------------------------------------------------------------------------------\n\
         -- zrq-core's definitions, generated from the Rust ones by lua-compat/build.rs (src/generate.rs):\n\
         -- change them in Rust, never here.\n\
         --------------------------------------------------------------------------------------------------\n\n",
    );
    let mut line = |text: String| {
        lua.push_str(&text);
        lua.push('\n');
    };

    line(
        "-- The module configs' defaults (zrq_core::config::SETTINGS): a script cannot read module"
            .into(),
    );
    line("-- configs, so the library applies their defaults (docs/LUA.md).".into());
    line("local CONFIG = {".into());
    for setting in config::SETTINGS {
        line(format!(
            "    {} = {}, -- zrq.{}: {}",
            setting.name.replace('-', "_"),
            setting.default,
            setting.name,
            setting.meaning
        ));
    }
    line("}\n".into());

    line(
        "-- Error codes (zrq_core::ErrorCode::ALL): every error reply starts with one of them."
            .into(),
    );
    line(format!(
        "local KNOWN_CODE = {}\n",
        set(ErrorCode::ALL.iter().map(|code| code.as_str()))
    ));

    line("-- Argument rules (zrq_core::args).".into());
    line(format!(
        "local MAX_NAME_LEN, MAX_DURATION_MS, MAX_RETRIES, MAX_COUNT = {}, {}, {}, {}",
        args::MAX_NAME_LEN,
        args::MAX_DURATION_MS,
        args::MAX_RETRIES,
        args::MAX_COUNT
    ));
    line(format!(
        "local REPEATABLE = {} -- options given more than once",
        set(args::REPEATABLE)
    ));
    line(format!(
        "local FLAG_OPTIONS = {} -- options without a value\n",
        set(args::FLAGS)
    ));

    line(
        "-- The key schema (zrq_core::keys): the consumer group, the field of a stream entry, the"
            .into(),
    );
    line(
        "-- highest priority, and the suffix of every key kind of a queue (`job:` + id, …).".into(),
    );
    line(format!(
        "local GROUP, ENTRY_FIELD, MAX_PRIORITY = {}, {}, {}",
        string(keys::GROUP),
        string(keys::ENTRY_FIELD),
        keys::MAX_PRIORITY
    ));
    line(format!(
        "local KEY_KINDS = {}",
        list(keys::KEYS.iter().map(|k| k.suffix))
    ));
    line(
        "-- Keys only the library writes (the module blocks clients natively), and the suffix of"
            .into(),
    );
    line("-- the queue's Pub/Sub channel.".into());
    line(format!(
        "local LUA_ONLY_KEY_KINDS = {}",
        list(keys::LUA_ONLY_KEYS.iter().map(|k| k.suffix))
    ));
    line(format!("local EVENTS = {}", string(keys::EVENTS)));
    line("-- Each key kind's Redis type (KeySpec::redis_type), by suffix: what WRONGTYPE checks expect.".into());
    line(format!(
        "local KEY_TYPE = {}",
        map(keys::KEYS
            .iter()
            .chain(keys::LUA_ONLY_KEYS)
            .map(|k| (k.suffix, string(k.redis_type))))
    ));
    line(
        "-- How many wake-up tokens a queue keeps at most (docs/LUA.md, \"Blocking FETCH\")."
            .into(),
    );
    line(format!("local WAKE_CAP = {}\n", keys::WAKE_CAP));

    line("-- Job states (zrq_core::state::State::ALL), which are valid, which are final.".into());
    line(format!(
        "local STATES = {}",
        list(State::ALL.iter().map(|s| s.as_str()))
    ));
    line(format!(
        "local IS_STATE = {}",
        set(State::ALL.iter().map(|s| s.as_str()))
    ));
    line(format!(
        "local IS_FINAL = {}\n",
        set(State::ALL
            .iter()
            .filter(|s| s.is_final())
            .map(|s| s.as_str()))
    ));

    line(
        "-- The job record's fields and their kinds, in order (zrq_core::job::FIELDS), each stored"
            .into(),
    );
    line("-- field with its one-letter tag in a packed record (zrq_core::packed::TAGS).".into());
    line("local FIELDS = {".into());
    for (name, kind) in FIELDS {
        let kind = match kind {
            FieldKind::Text => "text",
            FieldKind::Integer => "integer",
        };
        match packed::tag_of(name) {
            Some(tag) => line(format!(
                "    {{ {}, {}, {} }},",
                string(name),
                string(kind),
                string(&char::from(tag).to_string())
            )),
            None => line(format!("    {{ {}, {} }},", string(name), string(kind))),
        }
    }
    line("}\n".into());
    line(
        "-- The compact record: fields not stored, their place says them (zrq_core::job::DERIVED),"
            .into(),
    );
    line(format!("local IS_DERIVED = {}", set(DERIVED)));
    line("-- the record fields a plain job's inline entry leaves out, its place says them".into());
    line("-- (zrq_core::job::ENTRY_DERIVED),".into());
    line(format!("local ENTRY_DERIVED = {}", set(ENTRY_DERIVED)));
    line("-- and integer fields not stored at their default, which readers fill in".into());
    line("-- (zrq_core::job::DEFAULTS).".into());
    let defaults: Vec<String> = DEFAULTS
        .iter()
        .map(|(name, value)| format!("{name} = {value}"))
        .collect();
    line(format!(
        "local DEFAULT_OF = {{ {} }}\n",
        defaults.join(", ")
    ));

    line("-- The integers with which commands say what they did (zrq_core::reply::code).".into());
    line(format!(
        "local REPLY = {{ DONE = {}, NOTHING = {}, CANCELLED = {}, CANCEL_REQUESTED = {} }}\n",
        code::DONE,
        code::NOTHING,
        code::CANCELLED,
        code::CANCEL_REQUESTED
    ));

    line("-- Constants of single commands, by their Rust module: CORE.<module>.<NAME> is".into());
    line("-- zrq_core::commands::<module>::<NAME>.".into());
    line("local CORE = {".into());
    line(format!(
        "    enqueue = {{ DEFAULT_RETRIES = {}, DEFAULT_TIMEOUT_MS = {}, MAX_AT_MS = {},\n        OPTIONS = {},\n        PARENT_FAIL_POLICIES = {} }},",
        enqueue::DEFAULT_RETRIES,
        enqueue::DEFAULT_TIMEOUT_MS,
        enqueue::MAX_AT_MS,
        list(enqueue::OPTIONS),
        list(PARENT_FAIL_POLICIES)
    ));
    line(format!(
        "    fetch = {{ OPTIONS = {} }},",
        list(fetch::OPTIONS)
    ));
    line(format!("    ack = {{ OPTIONS = {} }},", list(ack::OPTIONS)));
    line(format!(
        "    fail = {{ OPTIONS = {}, MAX_ERROR_LEN = {} }},",
        list(fail::OPTIONS),
        fail::MAX_ERROR_LEN
    ));
    line(format!(
        "    touch = {{ OPTIONS = {} }},",
        list(touch::OPTIONS)
    ));
    line(format!(
        "    release = {{ OPTIONS = {} }},",
        list(release::OPTIONS)
    ));
    line(format!(
        "    reclaim = {{ OPTIONS = {}, DEFAULT_COUNT = {} }},",
        list(reclaim::OPTIONS),
        reclaim::DEFAULT_COUNT
    ));
    line(format!(
        "    result = {{ OPTIONS = {} }},",
        list(result::OPTIONS)
    ));
    line(format!(
        "    requeue = {{ OPTIONS = {} }},",
        list(requeue::OPTIONS)
    ));
    line(format!(
        "    queues = {{ OPTIONS = {}, DEFAULT_COUNT = {}, MAX_COUNT = {} }},",
        list(queues::OPTIONS),
        queues::DEFAULT_COUNT,
        queues::MAX_COUNT
    ));
    line(format!(
        "    batch = {{ OPTIONS = {} }},",
        list(batch::OPTIONS)
    ));
    line(format!(
        "    schedule = {{ JOB_OPTIONS = {} }},",
        list(schedule::JOB_OPTIONS)
    ));
    line(format!("    promote = {{ BATCH = {} }},", promote::BATCH));
    line(format!(
        "    paging = {{ OPTIONS = {}, DEFAULT_COUNT = {} }}, -- PAGE_OPTIONS, PAGE_DEFAULT_COUNT",
        list(PAGE_OPTIONS),
        PAGE_DEFAULT_COUNT
    ));
    line("}\n".into());

    line(
        "-- The command table (zrq_core::spec::COMMANDS): each command's function and whether it"
            .into(),
    );
    line("-- only reads (`no-writes`) or may be refused at maxmemory (the module's `deny-oom`); `register`".into());
    line("-- takes a function's flags from here.".into());
    line("local COMMANDS = {".into());
    for spec in COMMANDS {
        let deny_oom = spec.flags.split(' ').any(|flag| flag == "deny-oom");
        line(format!(
            "    {} = {{ readonly = {}, deny_oom = {} }},",
            spec.function_name(),
            spec.readonly,
            deny_oom
        ));
    }
    line("}\n".into());
    lua
}
