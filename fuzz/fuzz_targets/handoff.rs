//! Hot-restart and connection-transfer records: decoding never panics, and whatever decodes
//! re-encodes to a record that decodes to the same message (a DATA record with the same bytes).
#![no_main]
use baton::sansio::codec::{decode, encode, encode_data, Msg, MAX_FRAME};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(m) = decode(data) {
        let mut buf = [0u8; MAX_FRAME];
        let n = match &m {
            Msg::Data { conn, flow, len } => {
                let bytes = &data[data.len() - *len as usize..];
                let n = encode_data(*conn, *flow, bytes, &mut buf).unwrap();
                assert_eq!(&buf[n - bytes.len()..n], bytes);
                n
            }
            _ => encode(&m, &mut buf).unwrap(),
        };
        assert_eq!(decode(&buf[..n]).unwrap(), m);
    }
});
