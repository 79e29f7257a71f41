//! The login token `T`: what an app puts in the SMS composer and what moauth reads back from an MO.
//!
//! ```text
//! T = version(1) ‖ challenge(20) ‖ issued_at(7) ‖ check(2)      30 Crockford base32 symbols
//! ```
//!
//! The module is pure (no clock, no store, no I/O) so that the contract in `protocol/token.md` can
//! be tested exhaustively and the daemon decides separately what a token is worth. Its shape
//! follows who holds what:
//! - [`Verifier`] is the app's secret. It never leaves the app except to redeem a login, so it
//!   cannot be printed by accident.
//! - [`Challenge`] is public (it travels in the SMS) and is the key logins are stored under, so it
//!   is kept as its canonical ASCII symbols, ready to be a store key or a log field.
//! - [`Token`] is what a person types. The check lets moauth refuse a mistyped token before any
//!   store look-up, and [`Body`] tells the daemon what an SMS asked for, including which login a
//!   damaged token probably meant.

mod body;
mod check;
mod crockford;

use std::fmt::{self, Write as _};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use thiserror::Error;

pub use body::{
    Body, Command, Commands, DEFAULT_COMMANDS, DEFAULT_KEYWORDS, parse_body, parse_body_with,
};

/// The only layout so far; a different first symbol means a newer app.
const VERSION: u8 = 1;
/// Symbols in a token.
const LEN: usize = 30;
const CHALLENGE: std::ops::Range<usize> = 1..21;
const ISSUED_AT: std::ops::Range<usize> = 21..28;
const CHECK: std::ops::Range<usize> = 28..30;
/// `issued_at` has 7 symbols of 5 bits: Unix seconds up to the year 3058.
const ISSUED_AT_MAX: u64 = (1 << 35) - 1;
/// Characters in an encoded verifier: 32 bytes in unpadded base64url.
const VERIFIER_CHARS: usize = 43;

/// Why a token (or verifier) was refused. The messages are meant for the person or developer who
/// wrote it, so they say what to fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    #[error("there is no token")]
    Empty,
    #[error("the token is too short: {symbols} of 30 symbols")]
    TooShort { symbols: usize },
    #[error("the token is too long: it has more than 30 symbols")]
    TooLong,
    #[error("{0:?} cannot appear in a token (symbols are 0-9 and A-Z except U)")]
    BadSymbol(char),
    #[error("token version {0} is not supported (only version 1 is)")]
    UnknownVersion(char),
    #[error("the token's check does not match: a symbol was mistyped or two were swapped")]
    BadCheck,
    #[error("the verifier must be 43 characters of unpadded base64url")]
    BadVerifier,
}

impl TokenError {
    /// The machine-readable reason for the HTTP API. A client can act on "the token is bad" but
    /// not on which rule it broke; the human message says that.
    pub fn reason_code(&self) -> &'static str {
        match self {
            TokenError::BadVerifier => "bad_verifier",
            _ => "bad_token",
        }
    }
}

/// The app's secret `V`: 32 random bytes whose hash is the token's challenge. Whoever holds it can
/// redeem the login, so it has no `Display` and its `Debug` is redacted.
pub struct Verifier([u8; 32]);

impl Verifier {
    /// A fresh verifier from the thread-local CSPRNG.
    pub fn random() -> Verifier {
        let mut bytes = [0; 32];
        rand::fill(&mut bytes);
        Verifier(bytes)
    }

    /// Accepts only the canonical encoding (no padding, zero trailing bits), so a verifier has
    /// exactly one spelling.
    pub fn from_base64url(text: &str) -> Result<Verifier, TokenError> {
        if text.len() != VERIFIER_CHARS {
            return Err(TokenError::BadVerifier);
        }
        let mut bytes = [0; 32];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut bytes) {
            Ok(32) => Ok(Verifier(bytes)),
            _ => Err(TokenError::BadVerifier),
        }
    }

    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// The first 100 bits of SHA-256(V): enough that guessing a live login is hopeless, short
    /// enough to type.
    pub fn challenge(&self) -> Challenge {
        let digest = Sha256::digest(self.0);
        // The first 13 bytes hold 104 bits; keep the top 100.
        let mut head = [0; 16];
        head[..13].copy_from_slice(&digest[..13]);
        let mut values = [0; 20];
        write_bits(&mut values, u128::from_be_bytes(head) >> 28);
        Challenge(values.map(crockford::symbol))
    }
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Verifier(<redacted>)")
    }
}

