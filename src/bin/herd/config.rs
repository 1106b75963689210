//! `herd serve`'s configuration in layers, gunicorn's way: the command line over `HERD_CMD_ARGS`
//! (arguments in an environment variable, as `GUNICORN_CMD_ARGS`) over the configuration file
//! (`-c/--config FILE`, TOML: every flag is a key of the same name) over the defaults (some of
//! which come from the environment: `WEB_CONCURRENCY`, `PORT`).
//!
//! Each layer is parsed by clap on its own, so a bad value is reported with the layer it came
//! from (the file and line, or the variable); then, per setting, the highest layer that gives it
//! wins, a repeatable one (`bind`, `cron-job`) as a whole.

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory};
use std::collections::BTreeMap;
use std::ffi::OsString;

/// The environment variable holding extra arguments.
pub(crate) const CMD_ARGS_ENV: &str = "HERD_CMD_ARGS";

/// Settings a file or `HERD_CMD_ARGS` may not give (they say which file to read, or print).
const COMMAND_LINE_ONLY: [&str; 3] = ["config", "print_config", "check_config"];

/// `argv` with every layer below the command line merged in, for clap to parse once more; or
/// why not, naming the layer.
pub(crate) fn layered(argv: Vec<OsString>) -> Result<Vec<OsString>, String> {
    let cmd = crate::Cli::command();
    let Ok(top) = cmd.clone().try_get_matches_from(&argv) else {
        // clap reports it, with its own exit code, when the caller parses again.
        return Ok(argv);
    };
    let Some(("serve", cli)) = top.subcommand() else { return Ok(argv) };
    let serve = cmd.find_subcommand("serve").expect("serve").clone();
    let parse = |tokens: Vec<OsString>, from: &str| -> Result<ArgMatches, String> {
        let mut all: Vec<OsString> = vec!["herd serve".into()];
        all.extend(tokens);
        serve.clone().try_get_matches_from(all).map_err(|e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or_default().trim_start_matches("error: ");
            format!("{from}: {first}")
        })
    };
    let mut layers: Vec<ArgMatches> = Vec::new();
    if let Ok(extra) = std::env::var(CMD_ARGS_ENV) {
        let tokens = shlex::split(&extra).ok_or_else(|| format!("{CMD_ARGS_ENV}: unbalanced quotes"))?;
        let m = parse(tokens.into_iter().map(OsString::from).collect(), CMD_ARGS_ENV)?;
        forbid_here(&m, CMD_ARGS_ENV)?;
        layers.push(m);
    }
    if let Some(path) = cli.get_one::<std::path::PathBuf>("config") {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: {e}"))?;
        let tokens = file_tokens(&serve, &text, &shown)?;
        let m = parse(tokens, &shown)?;
        forbid_here(&m, &shown)?;
        layers.push(m);
    }
    if layers.is_empty() {
        return Ok(argv);
    }
    // The command line as given, then what each lower layer gives that no higher one does.
    let at = argv.iter().position(|a| a == "serve").expect("the serve subcommand");
    let (mut out, mut rest): (Vec<OsString>, Vec<OsString>) = (argv[..=at].to_vec(), argv[at + 1..].to_vec());
    let trailing = match rest.iter().position(|a| a == "--") {
        Some(i) => rest.split_off(i),
        None => Vec::new(),
    };
    out.extend(rest);
    let mut given: Vec<&ArgMatches> = vec![cli];
    let mut command: Option<Vec<OsString>> = None;
    for layer in &layers {
        for arg in serve.get_arguments() {
            let id = arg.get_id().as_str();
            let here = layer.value_source(id) == Some(ValueSource::CommandLine);
            if !here || given.iter().any(|m| m.value_source(id) == Some(ValueSource::CommandLine)) {
                continue;
            }
            if arg.is_last_set() {
                command.get_or_insert_with(|| raw(layer, id));
                continue;
            }
            let long = arg.get_long().expect("every serve setting has a long name");
            match arg.get_action() {
                ArgAction::SetTrue => out.push(format!("--{long}").into()),
                _ => {
                    for v in raw(layer, id) {
                        out.push(format!("--{long}").into());
                        out.push(v);
                    }
                }
            }
        }
        given.push(layer);
    }
    if trailing.is_empty()
        && let Some(c) = command
    {
        out.push("--".into());
        out.extend(c);
    }
    out.extend(trailing);
    Ok(out)
}

fn raw(m: &ArgMatches, id: &str) -> Vec<OsString> {
    m.get_raw(id).map(|v| v.map(OsString::from).collect()).unwrap_or_default()
}

fn forbid_here(m: &ArgMatches, from: &str) -> Result<(), String> {
    for id in COMMAND_LINE_ONLY {
        if m.value_source(id) == Some(ValueSource::CommandLine) {
            return Err(format!("{from}: {} is for the command line only", id.replace('_', "-")));
        }
    }
    Ok(())
}

