//! The shell's dot-commands, as `sqlite3` and `duckdb` users know them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use plugboard_api::Value;

use crate::export::Format;

/// One dot-command: its name, its arguments and what it does, for `.help`.
pub(super) struct Command {
    pub name: &'static str,
    pub args: &'static str,
    pub help: &'static str,
}

pub(super) const COMMANDS: &[Command] = &[
    Command {
        name: "tables",
        args: "[PATTERN]",
        help: "list the tables and views (* and ? match)",
    },
    Command {
        name: "schema",
        args: "TABLE",
        help: "show a table's columns, types and nullability",
    },
    Command {
        name: "describe",
        args: "TABLE",
        help: "the same as .schema",
    },
    Command {
        name: "connections",
        args: "",
        help: "list the configured connections",
    },
    Command {
        name: "use",
        args: "CONNECTION",
        help: "switch to another connection",
    },
    Command {
        name: "mode",
        args: "FORMAT",
        help: "table, csv, json or ndjson",
    },
    Command {
        name: "output",
        args: "[FILE]",
        help: "append results to FILE; no FILE: back to the screen",
    },
    Command {
        name: "timer",
        args: "on|off",
        help: "print how long each statement took",
    },
    Command {
        name: "ttl",
        args: "DURATION|off",
        help: "serve reads from the cache for that long (10m, 1h)",
    },
    Command {
        name: "refresh",
        args: "[on|off]",
        help: "read the next statement (on: every one) again, past the cache",
    },
    Command {
        name: "param",
        args: "set|unset|list|clear …",
        help: "set NAME VALUE binds :NAME in statements",
    },
    Command {
        name: "maxrows",
        args: "N",
        help: "table mode: show at most N rows (0: all)",
    },
    Command {
        name: "maxwidth",
        args: "N",
        help: "table mode: fit lines in N characters (0: cells whole)",
    },
    Command {
        name: "read",
        args: "FILE",
        help: "run the statements and dot-commands in FILE",
    },
    Command {
        name: "help",
        args: "",
        help: "this list",
    },
    Command {
        name: "quit",
        args: "",
        help: "leave the shell (also .exit, Ctrl-D)",
    },
    Command {
        name: "exit",
        args: "",
        help: "leave the shell",
    },
];

/// The formats `.mode` takes: the text ones (binary formats go to files: `plugboard query
/// … -o FILE`).
pub(super) const MODES: &[&str] = &["table", "csv", "json", "ndjson"];

/// A parsed dot-command.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Dot {
    Tables(Option<String>),
    Describe(String),
    Connections,
    Use(String),
    Mode(Format),
    Output(Option<PathBuf>),
    Timer(bool),
    Ttl(Option<Duration>),
    /// `None`: the next read only.
    Refresh(Option<bool>),
    ParamSet(String, Value),
    ParamUnset(String),
    ParamList,
    ParamClear,
    MaxRows(usize),
    MaxWidth(usize),
    Read(PathBuf),
    Help,
    Quit,
}

fn on_off(arg: &str, command: &str) -> anyhow::Result<bool> {
    match arg.to_ascii_lowercase().as_str() {
        "on" | "true" | "1" | "yes" => Ok(true),
        "off" | "false" | "0" | "no" => Ok(false),
        _ => bail!(".{command} takes on or off, not {arg:?}"),
    }
}

fn count(arg: &str, command: &str) -> anyhow::Result<usize> {
    arg.parse()
        .with_context(|| format!(".{command} takes a number of rows or characters, not {arg:?}"))
}

/// Parses a dot-command line (without its `.`).
pub(super) fn parse(line: &str) -> anyhow::Result<Dot> {
    let (name, arg) = line
        .split_once(char::is_whitespace)
        .map_or((line, ""), |(n, a)| (n, a.trim()));
    let needs = |what: &str| -> anyhow::Result<String> {
        if arg.is_empty() {
            bail!(".{name} needs {what}; see .help");
        }
        Ok(arg.to_owned())
    };
    Ok(match name {
        "tables" => Dot::Tables((!arg.is_empty()).then(|| arg.to_owned())),
        "schema" | "describe" => Dot::Describe(needs("a table's name")?),
        "connections" => Dot::Connections,
        "use" => Dot::Use(needs("a connection's name")?),
        "mode" => {
            let format: Format = needs("a format")?.parse().map_err(anyhow::Error::msg)?;
            if format.is_binary() {
                bail!(
                    ".mode {arg}: binary output goes to a file; use plugboard query CONN … -o FILE"
                );
            }
            Dot::Mode(format)
        }
        "output" if arg.is_empty() => Dot::Output(None),
        "output" => Dot::Output(Some(PathBuf::from(arg))),
        "timer" => Dot::Timer(on_off(&needs("on or off")?, name)?),
        "ttl" => match needs("a duration or off")?.as_str() {
            "off" | "none" => Dot::Ttl(None),
            d => Dot::Ttl(Some(
                crate::duration::parse(d).map_err(|e| anyhow::anyhow!(".ttl {d}: {e}"))?,
            )),
        },
        "refresh" if arg.is_empty() => Dot::Refresh(None),
        "refresh" => Dot::Refresh(Some(on_off(arg, name)?)),
        "param" | "parameter" => {
            let mut words = arg.splitn(3, char::is_whitespace);
            match (words.next().unwrap_or(""), words.next(), words.next()) {
                ("set", Some(n), Some(value)) => {
                    let (name, value) =
                        super::super::params::parse_param(&format!("{n}={}", value.trim()))?;
                    Dot::ParamSet(name, value)
                }
                ("unset", Some(n), None) => {
                    Dot::ParamUnset(n.trim_start_matches([':', '@', '$']).to_owned())
                }
                ("list", None, None) | ("", None, None) => Dot::ParamList,
                ("clear", None, None) => Dot::ParamClear,
                _ => bail!(".param takes set NAME VALUE, unset NAME, list or clear"),
            }
        }
        "maxrows" => Dot::MaxRows(count(&needs("a number")?, name)?),
        "maxwidth" => Dot::MaxWidth(count(&needs("a number")?, name)?),
        "read" => Dot::Read(PathBuf::from(needs("a file")?)),
        "help" => Dot::Help,
        "quit" | "exit" | "q" => Dot::Quit,
        "" => bail!("a lone `.` is not a command; see .help"),
        other => {
            let hint = crate::util::closest(other, COMMANDS.iter().map(|c| c.name))
                .map(|c| format!("; did you mean .{c}?"))
                .unwrap_or_default();
            bail!("unknown command .{other}{hint} (.help lists them)")
        }
    })
}

