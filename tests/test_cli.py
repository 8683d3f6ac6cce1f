"""The `keepalive-shim` command: `run` (the container entrypoint form) and `check`."""
import json
import os
import shutil
import signal
import sys

from conftest import CLI, LIB, PROBE, ROOT, clean_env, run

SHOW_ENV = ("import json, os; print(json.dumps({k: v for k, v in os.environ.items() "
            "if k.startswith('KEEPALIVE_SHIM') or k == 'LD_PRELOAD'}))")


def shim_run(*args, env=None, **kw):
    return run([str(CLI), "run", *args], env if env is not None else clean_env(), **kw)


def test_run_sets_environment_and_preload():
    r = shim_run("--idle", "2m", "--interval", "5", "--count", "3", "--user-timeout", "off",
                 "--log", "info", "--log-file", "/tmp/ks-test.log", "--", sys.executable, "-c", SHOW_ENV)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {
        "KEEPALIVE_SHIM_IDLE": "2m", "KEEPALIVE_SHIM_INTERVAL": "5", "KEEPALIVE_SHIM_COUNT": "3",
        "KEEPALIVE_SHIM_USER_TIMEOUT": "off", "KEEPALIVE_SHIM_LOG": "info",
        "KEEPALIVE_SHIM_LOG_FILE": "/tmp/ks-test.log", "LD_PRELOAD": str(LIB.resolve()),
    }


def test_run_really_preloads(tmp_path):
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    r = shim_run("--idle", "9", "--count", "2", "--user-timeout", "auto", "--", sys.executable, PROBE,
                 "connect", "127.0.0.1",
                 str(srv.getsockname()[1]))
    srv.close()
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert (got["SO_KEEPALIVE"], got["TCP_KEEPIDLE"], got["TCP_KEEPCNT"]) == (1, 9, 2)
    assert got["TCP_USER_TIMEOUT"] == (9 + 10 * 2) * 1000


def test_flag_overrides_environment():
    env = clean_env()
    env["KEEPALIVE_SHIM_IDLE"] = "100"
    env["KEEPALIVE_SHIM_COUNT"] = "8"
    r = shim_run("--idle", "5", "--", sys.executable, "-c", SHOW_ENV, env=env)
    got = json.loads(r.stdout)
    assert got["KEEPALIVE_SHIM_IDLE"] == "5"
    assert got["KEEPALIVE_SHIM_COUNT"] == "8"  # untouched when no flag is given


def test_existing_preload_is_kept_and_ours_not_added_twice(tmp_path):
    other = tmp_path / "libother.so"
    shutil.copy(LIB, other)  # any loadable library will do
    env = clean_env()
    env["LD_PRELOAD"] = str(other)
    r = shim_run("--", sys.executable, "-c", SHOW_ENV, env=env)
    assert json.loads(r.stdout)["LD_PRELOAD"] == f"{LIB.resolve()}:{other}"
    # Nested: run under run keeps one copy of ours, first.
    r = shim_run("--", str(CLI), "run", "--", sys.executable, "-c", SHOW_ENV, env=env)
    assert json.loads(r.stdout)["LD_PRELOAD"] == f"{LIB.resolve()}:{other}"


def test_exit_status_and_signals_pass_through():
    assert shim_run("--", "sh", "-c", "exit 7").returncode == 7
    assert shim_run("--", "true").returncode == 0
    r = shim_run("--", "sh", "-c", "kill -TERM $$")
    assert r.returncode == -signal.SIGTERM  # exec'd: the wrapper's own process died of it


def test_signal_sent_to_wrapper_reaches_command():
    import subprocess
    p = subprocess.Popen([str(CLI), "run", "--", sys.executable, "-c",
                          "import signal, sys; signal.signal(signal.SIGUSR1, lambda *a: sys.exit(42)); "
                          "print('ready', flush=True); signal.pause()"],
                         env=clean_env(), stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGUSR1)  # the wrapper's pid is the command's pid
        assert p.wait(timeout=10) == 42
    finally:
        p.kill()
        p.wait()


def test_bad_flag_exits_2_and_does_not_start_command(tmp_path):
    marker = tmp_path / "started"
    for flag, value in (("--idle", "0"), ("--count", "128"), ("--user-timeout", "soon"),
                        ("--log", "loud"), ("--log-file", "relative.log"), ("--interval", "-1")):
        r = shim_run(flag, value, "--", "touch", str(marker))
        assert r.returncode == 2, (flag, value)
        assert "accepted:" in r.stderr, r.stderr
        assert not marker.exists()
    r = shim_run("--no-such-flag", "--", "touch", str(marker))
    assert r.returncode == 2 and not marker.exists()


def test_missing_command_and_library():
    assert shim_run("--", "/nonexistent/cmd").returncode == 127
    env = clean_env()
    env["KEEPALIVE_SHIM_LIBRARY"] = "/nonexistent/libkeepalive_shim.so"
    r = shim_run("--", "true", env=env)
    assert r.returncode == 2 and "does not exist" in r.stderr