/// The 20 canonical symbols of a token's challenge, as ASCII.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Challenge([u8; 20]);

impl Challenge {
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("a challenge holds only alphabet symbols")
    }

    pub fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Reads back a challenge stored with [`Challenge::as_bytes`]; only the canonical symbols are
    /// accepted, because a store key has one spelling.
    pub fn from_bytes(bytes: &[u8]) -> Option<Challenge> {
        let symbols: [u8; 20] = bytes.try_into().ok()?;
        symbols
            .iter()
            .all(|s| crockford::ALPHABET.contains(s))
            .then_some(Challenge(symbols))
    }

    fn values(&self) -> [u8; 20] {
        self.0.map(|s| {
            crockford::value(char::from(s)).expect("a challenge holds only alphabet symbols")
        })
    }
}

impl fmt::Display for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Challenge").field(&self.as_str()).finish()
    }
}

/// A version-1 token. The version and the check are derived, not stored: a `Token` value is
/// always well formed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Token {
    challenge: Challenge,
    issued_at: u64,
}

impl Token {
    /// `issued_at` is kept to its 35 bits, the most the token can carry (that wraps in 3058).
    pub fn new(challenge: Challenge, issued_at: u64) -> Token {
        Token {
            challenge,
            issued_at: issued_at & ISSUED_AT_MAX,
        }
    }

    pub fn for_verifier(verifier: &Verifier, issued_at: u64) -> Token {
        Token::new(verifier.challenge(), issued_at)
    }

    pub fn challenge(&self) -> Challenge {
        self.challenge
    }

    pub fn issued_at(&self) -> u64 {
        self.issued_at
    }

    /// The 30 symbols without grouping, e.g. for a URL path.
    pub fn compact(&self) -> String {
        self.values()
            .into_iter()
            .map(|v| char::from(crockford::symbol(v)))
            .collect()
    }

    /// Reads a token on its own, as the HTTP API receives it: any case, grouping and folding, and
    /// surrounding whitespace, but nothing else.
    pub fn parse(text: &str) -> Result<Token, TokenError> {
        let folded = crockford::fold(text);
        match body::read_token(folded.trim()) {
            Ok((token, rest)) if rest.trim().is_empty() => Ok(token),
            Ok(_) => Err(TokenError::TooLong),
            Err(refused) => Err(refused.error),
        }
    }

    /// Whether `verifier` is the secret behind this token. Constant-time, so nobody has to argue
    /// about what a timing difference here could reveal.
    pub fn verifies(&self, verifier: &Verifier) -> bool {
        let expected = verifier.challenge();
        let difference = (self.challenge.0.iter())
            .zip(expected.0)
            .fold(0, |acc, (a, b)| acc | (a ^ b));
        difference == 0
    }

