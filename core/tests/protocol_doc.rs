//! docs/PROTOCOL.md is the contract for clients in other languages: it must name every command,
//! error code, key, job field and state that the code defines.

use zrq_core::{
    config::SETTINGS, error::ErrorCode, job::FIELDS, keys::KEYS, spec::COMMANDS, state::State,
};

fn protocol() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md");
    // A missing file reads as empty, and every assertion below then fails with its name.
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn documents_every_command_with_its_syntax() {
    let doc = protocol();
    for command in COMMANDS {
        let syntax = command.syntax.replace('|', "\\|");
        assert!(
            doc.contains(&format!("`{syntax}`")),
            "syntax of {} is not documented as written in spec.rs",
            command.name
        );
    }
}

#[test]
fn documents_every_error_code() {
    let doc = protocol();
    for code in ErrorCode::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", code.as_str())),
            "error code {}",
            code.as_str()
        );
    }
}

#[test]
fn documents_every_key_field_and_state() {
    let doc = protocol();
    for key in KEYS {
        let shown = if key.suffix.ends_with(':') {
            format!("`zrq:{{Q}}:{}", key.suffix)
        } else {
            format!("`zrq:{{Q}}:{}`", key.suffix)
        };
        assert!(doc.contains(&shown), "key {}", key.suffix);
    }
    for (field, _) in FIELDS {
        assert!(doc.contains(&format!("| `{field}` |")), "job field {field}");
    }
    for state in State::ALL {
        assert!(
            doc.contains(&format!("| `{}` |", state.as_str())),
            "state {state}"
        );
    }
}

#[test]
fn documents_every_config_with_its_default_and_meaning() {
    let doc = protocol();
    for setting in SETTINGS {
        let row = format!(
            "| `zrq.{}` | {} | {}",
            setting.name, setting.default, setting.meaning
        );
        assert!(doc.contains(&row), "config row: {row}");
    }
}