/// A configuration file as command-line tokens: `key = value` is `--key value`, `key = true` a
/// bare `--key`, `key = [a, b]` the flag repeated; `command = [...]` the program after `--`.
/// Keys are flag names (`max-requests`, or `max_requests` as in gunicorn's Python files).
fn file_tokens(serve: &clap::Command, text: &str, shown: &str) -> Result<Vec<OsString>, String> {
    let table: BTreeMap<String, toml::Spanned<toml::Value>> =
        toml::from_str(text).map_err(|e| format!("{shown}: {}", e.to_string().trim_end()))?;
    let line = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
    let mut tokens = Vec::new();
    let mut command = Vec::new();
    for (key, value) in table {
        let at = line(value.span().start);
        let name = key.replace('_', "-");
        let bad = |why: String| format!("{shown}, line {at}: {key}: {why}");
        let scalar = |v: &toml::Value| -> Result<String, String> {
            match v {
                toml::Value::String(s) => Ok(s.clone()),
                toml::Value::Integer(i) => Ok(i.to_string()),
                toml::Value::Float(f) => Ok(f.to_string()),
                toml::Value::Boolean(b) => Ok(b.to_string()),
                other => Err(format!("expected a string, a number or a boolean, not {}", other.type_str())),
            }
        };
        if name == "command" {
            let toml::Value::Array(words) = value.get_ref() else {
                return Err(bad("expected an array of words, e.g. [\"python3\", \"app.py\"]".into()));
            };
            command =
                words.iter().map(|w| scalar(w).map(OsString::from)).collect::<Result<_, _>>().map_err(bad)?;
            continue;
        }
        let Some(arg) = serve.get_arguments().find(|a| {
            a.get_long() == Some(name.as_str())
                || a.get_all_aliases().is_some_and(|al| al.contains(&name.as_str()))
        }) else {
            return Err(bad("no such setting (a flag of herd serve, without its dashes)".into()));
        };
        let long = arg.get_long().expect("a long name");
        match (arg.get_action(), value.get_ref()) {
            (ArgAction::SetTrue, toml::Value::Boolean(true)) => tokens.push(format!("--{long}").into()),
            (ArgAction::SetTrue, toml::Value::Boolean(false)) => {}
            (ArgAction::SetTrue, _) => return Err(bad("expected true or false".into())),
            (_, toml::Value::Array(items)) => {
                for item in items {
                    tokens.push(format!("--{long}").into());
                    tokens.push(scalar(item).map_err(bad)?.into());
                }
            }
            (_, v) => {
                tokens.push(format!("--{long}").into());
                tokens.push(scalar(v).map_err(bad)?.into());
            }
        }
    }
    if !command.is_empty() {
        tokens.push("--".into());
        tokens.extend(command);
    }
    Ok(tokens)
}

/// The configuration in force, as a TOML file that gives it (`--print-config`): every setting
/// with its value, defaults included; secrets redacted.
pub(crate) fn print(argv: &[OsString]) -> String {
    let cmd = crate::Cli::command();
    let top = cmd.clone().get_matches_from(argv);
    let Some(("serve", m)) = top.subcommand() else { return String::new() };
    let serve = cmd.find_subcommand("serve").expect("serve");
    let mut out = String::from("# herd serve: the configuration in force (--print-config)\n");
    for arg in serve.get_arguments() {
        let id = arg.get_id().as_str();
        if arg.is_hide_set() || COMMAND_LINE_ONLY.contains(&id) || id == "help" {
            continue;
        }
        let values: Vec<String> = raw(m, id)
            .iter()
            .map(|v| {
                let v = v.to_string_lossy();
                if id == "registry_store" { herd::store::redact(&v) } else { v.into_owned() }
            })
            .collect();
        let key =
            if arg.is_last_set() { "command".to_owned() } else { arg.get_long().unwrap_or(id).to_owned() };
        let quoted: Vec<String> = values.iter().map(|v| toml::Value::String(v.clone()).to_string()).collect();
        let value = match (arg.get_action(), quoted.len()) {
            (ArgAction::SetTrue, _) => (m.get_flag(id)).to_string(),
            (_, 0) => {
                // A default computed from other settings is stated in its help, in brackets.
                let help = arg.get_long_help().or(arg.get_help()).map(|h| h.to_string()).unwrap_or_default();
                let default =
                    help.split_once("[default: ").and_then(|(_, d)| d.split_once(']')).map(|(d, _)| d);
                out.push_str(&format!("# {key} = ({})\n", default.unwrap_or("none")));
                continue;
            }
            (ArgAction::Append, _) => format!("[{}]", quoted.join(", ")),
            _ if arg.is_last_set() => format!("[{}]", quoted.join(", ")),
            _ => quoted[0].clone(),
        };
        out.push_str(&format!("{key} = {value}\n"));
    }
    out
}
