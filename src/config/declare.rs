//! How a setting is declared (the `settings!` macro, which mod.rs invokes once with every
//! setting) and the settings table it renders for docs/operations.md.

use std::fmt::Write as _;

use super::SETTINGS;

/// One setting as declared, for looking up its environment variable and for the
/// docs table.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    /// Its key in `tessera.toml`, which is also its [`Config`] field.
    pub key: &'static str,
    /// Its environment variable.
    pub env: &'static str,
    /// Its default as written, where `{other}` stands for another setting's value;
    /// `None` when it stays unset unless given.
    pub default: Option<&'static str>,
    /// Its doc comment, one line per line.
    pub doc: &'static str,
}

/// Declares every setting once:
///
/// ```text
/// /// Doc: the field's rustdoc and the setting's line in docs/operations.md.
/// key: Type {
///     env: "TESSERA_KEY",
///     default: "30s",            // or `unset` for an `Option` that stays None
///     parse: duration(),         // a `Parse`: text to value, and the message if not
///     check: |v| !v.is_zero() => "must be at least 1s",   // optional
/// }
/// ```
///
/// `key` is the [`Config`] field and the `tessera.toml` key. A default may name an
/// earlier setting's value, as in `"http://{bind}"`. Settings are read, parsed and
/// checked in the order declared; then [`check_relations`] runs.
macro_rules! settings {
    (@shown unset) => { None };
    (@shown $default:literal) => { Some($default) };
    (@value $p:ident, $key:ident, unset, $parse:expr) => {
        $p.optional(stringify!($key), &$parse)?
    };
    (@value $p:ident, $key:ident, $default:literal, $parse:expr) => {
        $p.required(stringify!($key), format!($default), &$parse)?
    };
    ($(
        $(#[doc = $doc:literal])+
        $key:ident: $ty:ty {
            env: $env:literal,
            default: $default:tt,
            parse: $parse:expr
            $(, check: $check:expr => $problem:literal)?
            $(,)?
        }
    )*) => {
        /// The validated configuration, built once at start.
        #[derive(Debug, Clone)]
        pub struct Config {
            $( $(#[doc = $doc])+ pub $key: $ty, )*
        }

        /// Every setting, in the order declared.
        pub const SETTINGS: &[Setting] = &[ $(
            Setting {
                key: stringify!($key),
                env: $env,
                default: settings!(@shown $default),
                doc: concat!($($doc, "\n"),+),
            },
        )* ];

        impl Layers {
            /// Parses and checks every setting from the layers, then the rules between them.
            pub fn build(&self) -> Result<Config, ConfigError> {
                let p = Parser { layers: self };
                $(
                    let $key: $ty = settings!(@value p, $key, $default, $parse);
                    $(
                        if !holds(&$key, $check) {
                            return Err(p.invalid(stringify!($key), $problem));
                        }
                    )?
                )*
                let cfg = Config { $($key,)* };
                check_relations(&cfg).map_err(|(key, problem)| p.invalid(key, problem))?;
                Ok(cfg)
            }
        }
    };
}

/// The settings table of `docs/operations.md`, rendered from the declarations.
pub fn settings_table() -> String {
    let mut out = String::from(
        "| `tessera.toml` key | environment | default | |\n| --- | --- | --- | --- |\n",
    );
    for s in SETTINGS {
        let default = match s.default {
            None | Some("") => "(none)".to_string(),
            Some(d) => format!("`{d}`"),
        };
        let doc: Vec<&str> = s.doc.lines().map(str::trim).collect();
        let _ = writeln!(
            out,
            "| `{}` | `{}` | {default} | {} |",
            s.key,
            s.env,
            doc.join(" ")
        );
    }
    out
}
