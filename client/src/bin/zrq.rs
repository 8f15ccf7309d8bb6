//! The `zrq` command-line tool.

fn main() {}
