#!/usr/bin/env python3
"""Builds keepalive-shim's Python wheel from already-built files, so that
`pip install keepalive-shim` gives Python shops the command and the library.

The wheel holds no Python code: the static `keepalive-shim` executable as its
script (pip puts it in the environment's bin/), and the library as data,
which pip puts in <prefix>/lib/keepalive-shim/, where `keepalive-shim run`
looks (cli/src/run.rs). The same two files serve glibc >= 2.17 and musl, so
one wheel per architecture carries both platform tags (manylinux2014 =
manylinux_2_17 and musllinux_1_1), in one compressed tag set (PEP 425).

    wheel.py --version 0.1.0 --arch x86_64 --cli PATH --lib PATH \
             --man DIR --license FILE... --out DIR
"""
import argparse
import base64
import hashlib
import pathlib
import zipfile

NAME = "keepalive_shim"
SUMMARY = "TCP keepalive for unmodified programs: an LD_PRELOAD library and its wrapper command"


def tags(arch):
    return [f"py3-none-manylinux_2_17_{arch}", f"py3-none-manylinux2014_{arch}",
            f"py3-none-musllinux_1_1_{arch}"]


def platform_tag(arch):
    return ".".join(t.split("-")[2] for t in tags(arch))


def record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--version", required=True)
    ap.add_argument("--arch", required=True, choices=["x86_64", "aarch64"])
    ap.add_argument("--cli", required=True, type=pathlib.Path)
    ap.add_argument("--lib", required=True, type=pathlib.Path)
    ap.add_argument("--man", required=True, type=pathlib.Path)
    ap.add_argument("--readme", required=True, type=pathlib.Path)
    ap.add_argument("--license", nargs="+", required=True, type=pathlib.Path)
    ap.add_argument("--out", required=True, type=pathlib.Path)
    a = ap.parse_args()

    data_dir = f"{NAME}-{a.version}.data"
    info_dir = f"{NAME}-{a.version}.dist-info"
    files = [  # (name in the wheel, bytes, executable)
        (f"{data_dir}/scripts/keepalive-shim", a.cli.read_bytes(), True),
        (f"{data_dir}/data/lib/keepalive-shim/libkeepalive_shim.so", a.lib.read_bytes(), False),
    ]
    for page in sorted(a.man.iterdir()):
        section = page.suffix.lstrip(".")
        files.append((f"{data_dir}/data/share/man/man{section}/{page.name}", page.read_bytes(), False))
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        "Name: keepalive-shim",
        f"Version: {a.version}",
        f"Summary: {SUMMARY}",
        "License: MIT OR Apache-2.0",
        "Platform: Linux",
        "Classifier: Operating System :: POSIX :: Linux",
        "Classifier: Topic :: System :: Networking",
        "Requires-Python: >=3",
        "Description-Content-Type: text/markdown",
        "",
        a.readme.read_text(),
    ])
    wheel = "\n".join(["Wheel-Version: 1.0", "Generator: keepalive-shim scripts/lib/wheel.py",
                       "Root-Is-Purelib: false"] + [f"Tag: {t}" for t in tags(a.arch)]) + "\n"
    files += [(f"{info_dir}/METADATA", metadata.encode(), False),
              (f"{info_dir}/WHEEL", wheel.encode(), False)]
    files += [(f"{info_dir}/{lic.name}", lic.read_bytes(), False) for lic in a.license]

    a.out.mkdir(parents=True, exist_ok=True)
    path = a.out / f"{NAME}-{a.version}-py3-none-{platform_tag(a.arch)}.whl"
    record = [record_line(n, d) for n, d, _ in files] + [f"{info_dir}/RECORD,,"]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data, executable in files + [(f"{info_dir}/RECORD", ("\n".join(record) + "\n").encode(), False)]:
            info = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    print(path)


if __name__ == "__main__":
    main()
