#!/usr/bin/env python3
"""Check a Lambda deployment package for the provided.al2023 runtime (x86_64).

Usage:
  scripts/check-lambda-zip.py [ZIP]        check ZIP (default: dist/lambda.zip)
  scripts/check-lambda-zip.py --needs ELF  print "soname path" for every library ELF
                                           needs, recursively, that is not part of
                                           glibc, as found on this machine
                                           (scripts/lambda.sh bundles these)

The package passes when:
  - bootstrap is at the root of the zip, a regular file readable and executable by
    everyone (Lambda runs it as another user), an x86-64 ELF executable;
  - when lib/ holds libraries, bootstrap carries a DT_RPATH that leads to lib/
    ($ORIGIN/lib, or another spelling the dynamic linker follows there: ${ORIGIN}/lib,
    $ORIGIN/lib/, beside other folders) and never a DT_RUNPATH: Lambda's
    LD_LIBRARY_PATH lists /lib64 and /usr/lib64 before /var/task/lib, so without it
    a library of the base image with the same name would be loaded instead of the
    bundled one (DT_RPATH is searched before LD_LIBRARY_PATH, DT_RUNPATH after);
  - every file under lib/ is an x86-64 ELF shared object named by its SONAME,
    readable by everyone, without DT_RUNPATH (which would cut it off from
    bootstrap's DT_RPATH);
  - bootstrap and every bundled library need (NEEDED) only libraries that are
    bundled under lib/ or part of glibc;
  - no symbol version of glibc newer than 2.34 (Amazon Linux 2023) and no
    GLIBC_PRIVATE is referenced;
  - every symbol version required from a bundled library is defined by it;
  - programs under bin/ (for exec handlers) that are ELF files pass the same checks
    of NEEDED libraries and glibc versions as bootstrap, and one that needs a library
    of lib/ carries a DT_RPATH that leads to lib/ from its folder ($ORIGIN/../lib from
    bin/x, $ORIGIN/../../lib from bin/y/x, or another spelling of it, as for bootstrap):
    an exec run is given no LD_LIBRARY_PATH;
  - taskd.json, when present at the root, is valid JSON.

Exit status: 0 when the package passes, 1 when it does not (each fault is named on
stderr), 2 on a usage error or a missing tool. Needs objdump (binutils).
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile

MAX_GLIBC = (2, 34)  # Amazon Linux 2023

# The shared objects of glibc itself: the runtime's own copies are used, never bundled.
GLIBC_LIBS = frozenset(
    (
        "ld-linux-x86-64.so.2",
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libresolv.so.2",
        "libutil.so.1",
        "libanl.so.1",
        "libBrokenLocale.so.1",
        "libthread_db.so.1",
        "libc_malloc_debug.so.0",
        "libnss_files.so.2",
        "libnss_dns.so.2",
    )
)

# Where this machine's libraries live when the ldconfig cache is not readable.
LIB_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib")

ELF_X86_64 = "elf64-x86-64"


class ToolMissing(Exception):
    pass


def run_objdump(args, path):
    exe = shutil.which("objdump")
    if not exe:
        raise ToolMissing("objdump not found: install binutils (scripts/install-deps.sh)")
    p = subprocess.run([exe] + args + [path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class Elf:
    """What objdump -p and -T tell about one ELF file."""

    def __init__(self, path):
        self.path = path
        self.format = None
        self.needed = []
        self.soname = None
        self.rpath = None
        self.runpath = None
        self.version_refs = {}  # library -> set of version names required from it
        self.version_defs = set()
        self._undefined = None
        rc, out, _ = run_objdump(["-p"], path)
        if rc != 0:
            return  # not an ELF file: format stays None
        section = None
        current_lib = None
        for line in out.splitlines():
            m = re.search(r"file format (\S+)", line)
            if m:
                self.format = m.group(1)
                continue
            if line.startswith("Dynamic Section:"):
                section = "dynamic"
                continue
            if line.startswith("Version References:"):
                section = "refs"
                continue
            if line.startswith("Version definitions:"):
                section = "defs"
                continue
            if not line.strip():
                continue
            fields = line.split()
            if section == "dynamic" and len(fields) >= 2:
                tag, value = fields[0], fields[1]
                if tag == "NEEDED":
                    self.needed.append(value)
                elif tag == "SONAME":
                    self.soname = value
                elif tag == "RPATH":
                    self.rpath = value
                elif tag == "RUNPATH":
                    self.runpath = value
            elif section == "refs":
                m = re.match(r"\s*required from (\S+):", line)
                if m:
                    current_lib = m.group(1)
                    self.version_refs.setdefault(current_lib, set())
                elif current_lib and len(fields) == 4 and fields[0].startswith("0x"):
                    self.version_refs[current_lib].add(fields[3])
            elif section == "defs":
                # "2 0x00 0x0d696914 CURL_OPENSSL_4"; the entry with flag 0x01 is the file's own name
                if len(fields) >= 4 and fields[1] != "0x01":
                    self.version_defs.add(fields[3])

    @property
    def is_elf(self):
        return self.format is not None

    def undefined_symbols(self):
        """{version: [symbol, ...]} of the dynamic symbols this file takes from others."""
        if self._undefined is None:
            self._undefined = {}
            _, out, _ = run_objdump(["-T"], self.path)
            for line in out.splitlines():
                m = re.search(r"\*UND\*\s+\S+\s+\(?([A-Za-z_][\w.]*)\)?\s+(\S+)\s*$", line)
                if m:
                    self._undefined.setdefault(m.group(1), []).append(m.group(2))
        return self._undefined


def glibc_version(name):
    """(2, 35) for GLIBC_2.35; None for anything else."""
    m = re.fullmatch(r"GLIBC_(\d+(?:\.\d+)*)", name)
    return tuple(int(x) for x in m.group(1).split(".")) if m else None


def version_text(v):
    return ".".join(str(x) for x in v)


def check_elf(elf, label, bundled, problems):
    """Faults of one ELF file of the package (bootstrap or a bundled library)."""
    if elf.format != ELF_X86_64:
        problems.append("%s: not an x86-64 ELF file (%s)" % (label, elf.format or "not ELF"))
        return
    if elf.runpath is not None:
        problems.append(
            "%s: has DT_RUNPATH %s, which the dynamic linker searches after LD_LIBRARY_PATH "
            "(and which hides bootstrap's DT_RPATH from its own dependencies)" % (label, elf.runpath)
        )
    for lib in elf.needed:
        if lib not in bundled and lib not in GLIBC_LIBS:
            problems.append("%s: needs %s, which is neither bundled under lib/ nor part of glibc" % (label, lib))
    for lib, versions in sorted(elf.version_refs.items()):
        if lib in GLIBC_LIBS:
            for v in sorted(versions):
                if v == "GLIBC_PRIVATE":
                    syms = elf.undefined_symbols().get(v, [])
                    problems.append(
                        "%s: uses GLIBC_PRIVATE from %s (%s): internal to one glibc build"
                        % (label, lib, ", ".join(sorted(syms)) or "?")
                    )
                    continue
                gv = glibc_version(v)
                if gv and gv > MAX_GLIBC:
                    syms = sorted(elf.undefined_symbols().get(v, []))
                    problems.append(
                        "%s: needs %s from %s, newer than Amazon Linux 2023's glibc %s: %s"
                        % (label, v, lib, version_text(MAX_GLIBC), ", ".join("%s@%s" % (s, v) for s in syms) or "?")
                    )
        elif lib in bundled:
            missing = sorted(versions - bundled[lib].version_defs)
            if missing:
                problems.append(
                    "%s: needs version %s of lib/%s, which it does not define" % (label, ", ".join(missing), lib)
                )


# $ORIGIN or ${ORIGIN} at the start of a DT_RPATH folder: the folder of the file that has it
ORIGIN = re.compile(r"\$(?:ORIGIN|\{ORIGIN\})(?=/|$)")


def rpath_leads_to(elf, name, root, folder):
    """Whether a folder of elf's DT_RPATH leads the dynamic linker to folder, elf being the file
    name of the package unpacked at root. $ORIGIN (or ${ORIGIN}) is name's folder there, and the
    rest is followed as the kernel follows it when the linker opens a library there (a ".." from
    a folder that exists, a trailing "/"); a folder not under $ORIGIN (the build machine's, or
    one relative to the working directory) leads nowhere in the package."""
    origin = os.path.dirname(os.path.join(root, name))
    for entry in (elf.rpath or "").split(":"):
        m = ORIGIN.match(entry)
        if not m:
            continue
        try:
            if os.path.samefile(origin + entry[m.end():], folder):
                return True
        except OSError:  # leads to nothing there
            continue
    return False


def highest_glibc(elves):
    best = None
    for elf in elves:
        for lib, versions in elf.version_refs.items():
            if lib in GLIBC_LIBS:
                for v in versions:
                    gv = glibc_version(v)
                    if gv and (best is None or gv > best):
                        best = gv
    return best


def extract(zf, dest):
    """Unpack with the Unix modes the zip records (zipfile itself drops them)."""
    for info in zf.infolist():
        name = info.filename
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError("unsafe path in zip: %s" % name)
        target = os.path.join(dest, name)
        if info.is_dir():
            os.makedirs(target, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise ValueError("symbolic link in zip: %s" % name)
        with zf.open(info) as src, open(target, "wb") as out:
            shutil.copyfileobj(src, out)
        os.chmod(target, stat.S_IMODE(mode) if mode else 0o644)


def check_zip(path):
    """(problems, notes) of the package at path."""
    problems, notes = [], []
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        return ["%s: not a readable zip file: %s" % (path, e)], notes
    with zf, tempfile.TemporaryDirectory(prefix="lambda-zip-") as tmp:
        infos = {i.filename: i for i in zf.infolist()}
        boot = infos.get("bootstrap")
        if boot is None:
            elsewhere = [n for n in infos if n.rsplit("/", 1)[-1] == "bootstrap"]
            problems.append(
                "bootstrap is not at the root of the zip%s"
                % (" (found: %s)" % ", ".join(elsewhere) if elsewhere else "")
            )
            return problems, notes
        mode = boot.external_attr >> 16
        if boot.create_system != 3 or not mode:
            problems.append("bootstrap: the zip records no Unix mode for it (zip it on Unix)")
        elif not stat.S_ISREG(mode) and stat.S_IFMT(mode) != 0:
            problems.append("bootstrap: not a regular file (mode %o)" % mode)
        elif stat.S_IMODE(mode) & 0o555 != 0o555:
            problems.append(
                "bootstrap: mode %04o, must be readable and executable by everyone (0755)" % stat.S_IMODE(mode)
            )
        try:
            extract(zf, tmp)
        except ValueError as e:
            problems.append(str(e))
            return problems, notes

        lib_dir = os.path.join(tmp, "lib")
        bundled = {}
        if os.path.isdir(lib_dir):
            for name in sorted(os.listdir(lib_dir)):
                full = os.path.join(lib_dir, name)
                if os.path.isdir(full):
                    problems.append("lib/%s: a directory; lib/ must hold the libraries themselves" % name)
                    continue
                info = infos.get("lib/" + name)
                lmode = (info.external_attr >> 16) if info else 0
                if lmode and stat.S_IMODE(lmode) & 0o444 != 0o444:
                    problems.append("lib/%s: mode %04o, must be readable by everyone" % (name, stat.S_IMODE(lmode)))
                elf = Elf(full)
                if not elf.is_elf:
                    problems.append("lib/%s: not an ELF shared library" % name)
                    continue
                if elf.soname != name:
                    problems.append(
                        "lib/%s: its SONAME is %s; the file must be named by its SONAME" % (name, elf.soname)
                    )
                if name in GLIBC_LIBS:
                    problems.append("lib/%s: part of glibc; the runtime's own must be used, do not bundle it" % name)
                bundled[name] = elf

        bootstrap = Elf(os.path.join(tmp, "bootstrap"))
        check_elf(bootstrap, "bootstrap", bundled, problems)
        if bootstrap.is_elf and bundled and not rpath_leads_to(bootstrap, "bootstrap", tmp, lib_dir):
            problems.append(
                "bootstrap: no DT_RPATH leads to lib/ (%s; give it $ORIGIN/lib: link with "
                "-Wl,-rpath,'$ORIGIN/lib' -Wl,--disable-new-dtags): Lambda's LD_LIBRARY_PATH searches "
                "/lib64 and /usr/lib64 before /var/task/lib, so the base image's libraries would shadow the "
                "bundled ones" % (bootstrap.rpath or "none")
            )
        for name, elf in bundled.items():
            check_elf(elf, "lib/" + name, bundled, problems)
        # programs for exec handlers: scripts pass; binaries must run on the runtime too
        handlers = []
        for name in sorted(n for n in infos if n.startswith("bin/") and not n.endswith("/")):
            elf = Elf(os.path.join(tmp, name))
            if elf.is_elf:
                check_elf(elf, name, bundled, problems)
                handlers.append(elf)
                # an exec run is given no LD_LIBRARY_PATH: lib/ is found through the program's own
                # DT_RPATH, else the dynamic linker looks in the base image's folders only
                uses = sorted(lib for lib in elf.needed if lib in bundled)
                want = "$ORIGIN/" + os.path.relpath("lib", os.path.dirname(name))
                if uses and not rpath_leads_to(elf, name, tmp, lib_dir):
                    problems.append(
                        "%s: needs %s from lib/ but no DT_RPATH leads there (%s; give it DT_RPATH %s: link it "
                        "with -Wl,-rpath,'%s' -Wl,--disable-new-dtags, or statically): an exec run is given no "
                        "LD_LIBRARY_PATH, so the dynamic linker would look in the base image's /lib64 and "
                        "/usr/lib64 only" % (name, ", ".join(uses), elf.rpath or "none", want, want)
                    )

        # libraries nobody needs: harmless, but worth knowing
        wanted, todo = set(), list(bootstrap.needed)
        while todo:
            lib = todo.pop()
            if lib in wanted or lib not in bundled:
                continue
            wanted.add(lib)
            todo.extend(bundled[lib].needed)
        for name in sorted(set(bundled) - wanted):
            notes.append("lib/%s: bundled but not needed by bootstrap" % name)

        config = os.path.join(tmp, "taskd.json")
        if os.path.exists(config):
            try:
                with open(config, encoding="utf-8") as f:
                    json.load(f)
            except (OSError, ValueError) as e:
                problems.append("taskd.json: not valid JSON: %s" % e)
        else:
            notes.append("no taskd.json: bootstrap runs with the built-in configuration")

        top = highest_glibc([bootstrap] + list(bundled.values()) + handlers)
        notes.append(
            "bootstrap + %d bundled librar%s; highest glibc version needed: %s (limit %s)"
            % (len(bundled), "y" if len(bundled) == 1 else "ies", version_text(top) if top else "none",
               version_text(MAX_GLIBC))
        )
    return problems, notes


def system_library_paths():
    """soname -> path of this machine's x86-64 libraries, from the ldconfig cache."""
    found = {}
    exe = shutil.which("ldconfig")
    for candidate in ("/sbin/ldconfig", "/usr/sbin/ldconfig"):
        if not exe and os.path.exists(candidate):
            exe = candidate
    if exe:
        p = subprocess.run([exe, "-p"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in p.stdout.decode("utf-8", "replace").splitlines():
            m = re.match(r"\s*(\S+) \(([^)]*)\) => (\S+)", line)
            if m and "x86-64" in m.group(2):
                found.setdefault(m.group(1), m.group(3))
    return found


def resolve(soname, cache):
    if soname in cache:
        return cache[soname]
    for d in LIB_DIRS:
        p = os.path.join(d, soname)
        if os.path.isfile(p):
            return p
    return None


def list_needs(path):
    """Print the non-glibc libraries path needs, recursively; 1 when one is missing."""
    root = Elf(path)
    if root.format != ELF_X86_64:
        print("%s: not an x86-64 ELF file" % path, file=sys.stderr)
        return 1
    cache = system_library_paths()
    found, missing = {}, []
    todo = [(lib, path) for lib in root.needed]
    while todo:
        lib, wanted_by = todo.pop(0)
        if lib in GLIBC_LIBS or lib in found:
            continue
        where = resolve(lib, cache)
        if where is None:
            missing.append("%s (needed by %s)" % (lib, os.path.basename(wanted_by)))
            found[lib] = None
            continue
        found[lib] = os.path.realpath(where)
        todo.extend((n, lib) for n in Elf(found[lib]).needed)
    if missing:
        print("not found on this machine: %s" % ", ".join(missing), file=sys.stderr)
        return 1
    for lib in sorted(found):
        print("%s %s" % (lib, found[lib]))
    return 0


def main(argv):
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        if len(argv) == 3 and argv[1] == "--needs":
            return list_needs(argv[2])
        if len(argv) == 2 and argv[1] in ("-h", "--help"):
            print(__doc__.strip())
            return 0
        if len(argv) > 2 or (len(argv) == 2 and argv[1].startswith("-")):
            print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
            return 2
        path = argv[1] if len(argv) == 2 else os.path.join(repo, "dist", "lambda.zip")
        if not os.path.isfile(path):
            print("%s: no such file (build it with scripts/lambda.sh)" % path, file=sys.stderr)
            return 2
        problems, notes = check_zip(path)
    except ToolMissing as e:
        print(str(e), file=sys.stderr)
        return 2
    for n in notes:
        print("note: %s" % n, file=sys.stderr)
    if problems:
        for p in problems:
            print("FAIL: %s" % p, file=sys.stderr)
        plural = "" if len(problems) == 1 else "s"
        print("%s: %d problem%s: not deployable on provided.al2023" % (path, len(problems), plural), file=sys.stderr)
        return 1
    print("%s: ok for provided.al2023 (x86_64)" % path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