    /// The SMS body an app composes: `LOGIN T shop`. The app's name is a trailer the grammar
    /// ignores (§5); it tells the person which app the code is for (login-jacking).
    pub fn sms_body(&self, keyword: &str, app: &str) -> String {
        let token = self.to_string();
        [keyword, token.as_str(), app]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The `sms:` URI (RFC 5724) an app opens so the user only has to tap send.
    pub fn sms_uri(&self, short_code: &str, keyword: &str, app: &str) -> String {
        composer_uri(short_code, &self.sms_body(keyword, app))
    }

    /// The symbol values, version and check included.
    fn values(&self) -> [u8; LEN] {
        let mut values = [0; LEN];
        values[0] = VERSION;
        values[CHALLENGE].copy_from_slice(&self.challenge.values());
        write_bits(&mut values[ISSUED_AT], u128::from(self.issued_at));
        let check = check::over_symbols(&values[..CHECK.start]);
        write_bits(&mut values[CHECK], u128::from(check));
        values
    }

    /// Decodes 30 symbol values. The check covers the version symbol, so it is verified first: a
    /// token with an intact check and another version comes from a newer app, not from a typo.
    fn from_values(values: &[u8; LEN]) -> Result<Token, Refused> {
        let challenge = Challenge(std::array::from_fn(|i| {
            crockford::symbol(values[CHALLENGE.start + i])
        }));
        let refused = |error| Refused {
            error,
            claimed: Some(challenge),
        };
        if u64::from(check::over_symbols(&values[..CHECK.start])) != read_bits(&values[CHECK]) {
            return Err(refused(TokenError::BadCheck));
        }
        if values[0] != VERSION {
            return Err(refused(TokenError::UnknownVersion(char::from(
                crockford::symbol(values[0]),
            ))));
        }
        Ok(Token {
            challenge,
            issued_at: read_bits(&values[ISSUED_AT]),
        })
    }
}

impl fmt::Display for Token {
    /// Groups of five joined by `-`: easy to read aloud and to compare at a glance.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.compact().chars().enumerate() {
            if i > 0 && i % 5 == 0 {
                f.write_char('-')?;
            }
            f.write_char(c)?;
        }
        Ok(())
    }
}

/// The `sms:` URI (RFC 5724) that opens the composer with `body` to `short_code`. The body is
/// percent-encoded byte by byte, leaving only unreserved characters, so any keyword survives
/// (web/moauth.js encodes exactly the same way).
pub fn composer_uri(short_code: &str, body: &str) -> String {
    let encoded: String = body
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("sms:{short_code}?body={encoded}")
}

/// Everything an app needs to start a login: its secret verifier, the token made from it and
/// the `sms:` URI that puts the token into the phone's composer. `moauth token` prints one and
/// `POST /v1/logins` answers one; an app that makes its own does exactly the same.
pub struct LoginStart {
    pub verifier: Verifier,
    pub token: Token,
    pub sms_uri: String,
}

impl LoginStart {
    pub fn new(now: u64, short_code: &str, keyword: &str, app: &str) -> LoginStart {
        let verifier = Verifier::random();
        let token = Token::for_verifier(&verifier, now);
        let sms_uri = token.sms_uri(short_code, keyword, app);
        LoginStart {
            verifier,
            token,
            sms_uri,
        }
    }
}

/// A written token that was refused, with the challenge it carried when all 30 symbols were legible
/// (so the daemon can mark that login as rejected rather than leave it pending).
#[derive(Debug)]
struct Refused {
    error: TokenError,
    claimed: Option<Challenge>,
}

impl From<TokenError> for Refused {
    fn from(error: TokenError) -> Refused {
        Refused {
            error,
            claimed: None,
        }
    }
}

/// Writes `bits` into `values` as 5-bit symbols, most significant first.
fn write_bits(values: &mut [u8], bits: u128) {
    let n = values.len();
    for (i, v) in values.iter_mut().enumerate() {
        *v = ((bits >> (5 * (n - 1 - i))) & 0x1F) as u8;
    }
}

