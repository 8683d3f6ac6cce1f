"""Configuration that cannot silently do the opposite of what was meant, and
a `check` that reaches exactly the library's conclusions.

Every case runs a real program under the library and reads the kernel's
values back (getsockopt), then asks `keepalive-shim check --to` about the
same destination and compares: `applies: no` must mean the kernel defaults,
`applies: yes` must mean exactly the values on its `with:` line. Values
differ from the kernel's defaults (7200/75/9/0) so that a library that did
not run cannot pass."""
import json
import os
import socket
import subprocess
import sys

import pytest

from conftest import CLI, KERNEL_DEFAULT, LIB, PROBE, clean_env, program, run, shim_env

# Explicit values, the user timeout included: no case depends on a default.
SET = dict(idle=7, interval=3, count=4, user_timeout="4500ms")
APPLIED = {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 7, "TCP_KEEPINTVL": 3, "TCP_KEEPCNT": 4,
           "TCP_USER_TIMEOUT": 4500}


def kernel_state(env, host, port):
    """What the kernel has on a connection a plain program made under `env`,
    and the program's stderr (where the library warns)."""
    r = run([sys.executable, PROBE, "connect", host, str(port)], env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def check(env, *args):
    env = {k: v for k, v in env.items() if k != "LD_PRELOAD"}
    return run([str(CLI), "check", *args], env)


def check_says(env, dest):
    """check --to DEST, as the kernel state the library would leave."""
    r = check(env, "--to", dest)
    lines = r.stdout.splitlines()
    assert lines[0] in ("applies: yes", "applies: no"), r.stdout
    if lines[0] == "applies: no":
        return dict(KERNEL_DEFAULT), r
    with_line = next(ln for ln in lines if ln.startswith("with: "))
    values = dict(kv.split("=") for kv in with_line[len("with: "):].split(" (")[0].split())
    return {k: 0 if v == "off" else int(v) for k, v in values.items()}, r


def agree(env, host, port):
    """The library's result on a real connection, after asserting that
    `check --to` predicted exactly that."""
    got, err = kernel_state(env, host, port)
    dest = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    predicted, r = check_says(env, dest)
    assert predicted == got, (env, r.stdout, got)
    return got, err, r


def warnings(stderr):
    return [ln for ln in stderr.splitlines() if ln.startswith("keepalive-shim[")]


def row(stdout, var):
    return next(ln for ln in stdout.splitlines() if ln.split()[:1] == [var])


@pytest.fixture
def listener6():
    s = socket.socket(socket.AF_INET6)
    s.bind(("::1", 0))
    s.listen(64)
    yield s.getsockname()[1]
    s.close()


# --- IPv6 filter spellings ----------------------------------------------------------

def test_ipv6_spellings_people_write(listener6):
    port = listener6
    matching = ["::1", "::1/128", "[::1]", "[::1]/128", "[::1/128]", f"[::1]/128:{port}",
                f"[::1/128]:{port}", f"[::]/0:{port}-{port}", "::/0"]
    for include in matching:
        got, err, r = agree(shim_env(include=include, **SET), "::1", port)
        assert got == APPLIED, include
        assert warnings(err) == [] and r.returncode == 0, (include, err, r.stdout)
    for include in ["fd00::/8", f"[::1]/128:{port + 1}", "127.0.0.1"]:
        got, err, r = agree(shim_env(include=include, **SET), "::1", port)
        assert got == KERNEL_DEFAULT, include
        assert warnings(err) == [] and r.returncode == 0, (include, err)
    # EXCLUDE takes the same spellings.
    got, _, _ = agree(shim_env(exclude="::1", **SET), "::1", port)
    assert got == KERNEL_DEFAULT


# --- invalid entries: no socket is touched ------------------------------------------------

@pytest.mark.parametrize("include,exclude,bad", [
    ("127.0.0.1, [::1]/129", "", "[::1]/129"),       # the valid part matches
    ("fd00::/129", "", "fd00::/129"),               # the only entry is invalid
    ("", "10.0.0.0/33", "10.0.0.0/33"),             # an EXCLUDE entry
    ("127.0.0.0/8", ":5432, :99999", ":99999"),
])
def test_an_invalid_filter_entry_leaves_every_socket_alone(listener, include, exclude, bad):
    env = shim_env(include=include, exclude=exclude, **SET)
    got, err, r = agree(env, "127.0.0.1", listener)
    assert got == KERNEL_DEFAULT  # SO_KEEPALIVE 0: nothing was set
    lines = warnings(err)
    assert len(lines) == 1 and f'"{bad}" is not valid' in lines[0], err
    assert "no socket gets the options" in lines[0]
    # check says so, in the report itself, and exits 1.
    assert r.returncode == 1
    assert "an INCLUDE or EXCLUDE entry is invalid" in r.stdout
    var = "KEEPALIVE_SHIM_INCLUDE" if bad in include else "KEEPALIVE_SHIM_EXCLUDE"
    assert "INVALID: no socket" in row(r.stdout, var), r.stdout
    assert f'"{bad}" is not valid' in r.stdout and r.stderr == ""
    assert "idle connection:" not in r.stdout  # no worst case: nothing is protected
    assert "no socket gets the options: an entry of" in r.stdout


def test_an_invalid_filter_leaves_servers_alone_too():
    """A listening socket and the connection it accepts, under an INCLUDE
    whose valid part covers them."""
    env = shim_env(include="127.0.0.0/8, :0", **SET)
    r = run([sys.executable, program("client_sets_two")], env)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    untouched = list(KERNEL_DEFAULT.values())
    assert got["listener"] == untouched and got["accepted"] == untouched
    assert got["client"] == [0, 60, 75, 9, 0]  # only what the program set itself
    assert len(warnings(r.stderr)) == 1


def test_an_invalid_program_name_makes_the_shim_inert(listener):
    exe = os.path.basename(os.path.realpath(sys.executable))
    env = shim_env(programs=f"{exe}, /usr/bin/{exe}", **SET)
    got, err, r = agree(env, "127.0.0.1", listener)
    assert got == KERNEL_DEFAULT
    lines = warnings(err)  # not silent: the program itself says why
    assert len(lines) == 1 and f'"/usr/bin/{exe}" is not valid' in lines[0], err
    assert "KEEPALIVE_SHIM_PROGRAMS has an invalid entry" in r.stdout
    r = check(env, "--program", exe)
    assert r.stdout.startswith("applies: no\n") and r.returncode == 1, r.stdout
    assert "INVALID: no program" in row(r.stdout, "KEEPALIVE_SHIM_PROGRAMS")


# --- check tells the truth ------------------------------------------------------------------

def test_an_oversized_config_file_is_ignored_by_both(listener, tmp_path):
    conf = tmp_path / "big.conf"
    conf.write_text("KEEPALIVE_SHIM_IDLE=33\n" + "# padding\n" * 2048)  # 20 KiB
    assert conf.stat().st_size > 20 * 1024
    # COUNT from the environment proves the library ran; IDLE is the default.
    env = shim_env(config=conf, interval=3, count=4, user_timeout="4500ms")
    got, err, r = agree(env, "127.0.0.1", listener)
    assert got == dict(APPLIED, TCP_KEEPIDLE=60)
    assert "over 16 KiB" in err
    assert r.returncode == 1
    assert row(r.stdout, "KEEPALIVE_SHIM_IDLE").split()[1:4] == ["60", "s", "(default)"], r.stdout
    assert "INVALID" in row(r.stdout, "KEEPALIVE_SHIM_CONFIG")
    # `check > report.txt` holds the whole answer.
    report = tmp_path / "report.txt"
    env_check = {k: v for k, v in env.items() if k != "LD_PRELOAD"}
    with open(report, "w") as out:
        p = subprocess.run([str(CLI), "check"], env=env_check, stdout=out, stderr=subprocess.PIPE,
                           timeout=30)
    assert p.returncode == 1 and p.stderr == b""
    text = report.read_text()
    assert f"cannot read the config file {conf} (over 16 KiB)" in text
    assert text.splitlines()[-1] == "configuration: INVALID (1 problem, listed above)"
    # Exactly 16 KiB: both read it.
    exact = tmp_path / "exact.conf"
    exact.write_text("#" * (16384 - len("KEEPALIVE_SHIM_IDLE=33\n") - 1) + "\nKEEPALIVE_SHIM_IDLE=33\n")
    assert exact.stat().st_size == 16384
    got, err, r = agree(dict(env, KEEPALIVE_SHIM_CONFIG=str(exact)), "127.0.0.1", listener)
    assert got == dict(APPLIED, TCP_KEEPIDLE=33) and warnings(err) == [] and r.returncode == 0


def test_files_the_library_will_not_read_check_will_not_either(listener, tmp_path):
    fifo = tmp_path / "fifo.conf"
    os.mkfifo(fifo)  # opening it for reading without O_NONBLOCK would hang
    cases = {fifo: "not a regular file", tmp_path: "not a regular file",
             tmp_path / "missing.conf": "no such file"}
    for path, why in cases.items():
        env = shim_env(config=path, **SET)
        got, err, r = agree(env, "127.0.0.1", listener)
        assert got == APPLIED, path
        assert why in err and why in r.stdout and r.returncode == 1, (path, err, r.stdout)


def test_an_invalid_value_shows_invalid_in_its_row(listener, tmp_path):
    conf = tmp_path / "ks.conf"
    conf.write_text("KEEPALIVE_SHIM_INTERVAL=0\n")
    env = shim_env(config=conf, count=0, idle="junk", user_timeout="4500ms")
    env["KEEPIDLE"] = "25"
    got, err, r = agree(env, "127.0.0.1", listener)
    assert got == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 25, "TCP_KEEPINTVL": 10, "TCP_KEEPCNT": 6,
                   "TCP_USER_TIMEOUT": 4500}
    assert len(warnings(err)) == 3
    out = r.stdout
    assert row(out, "KEEPALIVE_SHIM_COUNT").split()[1:3] == ["INVALID", '"0"'], out
    assert row(out, "KEEPALIVE_SHIM_COUNT").endswith("(KEEPALIVE_SHIM_COUNT; using 6, the default)")
    assert row(out, "KEEPALIVE_SHIM_IDLE").endswith("(KEEPALIVE_SHIM_IDLE; using 25 s from KEEPIDLE)")
    assert row(out, "KEEPALIVE_SHIM_INTERVAL").endswith(f"({conf} line 1; using 10 s, the default)")
    assert "(default)" not in row(out, "KEEPALIVE_SHIM_COUNT")
    # Each problem is named in the report, the same three the library warned of.
    for line in warnings(err):
        text = line.split(": warning: ", 1)[1]
        assert f"  {text}\n" in out, (line, out)
    assert r.returncode == 1 and r.stderr == ""


