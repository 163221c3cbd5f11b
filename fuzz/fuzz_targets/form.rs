//! The form decoder that refuses repeated parameters (`parse_form`, RFC
//! 6749 §3.2).
//!
//! Checks: no panic; a body is refused exactly when a name repeats, and
//! otherwise decodes to what `form_urlencoded` reads; and any set of
//! distinct names and values round-trips through an encoded body.
#![no_main]

use std::collections::{HashMap, HashSet};

use arbitrary::Arbitrary;
use ficha::oauth::parse_form;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Input {
    Raw(Vec<u8>),
    Pairs(Vec<(String, String)>),
}

fuzz_target!(|input: Input| match input {
    Input::Raw(body) => {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
        let names: HashSet<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        match parse_form(&body) {
            Ok(map) => {
                assert_eq!(names.len(), pairs.len(), "a repeat accepted");
                assert_eq!(map, pairs.into_iter().collect::<HashMap<_, _>>());
            }
            Err(_) => assert!(names.len() < pairs.len(), "refused without a repeat"),
        }
    }
    Input::Pairs(pairs) => {
        let map: HashMap<String, String> = pairs.into_iter().collect();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&map)
            .finish();
        assert_eq!(parse_form(body.as_bytes()).expect("distinct names"), map);
    }
});