def test_library_found_in_lib_dir_not_cwd(tmp_path):
    """Installed as bin/keepalive-shim + lib/libkeepalive_shim.so; a library
    in the current directory is never used."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "lib").mkdir()
    shutil.copy(CLI, tmp_path / "bin" / "keepalive-shim")
    shutil.copy(LIB, tmp_path / "lib" / "libkeepalive_shim.so")
    r = run([str(tmp_path / "bin" / "keepalive-shim"), "run", "--", sys.executable, "-c", SHOW_ENV],
            clean_env())
    assert json.loads(r.stdout)["LD_PRELOAD"] == str((tmp_path / "lib" / "libkeepalive_shim.so").resolve())
    os.remove(tmp_path / "lib" / "libkeepalive_shim.so")
    shutil.copy(LIB, tmp_path / "libkeepalive_shim.so")
    r = run([str(tmp_path / "bin" / "keepalive-shim"), "run", "--", "true"], clean_env(), cwd=tmp_path)
    assert r.returncode == 2 and "cannot find libkeepalive_shim.so" in r.stderr


def test_check_valid_configuration():
    env = clean_env()
    env.update(KEEPALIVE_SHIM_IDLE="30", KEEPALIVE_SHIM_COUNT="5")
    r = run([str(CLI), "check"], env)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert any(ln.split()[:3] == ["KEEPALIVE_SHIM_IDLE", "30", "s"] and ln.endswith("(KEEPALIVE_SHIM_IDLE)")
               for ln in lines), r.stdout
    assert any(ln.startswith("KEEPALIVE_SHIM_INTERVAL") and ln.endswith("(default)") for ln in lines)
    assert "off" in next(ln for ln in lines if ln.startswith("KEEPALIVE_SHIM_USER_TIMEOUT"))
    env.update(KEEPALIVE_SHIM_USER_TIMEOUT="auto")
    r = run([str(CLI), "check"], env)
    assert "auto = 80000 ms" in r.stdout  # (30 + 10 x 5) s
    assert "idle connection:     80 s" in r.stdout
    assert "net.ipv4.tcp_keepalive_time" in r.stdout
    assert lines[-1] == "configuration: valid"


def test_check_invalid_configuration():
    env = clean_env()
    env.update(KEEPALIVE_SHIM_COUNT="0", KEEPALIVE_SHIM_TYPO="1")
    r = run([str(CLI), "check"], env)
    assert r.returncode == 1
    # The report names each problem itself: stdout is the whole answer.
    assert 'KEEPALIVE_SHIM_COUNT="0" is not valid (accepted: 1 to 127)' in r.stdout
    assert "KEEPALIVE_SHIM_TYPO is not a keepalive-shim setting" in r.stdout
    assert r.stdout.splitlines()[-1].startswith("configuration: INVALID")


def test_check_reports_switch_off():
    env = clean_env()
    env["KEEPALIVE_SHIM"] = "off"
    r = run([str(CLI), "check"], env)
    assert r.returncode == 0
    assert "the shim is off" in r.stdout


def test_help_lists_every_variable_and_flag():
    from_table = run([str(CLI), "run", "--help"], clean_env())
    assert from_table.returncode == 0
    for var in ("KEEPALIVE_SHIM_IDLE", "KEEPALIVE_SHIM_INTERVAL", "KEEPALIVE_SHIM_COUNT",
                "KEEPALIVE_SHIM_USER_TIMEOUT", "KEEPALIVE_SHIM_LOG", "KEEPALIVE_SHIM_LOG_FILE",
                "KEEPALIVE_SHIM_LIBRARY"):
        assert var in from_table.stdout
    for flag in ("--idle", "--interval", "--count", "--user-timeout", "--log ", "--log-file"):
        assert flag in from_table.stdout


def test_readme_systemd_drop_in_works(tmp_path):
    """The README's systemd drop-in, its Environment= lines applied the way
    systemd does (space-separated assignments, later ones win), with the
    library path pointed at the build: the service's sockets get the options."""
    import re
    import shlex
    import socket
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"```ini\n(\[Service\]\n.*?)```", readme, re.S).group(1)
    env = clean_env()
    for line in block.splitlines():
        if line.startswith("Environment="):
            for assignment in shlex.split(line[len("Environment="):]):
                key, _, value = assignment.partition("=")
                env[key] = value
    assert env["LD_PRELOAD"].endswith("libkeepalive_shim.so")
    env["LD_PRELOAD"] = str(LIB)  # where this checkout built it
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    r = run([sys.executable, PROBE, "connect", "127.0.0.1", str(srv.getsockname()[1])], env)
    srv.close()
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    # Not the defaults (60/10/6): the drop-in's values really arrived.
    assert (got["SO_KEEPALIVE"], got["TCP_KEEPIDLE"], got["TCP_KEEPINTVL"], got["TCP_KEEPCNT"]) == (1, 45, 15, 4)
    assert got["TCP_USER_TIMEOUT"] == 0  # opt-in; the drop-in does not ask for it
    assert "TCP_KEEPCNT=4" in r.stderr  # LOG=info: the one line per socket, for the journal
