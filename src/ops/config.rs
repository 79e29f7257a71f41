//! The one TOML configuration file, every key documented in `config/moauth.toml`: the
//! file-level loader.
//!
//! Operators edit this file by hand at 3 a.m., so a mistake is reported with the file, line,
//! column and key, and unknown keys are errors rather than silently ignored typos.
//!
//! Each subsystem owns its section: its struct, defaults and checks live beside the code it
//! configures (`smpp/config.rs`, `http/config.rs`, `store/config.rs`, …). This file reads and
//! parses the file with spans, types every section (and every entry of an array table) on its
//! own so one mistake hides no other, asks each section for its problems, and places each at
//! the span the parser gave its key.
//!
//! Secrets need not sit in the file: `password_file` (e.g. a systemd credential) or
//! `password_env` (an environment variable) stand in for `password`, and likewise for every
//! secret listed in `SECRET_SITES`. They are resolved on the
//! parsed document before it is typed, so the secret takes the span of the key that named it
//! and every later error still points at the right line.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use thiserror::Error;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// `[limits]` and `[templates]` configure the core's decisions and live beside them.
pub use crate::core::limits::LimitsConfig;
pub use crate::core::replies::{Language, Templates};
// The sections' types, where a caller holding a `Config` finds them.
pub use crate::auth::config::{Argon2Config, AuthConfig, AuthMode, RemoteAuthConfig};
pub use crate::http::config::{ApiKey, HttpConfig};
pub use crate::login::config::{InboundConfig, LoginConfig, NumberingConfig};
pub use crate::ops::logging::LogConfig;
pub use crate::smpp::config::{BindMode, SmscConfig};
pub use crate::store::config::{PostgresConfig, SledConfig, StoreConfig};
pub use crate::webhooks::config::WebhookConfig;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{column}: key `{key}`: {message}")]
    Invalid {
        file: String,
        line: usize,
        column: usize,
        key: String,
        message: String,
    },
    /// A value that parses but does not work on this machine (`check-config` only).
    #[error("{file}: key `{key}`: {message}")]
    Unusable {
        file: String,
        key: String,
        message: String,
    },
    /// Several independent mistakes, so one run of `check-config` shows them all.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Several(Vec<ConfigError>),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub store: StoreConfig,
    pub http: HttpConfig,
    pub login: LoginConfig,
    pub numbering: NumberingConfig,
    pub templates: Templates,
    pub inbound: InboundConfig,
    pub log: LogConfig,
    pub smsc: Vec<SmscConfig>,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub webhooks: Vec<WebhookConfig>,
}

impl Config {
    /// Every default and no SMSC: the base of the embedded setups (`run` without a file,
    /// `demo`, tests).
    pub fn defaults(store_path: PathBuf) -> Config {
        Config {
            store: StoreConfig::Sled(SledConfig::new(store_path)),
            http: HttpConfig::default(),
            login: LoginConfig::default(),
            numbering: NumberingConfig::default(),
            templates: Templates::default(),
            log: LogConfig::default(),
            inbound: InboundConfig::default(),
            smsc: Vec::new(),
            limits: LimitsConfig::default(),
            auth: AuthConfig::default(),
            webhooks: Vec::new(),
        }
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::parse(&file, &text)
    }

