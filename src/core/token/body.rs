//! What an SMS asked for: `[keyword] token [trailer]`, or STOP / HELP.
//!
//! People do not type grammars. They add or drop the keyword, glue it to the token or put a colon
//! after it, group the token however they like, and their phone appends a signature. So the body is
//! read as an ordered list of readings and the first one that yields a valid token wins:
//! 1. after a configured keyword and a gap (whitespace or a colon; a non-ASCII keyword such as
//!    `登录` may also touch the token, since it cannot be mistaken for symbols);
//! 2. the whole body as a bare token;
//! 3. after an ASCII keyword touching the token (`L1ABCD…`).
//!
//! The order matters because `L` is both a keyword and a way of typing `1`, the version symbol:
//! `L 1ABCD…` is keyword + token, `LABCD…` is a bare token, and the check decides between readings
//! that both look plausible. When no reading is valid the first one's error is reported, as it is
//! the reading the sender most likely meant.
//!
//! The grammar is written with nom over text already folded by [`crockford::fold`], so full-width
//! keywords, colons and spaces need no rules of their own.

use std::iter;

use nom::branch::alt;
use nom::bytes::complete::{tag_no_case, take_while, take_while1};
use nom::character::complete::{anychar, char};
use nom::combinator::{eof, map_opt, recognize};
use nom::multi::many_m_n;
use nom::sequence::preceded;
use nom::{IResult, Parser};

use super::{Challenge, LEN, Refused, Token, TokenError, crockford};

/// Keywords an app may put before the token when none are configured.
pub const DEFAULT_KEYWORDS: &[&str] = &["LOGIN", "L", "REG", "R", "登录", "注册"];

/// A body that is one command word, not a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Help,
    /// Opt out of every SMS (STOP, UNSUBSCRIBE, TD, 退订).
    Stop,
    /// Undo STOP (START, UNSTOP).
    Start,
    /// Text a new password; the old one stops working (PASSWORD, 密码).
    Password,
    /// End every session of the number (LOGOUT).
    Logout,
}

/// The words of each command, matched against the whole body, case-insensitively after
/// full-width folding. Configurable in `[login.commands]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commands(Vec<(String, Command)>);

impl Commands {
    pub fn new(words: impl IntoIterator<Item = (String, Command)>) -> Commands {
        Commands(
            words
                .into_iter()
                .map(|(word, command)| (crockford::fold(word.trim()).to_uppercase(), command))
                .collect(),
        )
    }

    /// The command `text` (already folded) is, if it is one word of one.
    fn recognise(&self, text: &str) -> Option<Command> {
        let text = text.trim().to_uppercase();
        self.0
            .iter()
            .find(|(word, _)| *word == text)
            .map(|(_, command)| *command)
    }
}

/// The words of each command when none are configured.
pub const DEFAULT_COMMANDS: &[(&str, Command)] = &[
    ("HELP", Command::Help),
    ("STOP", Command::Stop),
    ("UNSUBSCRIBE", Command::Stop),
    ("TD", Command::Stop),
    ("退订", Command::Stop),
    ("START", Command::Start),
    ("UNSTOP", Command::Start),
    ("PASSWORD", Command::Password),
    ("密码", Command::Password),
    ("LOGOUT", Command::Logout),
];

impl Default for Commands {
    fn default() -> Self {
        Commands::new(DEFAULT_COMMANDS.iter().map(|(w, c)| (w.to_string(), *c)))
    }
}

/// What an SMS body asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    Login(Token),
    Command(Command),
    /// `claimed` is the challenge as written when all 30 symbols were legible but the check or the
    /// version was wrong, so the daemon can reject that login instead of leaving it pending.
    Bad {
        error: TokenError,
        claimed: Option<Challenge>,
    },
}

impl From<Refused> for Body {
    fn from(refused: Refused) -> Body {
        Body::Bad {
            error: refused.error,
            claimed: refused.claimed,
        }
    }
}

/// Reads an SMS body with the default command words; `keywords` are matched
/// case-insensitively after folding.
pub fn parse_body(text: &str, keywords: &[String]) -> Body {
    parse_body_with(text, keywords, &Commands::default())
}

