//! The zrq Redis Functions library (`#!lua name=zrq`), as text ready for `FUNCTION LOAD REPLACE`.

/// The library source.
pub fn library() -> &'static str {
    include_str!("../zrq.lua")
}