    /// Parses and validates; `file` only names the source in errors.
    ///
    /// Each section (and each entry of an array table) is typed on its own, so one wrong type
    /// does not hide the mistakes of the others, and every check reports at the span the parser
    /// gave the key it concerns.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let mut reading = Reading {
            file,
            text,
            problems: Vec::new(),
        };
        let (document, syntax) = DeTable::parse_recoverable(text);
        if !syntax.is_empty() {
            for e in syntax {
                let offset = e.span().map_or(0, |s| s.start);
                reading.error(offset, key_written_at(text, offset), e.message());
            }
            return Err(reading.finish());
        }
        let mut root = document.into_inner();
        resolve_secrets(&mut reading, &mut root);

        let store = reading.store(&mut root);
        let http = reading.section::<HttpConfig>(&mut root, "http", false);
        let login = reading.section::<LoginConfig>(&mut root, "login", false);
        let numbering = reading.section::<NumberingConfig>(&mut root, "numbering", false);
        let templates = reading.section::<Templates>(&mut root, "templates", false);
        let inbound = reading.section::<InboundConfig>(&mut root, "inbound", false);
        let log = reading.section::<LogConfig>(&mut root, "log", false);
        let limits = reading.section::<LimitsConfig>(&mut root, "limits", false);
        let auth = reading.section::<AuthConfig>(&mut root, "auth", false);
        let smsc = reading.entries::<SmscConfig>(&mut root, "smsc");
        let webhooks = reading.entries::<WebhookConfig>(&mut root, "webhooks");
        for (key, _) in root.iter() {
            reading.error(
                key.span().start,
                key.get_ref().to_string(),
                "unknown section",
            );
        }

        if let Some(store) = &store {
            reading.check("store", &store.value, store.config.problems());
        }
        if let Some(http) = &http {
            reading.check("http", &http.value, http.config.problems());
        }
        if let Some(login) = &login {
            reading.check("login", &login.value, login.config.problems());
        }
        if let Some(numbering) = &numbering {
            reading.check("numbering", &numbering.value, numbering.config.problems());
        }
        if let Some(log) = &log {
            reading.check("log", &log.value, log.config.problems());
        }
        if let Some(limits) = &limits {
            reading.check("limits", &limits.value, limits.config.problems());
        }
        if let Some(auth) = &auth {
            reading.check("auth", &auth.value, auth.config.problems());
        }
        for (i, entry) in smsc.iter().enumerate() {
            let earlier = smsc[..i].iter().map(|e| &e.config);
            reading.check("smsc", &entry.value, entry.config.problems(earlier));
        }
        // With [http] itself mistyped its keys are unknown, and that is reported already.
        if let Some(http) = &http {
            let backends: Vec<&str> = http
                .config
                .api_keys
                .iter()
                .map(|k| k.name.as_str())
                .collect();
            for (i, entry) in webhooks.iter().enumerate() {
                let earlier = webhooks[..i].iter().map(|e| &e.config);
                let problems = entry.config.problems(&backends, earlier);
                reading.check("webhooks", &entry.value, problems);
            }
        }

        if !reading.problems.is_empty() {
            return Err(reading.finish());
        }
        let missing = "a section that failed to parse is a reported problem";
        Ok(Config {
            store: store.expect(missing).config,
            http: http.expect(missing).config,
            login: login.expect(missing).config,
            numbering: numbering.expect(missing).config,
            templates: templates.expect(missing).config,
            inbound: inbound.expect(missing).config,
            log: log.expect(missing).config,
            limits: limits.expect(missing).config,
            auth: auth.expect(missing).config,
            smsc: smsc.into_iter().map(|e| e.config).collect(),
            webhooks: webhooks.into_iter().map(|e| e.config).collect(),
        })
    }
}

/// A mistake a section's own check found: the key it concerns, as a dotted path relative to
/// the section (a number picks an entry of an array table: `api_keys.1.sha256`), and what is
/// wrong. The loader turns the path into the file's line and column.
pub type Problem = (String, String);

/// One section of the file, typed, beside its parsed value whose spans locate its keys.
struct Section<'de, T> {
    config: T,
    value: Spanned<DeValue<'de>>,
}

impl<'de, T> Section<'de, T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Section<'de, U> {
        Section {
            config: f(self.config),
            value: self.value,
        }
    }
}

/// The file being read: its name and text to turn spans into positions, and every mistake
/// found so far.
struct Reading<'a> {
    file: &'a str,
    text: &'a str,
    problems: Vec<ConfigError>,
}