/// Reads an SMS body: a body that is only a command word is that command, whatever else could
/// be read into it; otherwise `[keyword] token [trailer]`.
pub fn parse_body_with(text: &str, keywords: &[String], commands: &Commands) -> Body {
    let text = crockford::fold(text);
    if let Some(command) = commands.recognise(&text) {
        return Body::Command(command);
    }
    let text = text.trim_start();
    let keywords: Vec<String> = keywords.iter().map(|k| crockford::fold(k)).collect();
    let after_gap = keywords
        .iter()
        .filter_map(|k| after_keyword(text, k, !k.is_ascii()));
    let touching =
        (keywords.iter().filter(|k| k.is_ascii())).filter_map(|k| after_keyword(text, k, true));
    let mut first_refusal = None;
    for reading in after_gap.chain(iter::once(text)).chain(touching) {
        match read_token(reading) {
            Ok((token, _trailer)) => return Body::Login(token),
            Err(refused) => {
                first_refusal.get_or_insert(refused);
            }
        }
    }
    // The bare reading is always tried, so only an impossible empty list falls back to Empty.
    Body::from(first_refusal.unwrap_or(TokenError::Empty.into()))
}

/// Reads one token at the start of `text` and returns what follows it. After the 30th symbol
/// anything may follow except a letter or digit, which would mean the token runs on.
pub(super) fn read_token(text: &str) -> Result<(Token, &str), Refused> {
    let (rest, values) = symbols(text).unwrap_or((text, Vec::new()));
    let Ok(values) = <[u8; LEN]>::try_from(values.as_slice()) else {
        return Err(shortfall(values.len(), rest).into());
    };
    if rest.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(TokenError::TooLong.into());
    }
    Token::from_values(&values).map(|token| (token, rest))
}

/// Names the problem with a token that stopped before its 30th symbol at `rest`: a character
/// inside it that is no symbol, or just the end of what was typed.
fn shortfall(symbols: usize, rest: &str) -> TokenError {
    let mut chars = rest.trim_start_matches(is_separator).chars();
    match chars.next() {
        None if symbols == 0 => TokenError::Empty,
        None => TokenError::TooShort { symbols },
        Some(c)
            if symbols == 0
                || c.is_ascii_alphanumeric()
                || chars.next().and_then(crockford::value).is_some() =>
        {
            TokenError::BadSymbol(c)
        }
        Some(_) => TokenError::TooShort { symbols },
    }
}

/// Where the token would start after `keyword`. The gap is whitespace, a colon with optional
/// whitespace around it, or the end of the text (so a lone keyword reports a missing token).
fn after_keyword<'a>(text: &'a str, keyword: &str, may_touch: bool) -> Option<&'a str> {
    let (rest, _) = tag_no_case::<_, _, nom::error::Error<&str>>(keyword)
        .parse(text)
        .ok()?;
    let mut gap = alt((
        recognize((blank, char(':'), blank)),
        take_while1(char::is_whitespace),
        eof,
    ));
    match gap.parse(rest) {
        Ok((rest, _)) => Some(rest),
        Err(_) => may_touch.then_some(rest),
    }
}

/// Up to 30 symbols, each optionally preceded by a run of separators.
fn symbols(input: &str) -> IResult<&str, Vec<u8>> {
    let symbol = map_opt(anychar, crockford::value);
    many_m_n(0, LEN, preceded(take_while(is_separator), symbol)).parse(input)
}

fn is_separator(c: char) -> bool {
    c == '-' || c == ' '
}

