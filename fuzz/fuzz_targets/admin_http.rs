//! The admin request parser on arbitrary bytes, whole and in every prefix a slow client could
//! have sent so far: never a panic, and a complete request stays complete as bytes are added.
#![no_main]
use baton::sansio::http::{parse, Parsed};
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let data = &data[..data.len().min(2 * baton::sansio::http::MAX_REQUEST)];
    let mut done = None;
    for end in 0..=data.len() {
        let p = parse(&data[..end]);
        if let Some(first) = done {
            assert_ne!(p, Parsed::Incomplete, "{first:?} became incomplete");
        } else if p != Parsed::Incomplete {
            done = Some(p);
        }
    }
});