impl Reading<'_> {
    /// `[name]`, taken out of the document and typed. An absent table is typed from an empty
    /// one, so its defaults apply; if that fails the table was `required`.
    fn section<'de, T: DeserializeOwned>(
        &mut self,
        root: &mut DeTable<'de>,
        name: &str,
        required: bool,
    ) -> Option<Section<'de, T>> {
        let Some(value) = root.remove(name) else {
            let empty = Spanned::new(0..0, DeValue::Table(DeTable::new()));
            return match T::deserialize(ValueDeserializer::from(empty.clone())) {
                Ok(config) => Some(Section {
                    config,
                    value: empty,
                }),
                Err(e) => {
                    let need = if required { "required" } else { "incomplete" };
                    self.error(
                        0,
                        name.into(),
                        format!("missing [{name}] table ({need}: {})", e.message()),
                    );
                    None
                }
            };
        };
        match T::deserialize(ValueDeserializer::from(value.clone())) {
            Ok(config) => Some(Section { config, value }),
            Err(e) => {
                self.type_error(name, &value, e);
                None
            }
        }
    }

    /// `[store]`: the `backend` tag picks the struct the rest of the table is typed as.
    fn store<'de>(&mut self, root: &mut DeTable<'de>) -> Option<Section<'de, StoreConfig>> {
        let tag = root
            .get_mut("store")
            .and_then(|store| match store.get_mut() {
                DeValue::Table(table) => table.remove(StoreConfig::TAG),
                _ => None,
            });
        let backend = match &tag {
            None => StoreConfig::DEFAULT_BACKEND,
            Some(value) => match value.get_ref() {
                DeValue::String(name) if StoreConfig::BACKENDS.contains(&name.as_ref()) => {
                    name.as_ref()
                }
                _ => {
                    let choices = StoreConfig::BACKENDS.join("\" or \"");
                    self.error(
                        value.span().start,
                        format!("store.{}", StoreConfig::TAG),
                        format!("must be \"{choices}\""),
                    );
                    root.remove("store");
                    return None;
                }
            },
        };
        match backend {
            "postgres" => self
                .section(root, "store", true)
                .map(|s| s.map(StoreConfig::Postgres)),
            _ => self
                .section(root, "store", true)
                .map(|s| s.map(StoreConfig::Sled)),
        }
    }

    /// `[[name]]`, each entry typed on its own so a mistake in one hides none in another.
    fn entries<'de, T: DeserializeOwned>(
        &mut self,
        root: &mut DeTable<'de>,
        name: &str,
    ) -> Vec<Section<'de, T>> {
        let Some(value) = root.remove(name) else {
            return Vec::new();
        };
        let span = value.span();
        let DeValue::Array(items) = value.into_inner() else {
            self.error(
                span.start,
                name.into(),
                format!("must be [[{name}]] tables"),
            );
            return Vec::new();
        };
        items
            .into_iter()
            .filter_map(
                |item| match T::deserialize(ValueDeserializer::from(item.clone())) {
                    Ok(config) => Some(Section {
                        config,
                        value: item,
                    }),
                    Err(e) => {
                        self.type_error(name, &item, e);
                        None
                    }
                },
            )
            .collect()
    }

    /// Reports a section's own findings, each at its key's span (or, for a key left at its
    /// default, at the table that lacks it).
    fn check(&mut self, name: &str, value: &Spanned<DeValue<'_>>, problems: Vec<Problem>) {
        for (path, message) in problems {
            let mut here = value;
            let mut offset = value.span().start;
            for segment in path.split('.') {
                let next = match (here.get_ref(), segment.parse::<usize>()) {
                    (DeValue::Array(items), Ok(i)) => items.get(i).map(|item| (item, None)),
                    (DeValue::Table(table), _) => table
                        .get_key_value(segment)
                        .map(|(k, v)| (v, Some(k.span().start))),
                    _ => None,
                };
                let Some((next, key_offset)) = next else {
                    break;
                };
                here = next;
                offset = key_offset.unwrap_or(next.span().start);
            }
            // A path the document lacks (a default value) still names every key.
            let shown: Vec<&str> = path
                .split('.')
                .filter(|s| s.parse::<usize>().is_err())
                .collect();
            let key = format!("{name}.{}", shown.join("."));
            // A secret that could not be read stands in as empty and is reported already.
            if !self.reported_at(offset) {
                self.error(offset, key, message);
            }
        }
    }

    /// A parser or serde error inside `value` (the section `name`), named by the deepest key
    /// whose span holds the error's.
    fn type_error(&mut self, name: &str, value: &Spanned<DeValue<'_>>, e: toml::de::Error) {
        let offset = e.span().map_or(value.span().start, |s| s.start);
        let mut key: Vec<String> = (!name.is_empty())
            .then(|| name.to_owned())
            .into_iter()
            .collect();
        key.extend(key_path(value, offset).unwrap_or_default());
        // serde reports a missing key at the table that lacks it; name the key itself.
        if let Some(field) = e
            .message()
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            key.push(field.to_owned());
        }
        self.error(offset, key.join("."), e.message());
    }

    fn reported_at(&self, offset: usize) -> bool {
        let (line, column) = self.position(offset);
        self.problems.iter().any(|p| {
            matches!(p, ConfigError::Invalid { line: l, column: c, .. } if (*l, *c) == (line, column))
        })
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let before = &self.text[..offset.min(self.text.len())];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (
            before.matches('\n').count() + 1,
            before[line_start..].chars().count() + 1,
        )
    }

    fn error(&mut self, offset: usize, key: String, message: impl Into<String>) {
        let (line, column) = self.position(offset);
        self.problems.push(ConfigError::Invalid {
            file: self.file.to_owned(),
            line,
            column,
            key,
            message: message.into(),
        });
    }

    /// Every mistake, in the order of the file.
    fn finish(mut self) -> ConfigError {
        let position = |e: &ConfigError| match e {
            ConfigError::Invalid { line, column, .. } => (*line, *column),
            _ => (0, 0),
        };
        self.problems.sort_by_key(position);
        match self.problems.len() {
            1 => self.problems.remove(0),
            _ => ConfigError::Several(self.problems),
        }
    }
}

