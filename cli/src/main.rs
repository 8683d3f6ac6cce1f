//! `keepalive-shim`: run a command with the preload library, or check a
//! configuration. Flags, help and validation all come from the settings
//! table in `keepalive-shim-config`, the same code the library parses with.

mod attach;
mod check;
pub mod live;
mod manpage;
mod run;
mod sys;
mod text;

use std::process::ExitCode;

use clap::{Arg, ArgAction, ArgMatches, Command};
use keepalive_shim_config::{Setting, Value, SETTINGS};

/// Markdown-free docs text.
pub fn plain(s: &str) -> String {
    s.replace('`', "")
}

fn variables_help() -> String {
    let mut out = String::from("Environment variables (a flag of `run` overrides its variable):\n");
    for s in SETTINGS {
        let flag = s.flag.map(|f| format!(" (--{f})")).unwrap_or_default();
        out += &format!("  {}{}  [{}]\n", s.var, flag, plain(s.target));
        out += &format!("      {}\n", s.help);
        out += &format!(
            "      default: {}; accepted: {}\n",
            plain(s.default_doc),
            plain(s.accepted)
        );
    }
    out
}

/// Validates a flag's value with the library's own parser.
fn validator(s: &'static Setting) -> impl Fn(&str) -> Result<String, String> + Clone {
    move |v: &str| match Value::parse(s.kind, v.as_bytes()) {
        Some(_) => Ok(v.to_owned()),
        None => Err(format!("accepted: {}", plain(s.accepted))),
    }
}

/// The flag of a table row (`--idle` for `KEEPALIVE_SHIM_IDLE`), if it has
/// one; its value is stored under the variable's name, validated by the
/// library's own parser.
pub fn setting_arg(s: &'static Setting) -> Option<Arg> {
    let flag = s.flag?;
    Some(
        Arg::new(s.var)
            .long(flag)
            .value_name(s.value_name)
            .help(format!("{} Sets {}", s.help, s.var))
            .value_parser(validator(s))
            .allow_hyphen_values(true)
            .action(ArgAction::Set),
    )
}

fn cli() -> Command {
    let flags = SETTINGS.iter().filter_map(setting_arg);
    Command::new("keepalive-shim")
        .version(env!("CARGO_PKG_VERSION"))
        .about("TCP keepalive for unmodified programs, through an LD_PRELOAD library")
        .after_help(variables_help())
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("run")
                .about("Run CMD with the library preloaded (a container ENTRYPOINT: [\"keepalive-shim\", \"run\", \"--\"])")
                .args(flags)
                .arg(
                    Arg::new("command")
                        .value_name("CMD")
                        .help("The command and its arguments, after --")
                        .required(true)
                        .num_args(1..)
                        .trailing_var_arg(true)
                        .value_parser(clap::value_parser!(std::ffi::OsString)),
                )
                .after_help(variables_help()),
        )
        .subcommand(
            Command::new("check")
                .about("Validate the KEEPALIVE_SHIM_* environment and config file and show the effective values; exit 0 if valid, 1 if not")
                .arg(
                    Arg::new("to")
                        .long("to")
                        .value_name("ADDR:PORT")
                        .help("Would a connection to ADDR:PORT get the options? First line: `applies: yes` or `applies: no`"),
                )
                .arg(
                    Arg::new("program")
                        .long("program")
                        .value_name("NAME")
                        .help("The same question for a program name (see KEEPALIVE_SHIM_PROGRAMS)"),
                )
                .after_help(variables_help()),
        )
        .subcommand(
            Command::new("manpages")
                .about("Write the manual pages into DIR (for packagers)")
                .hide(true)
                .arg(Arg::new("dir").value_name("DIR").required(true)),
        )
        .subcommand(live::status_command())
        .subcommand(live::apply_command())
        .subcommand(attach::command())
}

fn main() -> ExitCode {
    let matches: ArgMatches = match cli().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            let _ = e.print();
            // Help and version exit 0; every usage error exits 2.
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match matches.subcommand() {
        Some(("run", m)) => run::run(m),
        Some(("check", m)) => check::check(m),
        Some(("manpages", m)) => {
            let dir = m.get_one::<String>("dir").map_or("man", String::as_str);
            match manpage::write_all(cli(), std::path::Path::new(dir)) {
                Ok(names) => {
                    println!("{}", names.join("\n"));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("keepalive-shim manpages: {dir}: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Some(("status", m)) => live::status::status(m),
        Some(("apply", m)) => live::apply::apply(m),
        Some(("attach", m)) => attach::attach(m),
        _ => ExitCode::from(2),
    }
}
