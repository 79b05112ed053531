//! The whole config path: JSON pre-pass, serde-json-core, validation, and rendering back.
//! Any input must give a `Config` or a `ConfigError`, never a panic; a config that parses must
//! render to JSON that parses to the same config.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = baton::sansio::config::parse(data) {
        let mut text = String::new();
        baton::sansio::config::render::write_json(&mut text, &cfg).unwrap();
        assert_eq!(baton::sansio::config::parse(text.as_bytes()).unwrap(), cfg, "{text}");
    }
});