/// The key a line that does not parse was meant to set: `table.key` from the text, as no
/// span says it.
fn key_written_at(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("").trim();
    let header = |l: &str| {
        l.starts_with('[')
            .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned())
    };
    if let Some(table) = header(line) {
        return table;
    }
    let key = line.split_once('=').map_or("", |(k, _)| k.trim());
    match text[..line_start]
        .lines()
        .rev()
        .find_map(|l| header(l.trim()))
    {
        Some(table) if !key.is_empty() => format!("{table}.{key}"),
        Some(table) => table,
        None => key.to_owned(),
    }
}

/// The dotted key path under `value` whose key or value span holds `offset`, deepest first;
/// `None` when `value` does not hold it at all.
fn key_path(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<Vec<String>> {
    let inner = match value.get_ref() {
        DeValue::Table(table) => table.iter().find_map(|(k, v)| {
            key_path(v, offset)
                .or_else(|| k.span().contains(&offset).then(Vec::new))
                .map(|mut path| {
                    path.insert(0, k.get_ref().to_string());
                    path
                })
        }),
        DeValue::Array(items) => items.iter().find_map(|item| key_path(item, offset)),
        _ => None,
    };
    inner.or_else(|| value.span().contains(&offset).then(Vec::new))
}

/// Where a secret may be given as `KEY_file` (a path to read) or `KEY_env` (a variable to
/// read) instead of inline: a dotted table path (a table, or an array of tables) and the key.
const SECRET_SITES: &[(&str, &str)] = &[
    ("store", "url"),
    ("http", "admin_key"),
    ("smsc", "password"),
    ("auth.remote", "secret"),
    ("webhooks", "secret"),
];

/// Replaces `KEY_file` / `KEY_env` by `KEY` at every site of [`SECRET_SITES`].
fn resolve_secrets(reading: &mut Reading<'_>, root: &mut DeTable<'_>) {
    for (path, key) in SECRET_SITES {
        for table in tables_at(root, path) {
            if let Err((span, name, message)) = resolve_secret(table, key) {
                reading.error(span.start, format!("{path}.{name}"), message);
                // Reported once: typing the table must not add "missing field" for it.
                table.insert(
                    Spanned::new(span.clone(), Cow::Owned(key.to_string())),
                    Spanned::new(span, DeValue::String(Cow::Borrowed(""))),
                );
            }
        }
    }
}

/// The tables under a dotted path. Anything of another shape is a type error that serde
/// reports with its span, so it is skipped here.
fn tables_at<'t, 'de>(root: &'t mut DeTable<'de>, path: &str) -> Vec<&'t mut DeTable<'de>> {
    let mut here = vec![root];
    for segment in path.split('.') {
        here = here
            .into_iter()
            .filter_map(|table| table.get_mut(segment))
            .flat_map(|value| match value.get_mut() {
                DeValue::Table(table) => vec![table],
                DeValue::Array(items) => items
                    .iter_mut()
                    .filter_map(|item| match item.get_mut() {
                        DeValue::Table(table) => Some(table),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
    }
    here
}

/// Puts the secret that `KEY_file` / `KEY_env` points to under `KEY`, with the span of the
/// key that named it; a mistake comes back as (the span of the key written, that key, what is
/// wrong).
fn resolve_secret(
    table: &mut DeTable<'_>,
    key: &str,
) -> Result<(), (std::ops::Range<usize>, String, String)> {
    let from_file = table.remove_entry(format!("{key}_file").as_str());
    let from_env = table.remove_entry(format!("{key}_env").as_str());
    let given = [
        table.contains_key(key),
        from_file.is_some(),
        from_env.is_some(),
    ];
    let (name, source, read): (_, _, ReadSecret) = match (from_file, from_env) {
        (None, None) => return Ok(()),
        (Some((name, source)), None) => (name, source, read_secret_file),
        (None, Some((name, source))) => (name, source, read_secret_env),
        (Some(_), Some((name, _))) => {
            return Err((
                name.span(),
                name.get_ref().to_string(),
                format!("give only one of {key}, {key}_file and {key}_env"),
            ));
        }
    };
    let fail = |message: String| (name.span(), name.get_ref().to_string(), message);
    if given.iter().filter(|g| **g).count() > 1 {
        return Err(fail(format!(
            "give only one of {key}, {key}_file and {key}_env"
        )));
    }
    let DeValue::String(reference) = source.get_ref() else {
        return Err(fail("must be a string".into()));
    };
    let secret = read(reference).map_err(fail)?;
    if secret.is_empty() {
        return Err(fail(format!("the secret from {reference:?} is empty")));
    }
    let span = source.span();
    table.insert(
        Spanned::new(name.span(), Cow::Owned(key.to_owned())),
        Spanned::new(span, DeValue::String(Cow::Owned(secret))),
    );
    Ok(())
}

/// Reads a secret from where its `KEY_file` / `KEY_env` value points; the error says why not.
type ReadSecret = fn(&str) -> Result<String, String>;

/// The file's content without its trailing newline (editors and `echo` add one).
fn read_secret_file(path: &str) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|e| format!("cannot read secret file {path:?}: {e}"))
}

fn read_secret_env(variable: &str) -> Result<String, String> {
    std::env::var(variable).map_err(|_| format!("environment variable {variable} is not set"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[store]
path = "/tmp/x"

[http]
listen = "127.0.0.1:8080"

[[smsc]]
name = "main"
address = "127.0.0.1:2775"
system_id = "moauth"
password = "secret"
short_code = "10690000"
"#;

    fn error_of(text: &str) -> (usize, String, String) {
        match Config::parse("moauth.toml", text) {
            Err(ConfigError::Invalid {
                line, key, message, ..
            }) => (line, key, message),
            other => panic!("expected an error, got {other:?}"),
        }
    }

    #[test]
    fn documented_example_parses() {
        let config = Config::parse("moauth.toml", GOOD).unwrap();
        assert_eq!(config.smsc[0].short_code, "10690000");
        assert_eq!(config.login.max_age_secs, 600);
    }

    #[test]
    fn the_shipped_config_file_parses() {
        let text = include_str!("../../config/moauth.toml");
        Config::parse("config/moauth.toml", text).unwrap();
    }

    #[test]
    fn an_argon2_cost_argon2_cannot_run_names_its_line() {
        let text = format!("{GOOD}\n[auth.argon2]\nmemory_kib = 4\nparallelism = 4\n");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (16, "auth.argon2.memory_kib"));
        assert!(message.contains("Argon2id"), "{message}");
    }

    #[test]
    fn unknown_key_names_line_and_key() {
        let text = GOOD.replace("listen =", "listn =");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (6, "http.listn"));
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn wrong_type_names_line_and_key() {
        let text = GOOD.replace("\"127.0.0.1:2775\"", "2775");
        let (line, key, _) = error_of(&text);
        assert_eq!((line, key.as_str()), (10, "smsc.address"));
    }

    #[test]
    fn bad_address_names_line_and_key() {
        let text = GOOD.replace("127.0.0.1:8080", "localhost-8080");
        let (line, key, _) = error_of(&text);
        assert_eq!((line, key.as_str()), (6, "http.listen"));
    }

    #[test]
    fn semantic_error_names_line_and_key() {
        let text = GOOD.replace("\"secret\"", "\"much-too-long\"");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (12, "smsc.password"));
        assert!(message.contains("8 characters"));
    }

    #[test]
    fn unreadable_tls_ca_file_names_its_key() {
        let text = GOOD.replace(
            "short_code = \"10690000\"",
            "short_code = \"10690000\"\ntls = true\ntls_ca_file = \"/nonexistent/ca.pem\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (15, "smsc.tls_ca_file"), "{message}");
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
    }

    #[test]
    fn password_file_stands_in_for_password() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("smsc-main");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let text = GOOD.replace(
            "password = \"secret\"",
            &format!("password_file = {:?}", secret.display().to_string()),
        );
        let config = Config::parse("moauth.toml", &text).unwrap();
        assert_eq!(config.smsc[0].password.expose(), "s3cret");
    }

    #[test]
    fn missing_secrets_name_line_and_key() {
        let text = GOOD.replace(
            "password = \"secret\"",
            "password_file = \"/nonexistent/pw\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (12, "smsc.password_file"));
        assert!(message.contains("/nonexistent/pw"), "{message}");

        let text = GOOD.replace(
            "password = \"secret\"",
            "password_env = \"MOAUTH_TEST_SURELY_UNSET_VARIABLE\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (12, "smsc.password_env"));
        assert!(message.contains("is not set"), "{message}");
    }

    #[test]
    fn a_secret_given_twice_is_an_error() {
        let text = GOOD.replace(
            "password = \"secret\"",
            "password = \"secret\"\npassword_env = \"HOME\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (13, "smsc.password_env"));
        assert!(message.contains("only one of"), "{message}");
    }

    #[test]
    fn several_mistakes_are_all_reported() {
        let text = GOOD
            .replace("\"secret\"", "\"much-too-long\"")
            .replace("[store]", "[log]\nlevel = \"loud=[\"\n\n[store]");
        let shown = Config::parse("moauth.toml", &text).unwrap_err().to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2, "{shown}");
        assert!(
            lines[0].starts_with("moauth.toml:3:1: key `log.level`"),
            "{shown}"
        );
        assert!(lines[1].contains("key `smsc.password`"), "{shown}");
    }

    #[test]
    fn a_bad_deny_list_entry_names_its_line_and_key() {
        let text = format!("{GOOD}\n[limits]\ndeny_numbers = [\"+86 139\"]\n");
        let (line, key, message) = error_of(&text);
        assert_eq!(
            (line, key.as_str()),
            (16, "limits.deny_numbers"),
            "{message}"
        );
        assert!(message.contains("E.164"), "{message}");
    }

    #[test]
    fn a_credentials_reserve_over_100_percent_names_its_line_and_key() {
        let text = format!("{GOOD}\n[limits]\nsms_reserved_for_credentials_percent = 150\n");
        let (line, key, message) = error_of(&text);
        assert_eq!(
            (line, key.as_str()),
            (16, "limits.sms_reserved_for_credentials_percent"),
            "{message}"
        );
        assert!(message.contains("0 to 100"), "{message}");
    }

    #[test]
    fn remote_auth_core_takes_its_secret_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("auth-core");
        std::fs::write(&secret, "hmac-key\n").unwrap();
        let text = format!(
            "{GOOD}\n[auth]\nmode = \"remote\"\n\n[auth.remote]\nurl = \"https://accounts.example/moauth\"\nsecret_file = {:?}\n",
            secret.display().to_string()
        );
        let config = Config::parse("moauth.toml", &text).unwrap();
        assert_eq!(config.auth.mode, AuthMode::Remote);
        let remote = config.auth.remote.unwrap();
        assert_eq!(remote.secret.expose(), "hmac-key");
        assert_eq!((remote.timeout_ms, remote.max_wait_secs), (5_000, 900));
    }

    #[test]
    fn remote_auth_core_mistakes_name_line_and_key() {
        let text = format!("{GOOD}\n[auth]\nmode = \"remote\"\n");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (16, "auth.mode"), "{message}");
        assert!(message.contains("[auth.remote]"), "{message}");

        let text = format!(
            "{GOOD}\n[auth]\nmode = \"remote\"\n\n[auth.remote]\nurl = \"http://accounts.example/x\"\nsecret = \"k\"\nbreaker_failures = 0\n"
        );
        let shown = Config::parse("moauth.toml", &text).unwrap_err().to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2, "{shown}");
        assert!(
            lines[0].starts_with("moauth.toml:19:1: key `auth.remote.url`: must be https://"),
            "{shown}"
        );
        assert!(
            lines[1].starts_with("moauth.toml:21:1: key `auth.remote.breaker_failures`"),
            "{shown}"
        );

        let text = format!(
            "{GOOD}\n[auth.remote]\nurl = \"https://a.example/\"\nsecret = \"k\"\nca_file = \"/nonexistent/ca.pem\"\n"
        );
        let (line, key, message) = error_of(&text);
        assert_eq!(
            (line, key.as_str()),
            (18, "auth.remote.ca_file"),
            "{message}"
        );
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");

        let text = format!("{GOOD}\n[auth.remote]\nurl = \"https://a.example/\"\n");
        let (line, key, message) = error_of(&text);
        assert_eq!(
            (line, key.as_str()),
            (15, "auth.remote.secret"),
            "{message}"
        );
    }

    #[test]
    fn webhooks_name_a_backend_and_take_their_secret_from_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("hook");
        std::fs::write(&secret, "hook-secret\n").unwrap();
        let keyed = format!(
            "{GOOD}\n[[http.api_keys]]\nname = \"shop\"\nsha256 = \"{}\"\n",
            "ab".repeat(32)
        );
        let text = format!(
            "{keyed}\n[[webhooks]]\nbackend = \"shop\"\nurl = \"https://shop.example/moauth\"\nsecret_file = {:?}\n",
            secret.display().to_string()
        );
        let config = Config::parse("moauth.toml", &text).unwrap();
        assert_eq!(config.webhooks[0].secret.expose(), "hook-secret");

        let stranger = text.replace("backend = \"shop\"", "backend = \"nobody\"");
        let (line, key, message) = error_of(&stranger);
        assert_eq!((line, key.as_str()), (20, "webhooks.backend"), "{message}");
        let ftp = text.replace("https://shop.example/moauth", "ftp://shop.example/");
        let (_, key, _) = error_of(&ftp);
        assert_eq!(key, "webhooks.url");
        // A `complete` event carries the session: plain http only to loopback, or by choice.
        let plain = text.replace("https://shop.example/moauth", "http://shop.example/moauth");
        let (line, key, message) = error_of(&plain);
        assert_eq!((line, key.as_str()), (21, "webhooks.url"), "{message}");
        assert!(message.contains("allow_plain_http"), "{message}");
        let chosen = format!("{plain}allow_plain_http = true\n");
        assert!(Config::parse("moauth.toml", &chosen).is_ok());
        let local = text.replace("https://shop.example/moauth", "http://127.0.0.1:8081/hook");
        assert!(Config::parse("moauth.toml", &local).is_ok());
        let twice = format!(
            "{keyed}\n[[http.api_keys]]\nname = \"shop\"\nsha256 = \"{}\"\n",
            "cd".repeat(32)
        );
        let (_, key, message) = error_of(&twice);
        assert_eq!(key, "http.api_keys.name", "{message}");
    }

    #[test]
    fn a_line_that_does_not_parse_names_its_key() {
        let text = GOOD.replace("listen = \"127.0.0.1:8080\"", "listen = ");
        let (line, key, _) = error_of(&text);
        assert_eq!((line, key.as_str()), (6, "http.listen"));
    }

    #[test]
    fn an_unknown_section_names_its_line() {
        let text = format!("{GOOD}\n[limit]\npoll_burst = 1\n");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (15, "limit"), "{message}");
    }

    #[test]
    fn the_store_is_sled_unless_the_backend_says_postgres() {
        let config = Config::parse("moauth.toml", GOOD).unwrap();
        assert!(matches!(&config.store, StoreConfig::Sled(s) if s.path == Path::new("/tmp/x")));

        let text = GOOD.replace(
            "path = \"/tmp/x\"",
            "backend = \"postgres\"\nurl_env = \"MOAUTH_TEST_SURELY_UNSET_VARIABLE\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (4, "store.url_env"), "{message}");

        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("db");
        std::fs::write(&secret, "postgres://moauth:pw@db/moauth\n").unwrap();
        let text = GOOD.replace(
            "path = \"/tmp/x\"",
            &format!(
                "backend = \"postgres\"\nurl_file = {:?}\npool_size = 4",
                secret.display().to_string()
            ),
        );
        let StoreConfig::Postgres(postgres) = Config::parse("moauth.toml", &text).unwrap().store
        else {
            panic!("not the postgres store");
        };
        assert_eq!(postgres.url.expose(), "postgres://moauth:pw@db/moauth");
        assert_eq!(
            (postgres.pool_size, postgres.statement_timeout_ms),
            (4, 5_000)
        );
        assert!(!format!("{postgres:?}").contains("pw"));
    }

    #[test]
    fn store_mistakes_name_the_backend_or_the_key_it_does_not_take() {
        let text = GOOD.replace("path = \"/tmp/x\"", "backend = \"mysql\"");
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (3, "store.backend"), "{message}");
        assert!(message.contains("\"sled\" or \"postgres\""), "{message}");

        let text = GOOD.replace(
            "path = \"/tmp/x\"",
            "backend = \"postgres\"\nurl = \"postgres://db/moauth\"\npath = \"/tmp/x\"",
        );
        let (line, key, message) = error_of(&text);
        assert_eq!((line, key.as_str()), (5, "store.path"), "{message}");

        let text = GOOD.replace(
            "path = \"/tmp/x\"",
            "backend = \"postgres\"\nurl = \"mysql://db\"\npool_size = 0",
        );
        let shown = Config::parse("moauth.toml", &text).unwrap_err().to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 2, "{shown}");
        assert!(
            lines[0].starts_with("moauth.toml:4:1: key `store.url`"),
            "{shown}"
        );
        assert!(
            lines[1].starts_with("moauth.toml:5:1: key `store.pool_size`"),
            "{shown}"
        );
    }

    #[test]
    fn error_display_is_file_line_column_key() {
        let text = GOOD.replace("listen =", "listn =");
        let shown = Config::parse("moauth.toml", &text).unwrap_err().to_string();
        assert!(
            shown.starts_with("moauth.toml:6:1: key `http.listn`:"),
            "{shown}"
        );
    }
}