/// `.help`'s text.
pub(super) fn help() -> String {
    let width = COMMANDS
        .iter()
        .map(|c| c.name.len() + c.args.len() + 2)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for c in COMMANDS {
        let usage = format!(".{} {}", c.name, c.args);
        out.push_str(&format!("{usage:width$}  {}\n", c.help));
    }
    out.push_str("End SQL statements with ;  Ctrl-C cancels a running statement, Ctrl-D leaves.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses() {
        assert_eq!(parse("tables").unwrap(), Dot::Tables(None));
        assert_eq!(
            parse("tables Al*").unwrap(),
            Dot::Tables(Some("Al*".into()))
        );
        assert_eq!(
            parse("schema Track").unwrap(),
            Dot::Describe("Track".into())
        );
        assert_eq!(
            parse("describe  public.t ").unwrap(),
            Dot::Describe("public.t".into())
        );
        assert_eq!(parse("connections").unwrap(), Dot::Connections);
        assert_eq!(parse("use pg").unwrap(), Dot::Use("pg".into()));
        assert_eq!(parse("mode csv").unwrap(), Dot::Mode(Format::Csv));
        assert_eq!(
            parse("output out.csv").unwrap(),
            Dot::Output(Some("out.csv".into()))
        );
        assert_eq!(parse("output").unwrap(), Dot::Output(None));
        assert_eq!(parse("timer on").unwrap(), Dot::Timer(true));
        assert_eq!(
            parse("ttl 10m").unwrap(),
            Dot::Ttl(Some(Duration::from_secs(600)))
        );
        assert_eq!(parse("ttl off").unwrap(), Dot::Ttl(None));
        assert_eq!(parse("refresh").unwrap(), Dot::Refresh(None));
        assert_eq!(parse("refresh off").unwrap(), Dot::Refresh(Some(false)));
        assert_eq!(
            parse("param set id 5").unwrap(),
            Dot::ParamSet("id".into(), Value::Int(5))
        );
        assert_eq!(
            parse("param set :name AC/DC and more").unwrap(),
            Dot::ParamSet("name".into(), Value::String("AC/DC and more".into()))
        );
        assert_eq!(
            parse("param unset :id").unwrap(),
            Dot::ParamUnset("id".into())
        );
        assert_eq!(parse("param list").unwrap(), Dot::ParamList);
        assert_eq!(parse("param clear").unwrap(), Dot::ParamClear);
        assert_eq!(parse("maxrows 5").unwrap(), Dot::MaxRows(5));
        assert_eq!(parse("maxwidth 0").unwrap(), Dot::MaxWidth(0));
        assert_eq!(parse("read q.sql").unwrap(), Dot::Read("q.sql".into()));
        assert_eq!(parse("help").unwrap(), Dot::Help);
        assert_eq!(parse("quit").unwrap(), Dot::Quit);
        assert_eq!(parse("exit").unwrap(), Dot::Quit);
    }

    #[test]
    fn bad_commands_say_what_is_wrong() {
        let err = |l: &str| parse(l).unwrap_err().to_string();
        assert_eq!(
            err("tabels"),
            "unknown command .tabels; did you mean .tables? (.help lists them)"
        );
        assert_eq!(
            err("frobnicate"),
            "unknown command .frobnicate (.help lists them)"
        );
        assert_eq!(err("schema"), ".schema needs a table's name; see .help");
        assert!(
            err("mode parquet").contains("binary output goes to a file"),
            "{}",
            err("mode parquet")
        );
        assert!(
            err("mode xml").contains("unknown format"),
            "{}",
            err("mode xml")
        );
        assert_eq!(err("timer maybe"), ".timer takes on or off, not \"maybe\"");
        assert!(
            err("ttl soon").starts_with(".ttl soon: "),
            "{}",
            err("ttl soon")
        );
        assert!(
            err("param set x").starts_with(".param takes"),
            "{}",
            err("param set x")
        );
        assert!(err("maxrows lots").contains("not \"lots\""));
    }

    #[test]
    fn help_lists_every_command() {
        let help = help();
        for c in COMMANDS {
            assert!(help.contains(&format!(".{}", c.name)), "{}", c.name);
        }
    }
}
