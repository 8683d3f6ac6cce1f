//! Manual pages, generated like `--help` so that they cannot drift from it:
//! `keepalive-shim(1)` and one page per subcommand from the clap command
//! (clap_mangen), and `keepalive-shim(7)`, the library's variables, from
//! the settings table. `keepalive-shim manpages DIR` writes them
//! (scripts/package.sh does, for the packages).

use std::path::Path;

use clap::Command;
use keepalive_shim_config::SETTINGS;
use roff::{bold, italic, roman, Roff};

use crate::plain;

/// Writes every page into `dir` (created if missing); returns the file names.
pub fn write_all(cli: Command, dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(cli, dir)?;
    std::fs::write(dir.join("keepalive-shim.7"), variables_page())?;
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("keepalive-shim"))
        .collect();
    names.sort();
    Ok(names)
}

/// `keepalive-shim(7)`: the preload library, its variables and files.
pub fn variables_page() -> String {
    let mut page = Roff::new();
    page.control(
        "TH",
        [
            "KEEPALIVE-SHIM",
            "7",
            "",
            concat!("keepalive-shim ", env!("CARGO_PKG_VERSION")),
            "keepalive-shim",
        ],
    );
    page.control("SH", ["NAME"]).text([roman(
        "keepalive-shim, libkeepalive_shim.so - TCP keepalive for unmodified programs, as an LD_PRELOAD library",
    )]);
    page.control("SH", ["SYNOPSIS"])
        .text([
            bold("LD_PRELOAD="),
            italic("/usr/lib/<triplet>/libkeepalive_shim.so"),
            roman(" "),
            bold("KEEPALIVE_SHIM_IDLE="),
            italic("60"),
            roman(" "),
            italic("program"),
        ])
        .control("br", [] as [&str; 0])
        .text([
            bold("keepalive-shim run --idle "),
            italic("60"),
            bold(" -- "),
            italic("program"),
        ]);
    page.control("SH", ["DESCRIPTION"]).text([roman(
        "The library sets SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and \
         (opt-in) TCP_USER_TIMEOUT on the TCP sockets of the program it is preloaded \
         into. It reads its settings once, when it is loaded: from the variables below, \
         then from the config file; later changes to the environment are ignored. \
         An invalid value gets one warning and keeps its default.",
    )]);
    page.control("SH", ["ENVIRONMENT"]);
    for s in SETTINGS {
        page.control("TP", [] as [&str; 0]).text([bold(s.var)]);
        let mut body = vec![roman(plain(s.help))];
        if !s.aliases.is_empty() {
            let names: Vec<&str> = s.aliases.iter().map(|a| a.name).collect();
            body.push(roman(format!(" Also read from: {}.", names.join(", "))));
        }
        page.text(body);
        page.control("br", [] as [&str; 0]).text([
            roman(if s.target.starts_with('(') {
                "Role: "
            } else {
                "Sets: "
            }),
            roman(plain(
                s.target.trim_start_matches('(').trim_end_matches(')'),
            )),
            roman(". Default: "),
            roman(plain(if s.default_doc.is_empty() {
                s.default
            } else {
                s.default_doc
            })),
            roman(". Accepted: "),
            roman(plain(s.accepted)),
            roman("."),
        ]);
        if let Some(flag) = s.flag {
            page.control("br", [] as [&str; 0]).text([
                roman("keepalive-shim run flag: "),
                bold(format!("--{flag}")),
            ]);
        }
    }
    page.control("SH", ["FILES"])
        .control("TP", [] as [&str; 0])
        .text([italic("/etc/keepalive-shim.conf")])
        .text([roman(
            "KEY=value lines, read if the file exists (or the file named by \
             KEEPALIVE_SHIM_CONFIG); the environment overrides it. Blank lines and # \
             comments are allowed; at most 16 KiB.",
        )])
        .control("TP", [] as [&str; 0])
        .text([italic("/etc/ld.so.preload")])
        .text([roman(
            "glibc's host-wide preload list. The library must be named there by its \
             full path in the multiarch directory; setuid programs only load it from \
             a system directory.",
        )]);
    page.control("SH", ["NOTES"]).text([roman(
        "musl has no /etc/ld.so.preload: on musl (Alpine) only LD_PRELOAD and \
         keepalive-shim run apply. Programs that do not call libc's socket functions \
         (static binaries, Go) are not reached.",
    )]);
    page.control("SH", ["SEE ALSO"]).text([
        bold("keepalive-shim"),
        roman("(1), "),
        bold("ld.so"),
        roman("(8), "),
        bold("tcp"),
        roman("(7), "),
        bold("socket"),
        roman("(7)"),
    ]);
    page.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_page_lists_every_setting() {
        let page = variables_page();
        assert!(page.starts_with(".TH") || page.contains("\n.TH"), "{page}");
        for s in SETTINGS {
            assert!(
                page.contains(s.var),
                "{} missing from keepalive-shim(7)",
                s.var
            );
        }
    }

    #[test]
    fn pages_for_the_command_and_its_subcommands() {
        let dir = std::env::temp_dir().join(format!("ks-man-{}", std::process::id()));
        let names = write_all(crate::cli(), &dir).unwrap();
        let run = std::fs::read_to_string(dir.join("keepalive-shim-run.1")).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        for page in [
            "keepalive-shim.1",
            "keepalive-shim-run.1",
            "keepalive-shim.7",
        ] {
            assert!(names.iter().any(|n| n == page), "{page} not in {names:?}");
        }
        assert!(run.contains("idle"), "run's flags are missing: {run}");
    }
}
