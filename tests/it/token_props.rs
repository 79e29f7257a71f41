//! Properties of the token contract (protocol/token.md) over random verifiers and times: however a
//! person writes a token it reads back, and no single typo or adjacent swap ever logs in.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use moauth::core::token::{Body, DEFAULT_KEYWORDS, Token, TokenError, Verifier, parse_body};
use proptest::prelude::*;

const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn keywords() -> Vec<String> {
    DEFAULT_KEYWORDS.iter().map(|k| k.to_string()).collect()
}

fn tokens() -> impl Strategy<Value = Token> {
    (any::<[u8; 32]>(), 0..1u64 << 35).prop_map(|(bytes, issued_at)| {
        let verifier = Verifier::from_base64url(&URL_SAFE_NO_PAD.encode(bytes)).unwrap();
        Token::for_verifier(&verifier, issued_at)
    })
}

/// How one symbol is written: which spelling, and whether as a full-width form.
fn spelling(symbol: char, pick: u8, full_width: bool) -> char {
    let spellings: &[char] = match symbol {
        '1' => &['1', 'I', 'i', 'L', 'l'],
        '0' => &['0', 'O', 'o'],
        c => &[c, c.to_ascii_lowercase()],
    };
    let c = spellings[usize::from(pick) % spellings.len()];
    if full_width {
        char::from_u32(u32::from(c) + 0xFEE0).unwrap()
    } else {
        c
    }
}

/// A separator run (possibly empty) before a symbol, in the forms phones produce.
fn separator() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "-", " ", "\u{3000}", "\u{2013}", "\u{2212}", "\u{FF0D}",
    ]);
    prop::collection::vec(piece, 0..3).prop_map(|pieces| pieces.concat())
}

/// The token written symbol by symbol with random spellings and separators.
fn written(token: Token) -> impl Strategy<Value = String> {
    let symbols = prop::collection::vec((any::<u8>(), any::<bool>(), separator()), 30);
    symbols.prop_map(move |choices| {
        let mut text = String::new();
        for (i, (symbol, (pick, full_width, sep))) in
            token.compact().chars().zip(choices).enumerate()
        {
            if i > 0 {
                text.push_str(&sep);
            }
            text.push(spelling(symbol, pick, full_width));
        }
        text
    })
}

fn keyword_prefix() -> impl Strategy<Value = String> {
    let keyword = prop::sample::select(DEFAULT_KEYWORDS.to_vec());
    let gap = prop::sample::select(vec!["", " ", "  ", ":", " : ", "：", "\u{3000}", "\n"]);
    prop::option::of((keyword, gap))
        .prop_map(|kw| kw.map(|(k, g)| format!("{k}{g}")).unwrap_or_default())
}

fn trailer() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "",
        " ",
        "\nSent from my iPhone",
        " -- Alice",
        ". Thanks!",
        "【发自我的手机】",
        " 1234",
    ])
}

fn is_refused_as_mistyped(body: &Body) -> bool {
    matches!(
        body,
        Body::Bad {
            error: TokenError::BadCheck | TokenError::UnknownVersion(_),
            claimed: Some(_)
        }
    )
}

proptest! {
    #[test]
    fn any_way_of_writing_a_token_reads_back(
        (token, text) in tokens().prop_flat_map(|t| (Just(t), written(t))),
        leading in prop::sample::select(vec!["", " ", "\u{3000}"]),
        prefix in keyword_prefix(),
        trailer in trailer(),
    ) {
        let body = format!("{leading}{prefix}{text}{trailer}");
        prop_assert_eq!(parse_body(&body, &keywords()), Body::Login(token), "{:?}", body);
        prop_assert_eq!(Token::parse(&text), Ok(token), "{:?}", text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn every_single_substitution_is_refused(token in tokens()) {
        let compact: Vec<char> = token.compact().chars().collect();
        for position in 0..compact.len() {
            for other in ALPHABET.chars().filter(|&c| c != compact[position]) {
                let mut typo = compact.clone();
                typo[position] = other;
                let text: String = typo.into_iter().collect();
                let body = parse_body(&format!("LOGIN {text}"), &keywords());
                prop_assert!(is_refused_as_mistyped(&body), "{} gave {:?}", text, body);
                if position > 20 {
                    let expected = Body::Bad { error: TokenError::BadCheck, claimed: Some(token.challenge()) };
                    prop_assert_eq!(body, expected);
                }
            }
        }
    }

    #[test]
    fn every_adjacent_swap_is_refused(token in tokens()) {
        let compact: Vec<char> = token.compact().chars().collect();
        for position in 0..compact.len() - 1 {
            if compact[position] == compact[position + 1] {
                continue;
            }
            let mut swapped = compact.clone();
            swapped.swap(position, position + 1);
            let text: String = swapped.into_iter().collect();
            let body = parse_body(&text, &keywords());
            prop_assert!(is_refused_as_mistyped(&body), "{} gave {:?}", text, body);
        }
    }
}