# --- libkeepalive-ng's variables ----------------------------------------------------------------

def test_libkeepalive_ng_variables(listener, tmp_path):
    env = dict(clean_env(), LD_PRELOAD=str(LIB), TCP_KEEPIDLE="33", TCP_KEEPINTVL="7", TCP_KEEPCNT="4",
               TCP_USER_TIMEOUT="4500")
    got, err, r = agree(env, "127.0.0.1", listener)
    assert got == {"SO_KEEPALIVE": 1, "TCP_KEEPIDLE": 33, "TCP_KEEPINTVL": 7, "TCP_KEEPCNT": 4,
                   "TCP_USER_TIMEOUT": 4500}
    assert warnings(err) == [] and r.returncode == 0
    for var in ("TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT"):
        assert any(ln.endswith(f"({var})") for ln in r.stdout.splitlines()), (var, r.stdout)
    # -1: derived (auto), from the effective values.
    got, _, r = agree(dict(env, TCP_USER_TIMEOUT="-1"), "127.0.0.1", listener)
    assert got["TCP_USER_TIMEOUT"] == (33 + 7 * 4) * 1000
    # 0 leaves the system default: the next source (here the file) is used.
    conf = tmp_path / "ks.conf"
    conf.write_text("KEEPALIVE_SHIM_IDLE=44\n")
    got, err, r = agree(dict(env, TCP_KEEPIDLE="0", TCP_KEEPCNT="0", KEEPALIVE_SHIM_CONFIG=str(conf)),
                        "127.0.0.1", listener)
    assert (got["TCP_KEEPIDLE"], got["TCP_KEEPCNT"]) == (44, 6) and warnings(err) == []
    assert row(r.stdout, "KEEPALIVE_SHIM_IDLE").endswith(f"({conf} line 1)")
    # After libkeepalive's and libdontdie's, before the file.
    got, _, _ = agree(dict(env, KEEPIDLE="21", DD_TCP_KEEPALIVE_INTVL="5"), "127.0.0.1", listener)
    assert (got["TCP_KEEPIDLE"], got["TCP_KEEPINTVL"], got["TCP_KEEPCNT"]) == (21, 5, 4)
    # Their own syntax: a unit is invalid, reported, and the next source used.
    got, err, r = agree(dict(env, TCP_KEEPIDLE="30s"), "127.0.0.1", listener)
    assert got["TCP_KEEPIDLE"] == 60
    assert len(warnings(err)) == 1 and 'TCP_KEEPIDLE="30s" is not valid' in err
    assert row(r.stdout, "KEEPALIVE_SHIM_IDLE").split()[1:3] == ["INVALID", '"30s"']