/// Reads 5-bit symbol values back into a number; the fields read this way have at most 35 bits.
fn read_bits(values: &[u8]) -> u64 {
    values.iter().fold(0, |acc, &v| (acc << 5) | u64::from(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = include_str!("../../../protocol/token.md");

    /// The first vector of `protocol/token.md`.
    fn sample() -> (Verifier, Token) {
        let verifier =
            Verifier::from_base64url("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap();
        let token = Token::for_verifier(&verifier, 1_700_000_000);
        (verifier, token)
    }

    /// The code-quoted cells of each table row in the part of the doc from `from` to `to`.
    fn doc_rows(from: &str, to: &str) -> Vec<Vec<&'static str>> {
        let start = DOC.find(from).expect("section in token.md");
        let part = &DOC[start..];
        let part = &part[..part.find(to).unwrap_or(part.len())];
        (part.lines().filter(|line| line.starts_with("| `")))
            .map(|line| {
                (line.split('|').map(str::trim))
                    .filter_map(|cell| cell.strip_prefix('`')?.strip_suffix('`'))
                    .collect()
            })
            .collect()
    }

    /// Writes symbol values with a freshly computed check, whatever the version.
    fn with_fresh_check(mut values: [u8; LEN]) -> String {
        let check = check::over_symbols(&values[..CHECK.start]);
        write_bits(&mut values[CHECK], u128::from(check));
        values
            .iter()
            .map(|&v| char::from(crockford::symbol(v)))
            .collect()
    }

    #[test]
    fn doc_test_vectors_match_the_code() {
        let keywords: Vec<String> = DEFAULT_KEYWORDS.iter().map(|k| k.to_string()).collect();
        let vectors = doc_rows("## 6. Test vectors", "Some bodies that are refused");
        assert!(vectors.len() >= 3, "token.md lists too few vectors");
        for row in vectors {
            let [verifier, issued_at, token, body] = row[..] else {
                unreachable!()
            };
            let verifier = Verifier::from_base64url(verifier).unwrap();
            let expected = Token::for_verifier(&verifier, issued_at.parse().unwrap());
            assert_eq!(expected.to_string(), token);
            assert_eq!(Token::parse(token), Ok(expected));
            assert_eq!(parse_body(body, &keywords), Body::Login(expected), "{body}");
        }
    }

    #[test]
    fn doc_refused_bodies_do_not_log_in() {
        let keywords: Vec<String> = DEFAULT_KEYWORDS.iter().map(|k| k.to_string()).collect();
        let refused = doc_rows("Some bodies that are refused", "\n## ");
        assert_eq!(refused.len(), 5);
        for row in refused {
            assert!(
                !matches!(parse_body(row[0], &keywords), Body::Login(_)),
                "{}",
                row[0]
            );
        }
    }

    #[test]
    fn doc_sms_uri_matches_the_code() {
        let (_, token) = sample();
        assert!(DOC.contains(&token.sms_uri("106900001234", "LOGIN", "")));
    }

    #[test]
    fn sms_uri_percent_encodes_the_body() {
        let (_, token) = sample();
        assert_eq!(
            token.sms_uri("10690", "登录", ""),
            format!("sms:10690?body=%E7%99%BB%E5%BD%95%20{token}")
        );
        assert_eq!(
            token.sms_uri("10690", "", ""),
            format!("sms:10690?body={token}")
        );
        assert_eq!(
            token.sms_uri("10690", "LOGIN", "shop"),
            format!("sms:10690?body=LOGIN%20{token}%20shop")
        );
    }

    #[test]
    fn display_groups_the_compact_form() {
        let (_, token) = sample();
        assert_eq!(token.compact(), "1CC6WTAB6RGSPD48JAH4B1JN7W80Y4");
        assert_eq!(token.to_string(), "1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4");
    }

    #[test]
    fn fields_round_trip_through_text() {
        let verifier = Verifier::random();
        for issued_at in [0, 1, 1_700_000_000, ISSUED_AT_MAX] {
            let token = Token::for_verifier(&verifier, issued_at);
            assert_eq!(Token::parse(&token.compact()), Ok(token));
            assert_eq!(Token::parse(&token.to_string()), Ok(token));
            assert_eq!(token.issued_at(), issued_at);
            assert_eq!(token.challenge(), verifier.challenge());
        }
    }

    #[test]
    fn issued_at_keeps_its_35_bits() {
        let (verifier, _) = sample();
        let token = Token::for_verifier(&verifier, ISSUED_AT_MAX + 6);
        assert_eq!(token.issued_at(), 5);
    }

    #[test]
    fn parse_folds_what_people_type() {
        let (_, token) = sample();
        for typed in [
            "1cc6w-tab6r-gspd4-8jah4-b1jn7-w80y4",
            "  lcc6w tab6r gspd4 8jah4 bijn7 w8oy4 \n",
            "1CC6W--TAB6R  GSPD4 - 8JAH4B1JN7W80Y4",
            "１ＣＣ６Ｗ　ＴＡＢ６Ｒ－ＧＳＰＤ４‐８ＪＡＨ４—Ｂ１ＪＮ７−Ｗ８０Ｙ４",
        ] {
            assert_eq!(Token::parse(typed), Ok(token), "{typed}");
        }
    }

    #[test]
    fn parse_names_what_is_wrong() {
        let cases = [
            ("", TokenError::Empty),
            ("  ", TokenError::Empty),
            ("1CC6W-TAB6R", TokenError::TooShort { symbols: 10 }),
            (
                "1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y",
                TokenError::TooShort { symbols: 29 },
            ),
            ("1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y40", TokenError::TooLong),
            (
                "1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4 extra",
                TokenError::TooLong,
            ),
            (
                "1CC6W-TAB6R-GSPD4-8JAU4-B1JN7-W80Y4",
                TokenError::BadSymbol('U'),
            ),
            (
                "1CC6W-TAB6R*GSPD4-8JAH4-B1JN7-W80Y4",
                TokenError::BadSymbol('*'),
            ),
            ("1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y5", TokenError::BadCheck),
            ("1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-80WY4", TokenError::BadCheck),
        ];
        for (typed, error) in cases {
            assert_eq!(Token::parse(typed), Err(error), "{typed}");
        }
    }

    #[test]
    fn another_version_with_a_valid_check_is_unknown() {
        let (_, token) = sample();
        let mut values = token.values();
        values[0] = 2;
        assert_eq!(
            Token::parse(&with_fresh_check(values)),
            Err(TokenError::UnknownVersion('2'))
        );
    }

    #[test]
    fn verifies_only_its_own_verifier() {
        let (verifier, token) = sample();
        assert!(token.verifies(&verifier));
        assert!(!token.verifies(&Verifier::random()));
    }

    #[test]
    fn verifier_round_trips_through_base64url() {
        let verifier = Verifier::random();
        let text = verifier.to_base64url();
        assert_eq!(text.len(), 43);
        let back = Verifier::from_base64url(&text).unwrap();
        assert_eq!(back.to_base64url(), text);
        assert_eq!(back.challenge(), verifier.challenge());
    }

    #[test]
    fn verifier_accepts_only_the_canonical_encoding() {
        let good = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
        for bad in [
            "",
            &good[..42],
            &format!("{good}="),
            &format!("{good}A"),
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9", // nonzero trailing bits
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh+",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH/8",
        ] {
            assert_eq!(
                Verifier::from_base64url(bad).err(),
                Some(TokenError::BadVerifier),
                "{bad}"
            );
        }
    }

    #[test]
    fn verifier_debug_hides_the_secret() {
        let (verifier, _) = sample();
        assert_eq!(format!("{verifier:?}"), "Verifier(<redacted>)");
    }

    #[test]
    fn challenge_is_the_hash_prefix_in_symbols() {
        let (verifier, token) = sample();
        assert_eq!(verifier.challenge().as_str(), "CC6WTAB6RGSPD48JAH4B");
        assert_eq!(token.challenge().to_string(), "CC6WTAB6RGSPD48JAH4B");
        assert_eq!(
            format!("{:?}", token.challenge()),
            "Challenge(\"CC6WTAB6RGSPD48JAH4B\")"
        );
    }

    #[test]
    fn challenge_reads_back_only_canonical_store_keys() {
        let (_, token) = sample();
        let challenge = token.challenge();
        assert_eq!(Challenge::from_bytes(challenge.as_bytes()), Some(challenge));
        assert_eq!(Challenge::from_bytes(b"CC6WTAB6RGSPD48JAH4"), None);
        assert_eq!(Challenge::from_bytes(b"CC6WTAB6RGSPD48JAH4BB"), None);
        assert_eq!(Challenge::from_bytes(b"cc6wtab6rgspd48jah4b"), None);
        assert_eq!(Challenge::from_bytes(b"CC6WTAB6RGSPD48JAH4U"), None);
    }

    #[test]
    fn every_error_has_a_reason_code() {
        assert_eq!(TokenError::BadCheck.reason_code(), "bad_token");
        assert_eq!(
            TokenError::TooShort { symbols: 3 }.reason_code(),
            "bad_token"
        );
        assert_eq!(TokenError::BadVerifier.reason_code(), "bad_verifier");
    }
}
