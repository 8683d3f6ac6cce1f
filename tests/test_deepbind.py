"""What the hooks cannot see, said out loud: a library loaded with
RTLD_DEEPBIND binds socket()/connect() straight to libc (PHP loads its
extensions so). The shim names each such library that opens connections,
once, and stays silent about the others; and its dlopen, a pure trampoline,
never changes how the program's libraries are found ($ORIGIN, RUNPATH)."""
import shutil
import subprocess

import pytest

from conftest import ROOT, clean_env, require, run, shim_env

PROGRAMS = ROOT / "tests" / "programs"
WARNING = "was loaded with RTLD_DEEPBIND"


@pytest.fixture(scope="module")
def plugins(tmp_path_factory):
    """dl_main with RUNPATH=$ORIGIN/plugins, and two plugins found only
    through that RUNPATH: one that connects, one without any socket call."""
    gcc = shutil.which("gcc")
    require(gcc is not None, "gcc is needed for the dlopen programs")
    d = tmp_path_factory.mktemp("dl")
    (d / "plugins").mkdir()
    build = lambda *args: subprocess.run([gcc, "-O2", "-Wall", "-Werror", *args], check=True)  # noqa: E731
    build("-shared", "-fPIC", "-o", str(d / "plugins" / "libnet_plugin.so"), str(PROGRAMS / "dl_plugin.c"))
    build("-shared", "-fPIC", "-DNO_SOCKETS", "-o", str(d / "plugins" / "libquiet_plugin.so"),
          str(PROGRAMS / "dl_plugin.c"))
    build("-o", str(d / "dl_main"), str(PROGRAMS / "dl_main.c"), "-ldl",
          "-Wl,-rpath,$ORIGIN/plugins", "-Wl,--enable-new-dtags")
    return d


def dl_main(plugins, port, plugin, mode, env):
    return run([str(plugins / "dl_main"), str(port), plugin, mode], env)


def test_deepbind_library_that_connects_is_named_once(plugins, listener):
    r = dl_main(plugins, listener, "libnet_plugin.so", "deep", shim_env(idle=37))
    assert r.returncode == 0, r.stdout + r.stderr
    # The shim cannot reach it: the kernel shows the defaults ...
    assert "plugin: SO_KEEPALIVE=0 TCP_KEEPIDLE=7200" in r.stdout
    # ... and the user is told which library, once.
    warnings = [ln for ln in r.stderr.splitlines() if WARNING in ln]
    assert len(warnings) == 1 and "libnet_plugin.so" in warnings[0], r.stderr


def test_plain_dlopen_is_reached_and_silent(plugins, listener):
    r = dl_main(plugins, listener, "libnet_plugin.so", "plain", shim_env(idle=37))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plugin: SO_KEEPALIVE=1 TCP_KEEPIDLE=37" in r.stdout
    assert WARNING not in r.stderr


def test_deepbind_library_without_sockets_is_not_named(plugins, listener):
    r = dl_main(plugins, listener, "libquiet_plugin.so", "deep", shim_env(idle=37, log="debug"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "plugin: no sockets" in r.stdout
    assert WARNING not in r.stderr


@pytest.mark.parametrize("mode", ["deep", "plain"])
def test_dlopen_still_finds_libraries_through_the_callers_runpath(plugins, listener, mode):
    """Only the program's RUNPATH ($ORIGIN/plugins) finds the plugin: a
    dlopen wrapper that made itself the caller would fail here."""
    without = dl_main(plugins, listener, "libquiet_plugin.so", mode, clean_env())
    assert without.returncode == 0 and "loaded ok" in without.stdout, without.stdout
    r = dl_main(plugins, listener, "libquiet_plugin.so", mode, shim_env())
    assert r.returncode == 0 and "loaded ok" in r.stdout, r.stdout + r.stderr
    missing = dl_main(plugins, listener, "libnot_there.so", mode, shim_env())
    assert missing.returncode == 1 and "dlopen failed" in missing.stdout
