//! Any SMS body: the parser never panics, and a token it accepts reads back the same from its
//! canonical form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moauth::core::token::{Body, DEFAULT_KEYWORDS, Token, parse_body};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let keywords: Vec<String> = DEFAULT_KEYWORDS.iter().map(|k| k.to_string()).collect();
    if let Body::Login(token) = parse_body(&text, &keywords) {
        assert_eq!(Token::parse(&token.to_string()), Ok(token));
    }
    let _ = Token::parse(&text);
});
