//! Hot-restart records: decoding never panics, and whatever decodes re-encodes to a record that
//! decodes to the same message.
#![no_main]
use baton::handoff::codec::{decode, encode, MAX_FRAME};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&m, &mut buf).unwrap();
        assert_eq!(decode(&buf[..n]).unwrap(), m);
    }
});