fn blank(input: &str) -> IResult<&str, &str> {
    take_while(char::is_whitespace).parse(input)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::token::Verifier;

    /// The first vector of `protocol/token.md`: `1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4`.
    fn sample() -> Token {
        let verifier =
            Verifier::from_base64url("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8").unwrap();
        Token::for_verifier(&verifier, 1_700_000_000)
    }

    fn read(text: &str) -> Body {
        let keywords: Vec<String> = DEFAULT_KEYWORDS.iter().map(|k| k.to_string()).collect();
        parse_body(text, &keywords)
    }

    fn bad(error: TokenError) -> Body {
        Body::Bad {
            error,
            claimed: None,
        }
    }

    #[test]
    fn keyword_may_be_spaced_coloned_or_left_out() {
        let login = Body::Login(sample());
        for text in [
            "1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "LOGIN 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "login:1cc6wtab6rgspd48jah4b1jn7w80y4",
            "Login : 1CC6W TAB6R GSPD4 8JAH4 B1JN7 W80Y4",
            "REG\n1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "r 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "  \t LOGIN   1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
        ] {
            assert_eq!(read(text), login, "{text}");
        }
    }

    #[test]
    fn l_is_a_keyword_and_a_one() {
        let login = Body::Login(sample());
        for text in [
            "L 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "L1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "l:1cc6w-tab6r-gspd4-8jah4-b1jn7-w80y4",
            "LCC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "L LCC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
        ] {
            assert_eq!(read(text), login, "{text}");
        }
    }

    #[test]
    fn chinese_keywords_with_or_without_a_gap() {
        let login = Body::Login(sample());
        for text in [
            "登录 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "登录1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "注册：1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4",
            "登录\u{3000}１ＣＣ６Ｗ－ＴＡＢ６Ｒ－ＧＳＰＤ４－８ＪＡＨ４－Ｂ１ＪＮ７－Ｗ８０Ｙ４",
        ] {
            assert_eq!(read(text), login, "{text}");
        }
    }

    #[test]
    fn full_width_body_is_folded() {
        let text =
            "ＬＯＧＩＮ　１ＣＣ６Ｗ　ＴＡＢ６Ｒ　ＧＳＰＤ４　８ＪＡＨ４　Ｂ１ＪＮ７　Ｗ８０Ｙ４";
        assert_eq!(read(text), Body::Login(sample()));
    }

    #[test]
    fn signatures_after_the_token_are_ignored() {
        let login = Body::Login(sample());
        for text in [
            "LOGIN 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4\n\nSent from my iPhone",
            "LOGIN 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4 -- Alice",
            "1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4. Thanks!",
            "登录1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4【发自我的手机】",
            "1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4 ",
        ] {
            assert_eq!(read(text), login, "{text}");
        }
    }

    #[test]
    fn a_body_of_one_command_word_is_that_command() {
        for (text, command) in [
            ("STOP", Command::Stop),
            ("stop", Command::Stop),
            ("  Stop \n", Command::Stop),
            ("ＳＴＯＰ", Command::Stop),
            ("Unsubscribe", Command::Stop),
            ("td", Command::Stop),
            ("退订", Command::Stop),
            ("START", Command::Start),
            ("unstop", Command::Start),
            ("HELP", Command::Help),
            ("\u{3000}help\u{3000}", Command::Help),
            ("password", Command::Password),
            (" 密码 ", Command::Password),
            ("LOGOUT", Command::Logout),
        ] {
            assert_eq!(read(text), Body::Command(command), "{text:?}");
        }
        assert!(matches!(read("STOP please"), Body::Bad { .. }));
    }

    #[test]
    fn command_words_come_from_configuration() {
        let commands = Commands::new([("BYE".to_string(), Command::Logout)]);
        let read = |text| parse_body_with(text, &["LOGIN".to_string()], &commands);
        assert_eq!(read("bye"), Body::Command(Command::Logout));
        assert!(matches!(read("LOGOUT"), Body::Bad { .. }));
    }

    #[test]
    fn empty_bodies_hold_no_token() {
        for text in ["", "   ", "\u{3000}\n", "LOGIN", "登录 "] {
            assert_eq!(read(text), bad(TokenError::Empty), "{text:?}");
        }
    }

    #[test]
    fn wrong_lengths_and_symbols_claim_nothing() {
        let cases = [
            ("LOGIN 1CC6W-TAB6R", TokenError::TooShort { symbols: 10 }),
            (
                "LOGIN 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y",
                TokenError::TooShort { symbols: 29 },
            ),
            (
                "LOGIN 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4X",
                TokenError::TooLong,
            ),
            ("1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4U", TokenError::TooLong),
            (
                "LOGIN 1CC6W-TAB6R-GSPD4-8JAU4-B1JN7-W80Y4",
                TokenError::BadSymbol('U'),
            ),
            (
                "LOGIN 1CC6W-TAB6R-GSPD4*8JAH4-B1JN7-W80Y4",
                TokenError::BadSymbol('*'),
            ),
            ("登录：你好", TokenError::BadSymbol('你')),
        ];
        for (text, error) in cases {
            assert_eq!(read(text), bad(error), "{text}");
        }
    }

    #[test]
    fn a_bad_check_claims_the_challenge_as_written() {
        let claimed = Some(sample().challenge());
        for text in [
            "LOGIN 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y5",
            "LOGIN 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W8Y04",
            "1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y5",
        ] {
            let expected = Body::Bad {
                error: TokenError::BadCheck,
                claimed,
            };
            assert_eq!(read(text), expected, "{text}");
        }
    }

    #[test]
    fn keywords_come_from_configuration() {
        let only_go = ["GO".to_string()];
        let text = "go 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4";
        assert_eq!(parse_body(text, &only_go), Body::Login(sample()));
        // Without the keyword, "LOGIN" is read as five symbols of a token that then fails its check.
        let not_configured = "LOGIN 1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4";
        let refused = parse_body(not_configured, &only_go);
        assert!(
            matches!(
                refused,
                Body::Bad {
                    error: TokenError::BadCheck,
                    ..
                }
            ),
            "{refused:?}"
        );
        assert_eq!(
            parse_body("ＧＯ：1CC6W-TAB6R-GSPD4-8JAH4-B1JN7-W80Y4", &only_go),
            Body::Login(sample())
        );
    }
}
