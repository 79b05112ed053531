//! Go durations and socket addresses from config strings: never a panic; accepted durations are
//! within the documented bound.
#![no_main]
use baton::sansio::config::value::{parse_addr, parse_duration_ms, MAX_DURATION_MS};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(ms) = parse_duration_ms(s) {
            assert!(ms <= MAX_DURATION_MS);
        }
        let _ = parse_addr(s);
    }
});
