"""The Lambda deployment package: scripts/lambda.sh builds it, scripts/check-lambda-zip.py checks it.

Package builds dist/lambda.zip's twin (into a temporary directory, from build-lambda/) or takes
the zip named by LAMBDA_ZIP, then checks it, unpacks it and runs its bootstrap against its own
lib/. Checker feeds the checker small packages built here with gcc, each wrong in one way, next
to a control that is right, so that a rejection is known to be for the reason named.
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

sys.path.insert(0, harness.LAMBDA_DIR)
from script_module import load_script  # noqa: E402

REPO = harness.REPO
LAMBDA_SH = os.path.join(REPO, "scripts", "lambda.sh")
CHECKER = os.path.join(REPO, "scripts", "check-lambda-zip.py")

check_lambda_zip = load_script("check-lambda-zip.py")
GLIBC_LIBS = check_lambda_zip.GLIBC_LIBS

# gcc flags that give a test binary what a real bootstrap has, so that only the fault under test remains
RPATH = ["-Wl,-rpath,$ORIGIN/lib", "-Wl,--disable-new-dtags"]


def run_checker(zip_path):
    return subprocess.run([sys.executable, "-B", CHECKER, zip_path], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=120)


def unpack(zip_path, dest):
    """Unzip keeping the Unix modes, as Lambda does."""
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = os.path.join(dest, info.filename)
            if info.is_dir():
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)
            os.chmod(target, stat.S_IMODE(info.external_attr >> 16) or 0o644)


def ldd(binary, ld_library_path):
    """{soname: path} as the dynamic linker resolves them, plus the libraries not found."""
    p = subprocess.run(["env", "-i", "LD_LIBRARY_PATH=" + ld_library_path, "ldd", binary],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    resolved, missing = {}, []
    for line in p.stdout.decode().splitlines():
        parts = line.split()
        if "=>" not in parts:
            continue
        name, target = parts[0], parts[parts.index("=>") + 1]
        if target == "not":
            missing.append(name)
        else:
            resolved[name] = target
    return p, resolved, missing


class Package(unittest.TestCase):
    """The real package."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="taskd-lambda-zip-")
        cls.built_here = not os.environ.get("LAMBDA_ZIP")
        if cls.built_here:
            cls.zip = os.path.join(cls.tmp, "lambda.zip")
            # a program for an exec handler, shipped as bin/
            bin_dir = os.path.join(cls.tmp, "bin")
            os.makedirs(bin_dir)
            with open(os.path.join(bin_dir, "resize.sh"), "w") as f:
                f.write("#!/bin/sh\necho '{}'\n")
            os.chmod(os.path.join(bin_dir, "resize.sh"), 0o755)
            cls.env = dict(os.environ, BIN_DIR=bin_dir)
            p = subprocess.run([LAMBDA_SH, "-o", cls.zip], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=540, env=cls.env)
            cls.report = p.stdout.decode()
            if p.returncode != 0:
                shutil.rmtree(cls.tmp, ignore_errors=True)
                raise AssertionError("scripts/lambda.sh failed (%d):\n%s\n%s"
                                     % (p.returncode, cls.report, p.stderr.decode()[-6000:]))
        else:
            cls.zip = os.path.abspath(os.environ["LAMBDA_ZIP"])
            cls.report = ""
        cls.root = os.path.join(cls.tmp, "task")  # what Lambda unpacks into /var/task
        unpack(cls.zip, cls.root)
        cls.lib = os.path.join(cls.root, "lib")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_passes_the_check(self):
        p = run_checker(self.zip)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertIn("ok", p.stdout.decode())

    def test_layout(self):
        with zipfile.ZipFile(self.zip) as zf:
            infos = {i.filename: i for i in zf.infolist()}
        self.assertIn("bootstrap", infos)
        self.assertEqual(stat.S_IMODE(infos["bootstrap"].external_attr >> 16), 0o755)
        libs = sorted(n[len("lib/"):] for n in infos if n.startswith("lib/") and not n.endswith("/"))
        for name in infos:
            self.assertTrue(name in ("bootstrap", "taskd.json") or name.startswith(("lib/", "bin/")),
                            "unexpected entry %s" % name)
        for name in ("libcurl.so.4", "libjansson.so.4", "libprotobuf-c.so.1", "libssl.so.3", "libcrypto.so.3"):
            self.assertIn(name, libs)
        self.assertFalse(GLIBC_LIBS & set(libs), "glibc bundled: %s" % sorted(GLIBC_LIBS & set(libs)))
        for forbidden in ("libsqlite3.so.0",):
            self.assertNotIn(forbidden, libs, "bootstrap must not link %s" % forbidden)
        if self.built_here:  # deploy/taskd.json, when the repository has one
            self.assertEqual("taskd.json" in infos, os.path.exists(os.path.join(REPO, "deploy", "taskd.json")))
            self.assertIn("bin/resize.sh", infos, "BIN_DIR is shipped as bin/")
            self.assertEqual(stat.S_IMODE(infos["bin/resize.sh"].external_attr >> 16), 0o755)

    def test_report_names_size_and_libraries(self):
        if not self.built_here:
            self.skipTest("LAMBDA_ZIP given: lambda.sh not run")
        self.assertIn(str(os.path.getsize(self.zip)), self.report)
        self.assertIn("libcurl.so.4", self.report)

    def test_same_inputs_same_zip(self):
        if not self.built_here:
            self.skipTest("LAMBDA_ZIP given: lambda.sh not run")
        again = os.path.join(self.tmp, "again.zip")
        p = subprocess.run([LAMBDA_SH, "-o", again], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=540,
                           env=self.env)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-4000:])
        with open(self.zip, "rb") as a, open(again, "rb") as b:
            self.assertTrue(a.read() == b.read(), "two runs of lambda.sh gave different zips")

    def assertResolvedFromBundle(self, ld_library_path):
        p, resolved, missing = ldd(os.path.join(self.root, "bootstrap"), ld_library_path)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        self.assertEqual(missing, [], "not found: %s" % missing)
        self.assertIn("libcurl.so.4", resolved)
        lib = os.path.realpath(self.lib)
        for name, path in resolved.items():
            if name in GLIBC_LIBS:
                continue
            self.assertEqual(os.path.dirname(os.path.realpath(path)), lib,
                             "%s resolved to %s, not to the bundled lib/ (LD_LIBRARY_PATH=%s)"
                             % (name, path, ld_library_path))

    def test_libraries_resolve_from_the_bundle(self):
        self.assertResolvedFromBundle(self.lib)

    def test_bundle_wins_over_system_libraries_listed_first(self):
        # Lambda's LD_LIBRARY_PATH lists /lib64:/usr/lib64 before /var/task/lib; this machine's
        # library directories stand in for them: bootstrap's DT_RPATH must still pick lib/
        system = "/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu:/lib64:/usr/lib64"
        self.assertResolvedFromBundle(system + ":" + self.lib)

    def test_bootstrap_without_runtime_api_fails_clearly(self):
        p = subprocess.run(["env", "-i", "LD_LIBRARY_PATH=" + self.lib, "LAMBDA_TASK_ROOT=" + self.root,
                            os.path.join(self.root, "bootstrap")],
                           cwd=self.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        err = p.stderr.decode()
        self.assertGreater(p.returncode, 0, "bootstrap exited %d; stderr: %s" % (p.returncode, err))
        self.assertNotIn("error while loading shared libraries", err)
        self.assertIn("AWS_LAMBDA_RUNTIME_API", err)


@unittest.skipUnless(shutil.which("gcc"), "gcc is needed to build the test packages")
class Checker(unittest.TestCase):
    """Packages wrong in one way each, and controls."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="taskd-lambda-check-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def compile(self, name, source, flags=(), shared=False):
        src = self.path(name + ".c")
        with open(src, "w") as f:
            f.write(source)
        out = self.path(name)
        cmd = ["gcc", "-std=c17", "-D_DEFAULT_SOURCE", "-O1", "-o", out, src] + (["-shared", "-fPIC"] if shared else [])
        p = subprocess.run(cmd + list(flags), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return out

    def make_zip(self, name, entries):
        """entries: (name in the zip, file, mode)."""
        out = self.path(name + ".zip")
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
            for arcname, source, mode in entries:
                info = zipfile.ZipInfo(arcname, date_time=(2000, 1, 1, 0, 0, 0))
                info.create_system = 3
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(source, "rb") as f:
                    zf.writestr(info, f.read())
        return out

    def hello(self, flags=RPATH):
        return self.compile("hello%d" % len(flags), "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n",
                            flags)

    def assertAccepted(self, zip_path):
        p = run_checker(zip_path)
        self.assertEqual(p.returncode, 0, "rejected: %s" % p.stderr.decode())

    def assertRejected(self, zip_path, *words):
        p = run_checker(zip_path)
        err = p.stderr.decode()
        self.assertEqual(p.returncode, 1, "expected a rejection (1), got %d: %s" % (p.returncode, err))
        for w in words:
            self.assertIn(w, err)
        return err

    def test_control_accepted(self):
        self.assertAccepted(self.make_zip("control", [("bootstrap", self.hello(), 0o755)]))

    def test_glibc_newer_than_2_34_rejected(self):
        # arc4random is versioned GLIBC_2.36 in Debian 12's glibc; Amazon Linux 2023 has 2.34
        exe = self.compile("toonew", "#include <stdio.h>\n#include <stdlib.h>\n"
                                     "int main(void) { printf(\"%u\\n\", arc4random()); return 0; }\n", RPATH)
        err = self.assertRejected(self.make_zip("toonew", [("bootstrap", exe, 0o755)]), "arc4random", "GLIBC_2.36")
        self.assertIn("bootstrap", err)

    def test_handler_program_with_glibc_too_new_rejected(self):
        exe = self.compile("handler", "#include <stdio.h>\n#include <stdlib.h>\n"
                                      "int main(void) { printf(\"%u\\n\", arc4random()); return 0; }\n")
        script = self.path("ok.sh")
        with open(script, "w") as f:
            f.write("#!/bin/sh\nexit 0\n")
        self.assertAccepted(self.make_zip("handler_ok", [("bootstrap", self.hello(), 0o755),
                                                         ("bin/ok.sh", script, 0o755)]))
        self.assertRejected(self.make_zip("handler_new", [("bootstrap", self.hello(), 0o755),
                                                          ("bin/handler", exe, 0o755)]),
                            "bin/handler", "arc4random")

    def test_bundled_library_with_glibc_too_new_rejected(self):
        lib = self.compile("libtoonew.so.1", "#include <stdlib.h>\nunsigned toonew(void) { return arc4random(); }\n",
                           ["-Wl,-soname,libtoonew.so.1"], shared=True)
        exe = self.compile("uses_toonew", "unsigned toonew(void);\nint main(void) { return (int)(toonew() & 1); }\n",
                           RPATH + [lib])
        self.assertRejected(self.make_zip("lib_toonew", [("bootstrap", exe, 0o755), ("lib/libtoonew.so.1", lib, 0o644)]),
                            "lib/libtoonew.so.1", "arc4random", "GLIBC_2.36")

    def uses_jansson(self, flags=RPATH):
        return self.compile("uses_jansson%d" % len(flags),
                            "#include <jansson.h>\n"
                            "int main(void) { json_t *j = json_object(); json_decref(j); return 0; }\n",
                            list(flags) + ["-ljansson"])

    def jansson(self):
        return check_lambda_zip.resolve("libjansson.so.4", check_lambda_zip.system_library_paths())

    def test_library_not_bundled_rejected(self):
        exe = self.uses_jansson()
        self.assertRejected(self.make_zip("unbundled", [("bootstrap", exe, 0o755)]),
                            "libjansson.so.4", "neither bundled under lib/ nor part of glibc")
        # control: the same binary with the library bundled
        self.assertAccepted(self.make_zip("bundled", [("bootstrap", exe, 0o755),
                                                      ("lib/libjansson.so.4", self.jansson(), 0o644)]))

    def test_handler_program_using_a_bundled_library_needs_rpath(self):
        # an exec run gets no LD_LIBRARY_PATH (only PATH, HOME, LANG, LC_*, TZ, TMPDIR pass), so a
        # program under bin/ finds lib/ only through a DT_RPATH of its own
        boot = (("bootstrap", self.uses_jansson(), 0o755), ("lib/libjansson.so.4", self.jansson(), 0o644))
        plain = self.uses_jansson(flags=())
        self.assertRejected(self.make_zip("handler_norpath", boot + (("bin/handler", plain, 0o755),)),
                            "bin/handler", "libjansson.so.4", "DT_RPATH $ORIGIN/../lib")
        self.assertRejected(self.make_zip("handler_nested", boot + (("bin/tools/handler", plain, 0o755),)),
                            "bin/tools/handler", "DT_RPATH $ORIGIN/../../lib")
        # control: the same program linked with the RPATH; one that needs nothing bundled needs none
        own = self.compile("handler_rpath", "#include <jansson.h>\n"
                           "int main(void) { json_t *j = json_object(); json_decref(j); return 0; }\n",
                           ["-Wl,-rpath,$ORIGIN/../lib", "-Wl,--disable-new-dtags", "-ljansson"])
        self.assertAccepted(self.make_zip("handler_rpath", boot + (("bin/handler", own, 0o755),)))
        self.assertAccepted(self.make_zip("handler_plain", boot + (("bin/hello", self.hello(flags=()), 0o755),)))

    def test_rpath_is_read_as_the_dynamic_linker_follows_it(self):
        # a DT_RPATH folder counts when the dynamic linker, substituting $ORIGIN, opens lib/ through
        # it, however it is spelt; the unpacked zip's ldd (no LD_LIBRARY_PATH, as an exec run has)
        # says the same of each program
        obj = self.compile("uses_jansson.o", "#include <jansson.h>\n"
                           "int main(void) { json_t *j = json_object(); json_decref(j); return 0; }\n", ["-c"])
        leads = {"bin/braces": "${ORIGIN}/../lib", "bin/slash": "$ORIGIN/../lib/",
                 "bin/among": "$ORIGIN/../lib:$ORIGIN", "bin/through": "/home/build/lib:$ORIGIN/../bin/../lib",
                 "bin/y/deeper": "$ORIGIN/../../lib"}
        elsewhere = {"bin/beside": "$ORIGIN/lib",  # bootstrap's, from bin/: bin/lib
                     "bin/above": "$ORIGIN/../../lib",  # out of the package
                     "bin/missing": "$ORIGIN/missing/../../lib",  # ".." from a folder that is not there
                     "bin/cwd": "../lib",  # the working directory's, not the program's
                     "bin/y/shallow": "$ORIGIN/../lib"}  # bin/lib
        entries = [("bootstrap", self.link_with_rpath(obj, "bootstrap", "${ORIGIN}/lib/"), 0o755),
                   ("lib/libjansson.so.4", self.jansson(), 0o644)]
        for name, rpath in sorted({**leads, **elsewhere}.items()):
            entries.append((name, self.link_with_rpath(obj, name.replace("/", "_"), rpath), 0o755))
        zip_path = self.make_zip("rpaths", entries)
        err = self.assertRejected(zip_path)
        refused = sorted(re.findall(r"^FAIL: (\S+): .*DT_RPATH", err, re.M))
        self.assertEqual(refused, sorted(elsewhere), err)  # bootstrap's ${ORIGIN}/lib/ leads to lib/ too
        root = self.path("rpaths")
        unpack(zip_path, root)
        lib = os.path.realpath(os.path.join(root, "lib"))
        for name in ["bootstrap"] + sorted({**leads, **elsewhere}):
            p, resolved, _ = ldd(os.path.join(root, name), "")
            self.assertEqual(p.returncode, 0, p.stderr.decode())
            found = os.path.dirname(os.path.realpath(resolved.get("libjansson.so.4", "")))
            self.assertEqual(found == lib, name not in elsewhere, "%s: ldd found libjansson.so.4 at %s"
                             % (name, resolved.get("libjansson.so.4")))

    def link_with_rpath(self, obj, name, rpath):
        out = self.path(name)
        p = subprocess.run(["gcc", "-o", out, obj, "-Wl,-rpath," + rpath, "-Wl,--disable-new-dtags", "-ljansson"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        return out

    def test_bootstrap_not_executable_rejected(self):
        self.assertRejected(self.make_zip("noexec", [("bootstrap", self.hello(), 0o644)]), "bootstrap: mode 0644")

    def test_bootstrap_not_at_root_rejected(self):
        self.assertRejected(self.make_zip("nested", [("package/bootstrap", self.hello(), 0o755)]),
                            "not at the root", "package/bootstrap")

    def test_bootstrap_without_rpath_rejected(self):
        # bundled libraries are only sure to be used when bootstrap's DT_RPATH names lib/
        self.assertRejected(self.make_zip("norpath", [("bootstrap", self.uses_jansson(flags=()), 0o755),
                                                      ("lib/libjansson.so.4", self.jansson(), 0o644)]),
                            "DT_RPATH")
        # nothing bundled: nothing to find, no DT_RPATH needed
        self.assertAccepted(self.make_zip("norpath_nolib", [("bootstrap", self.hello(flags=()), 0o755)]))

    def test_bundled_glibc_rejected(self):
        self.assertRejected(self.make_zip("libc", [("bootstrap", self.hello(), 0o755),
                                                   ("lib/libc.so.6", "/lib/x86_64-linux-gnu/libc.so.6", 0o644)]),
                            "lib/libc.so.6", "part of glibc")

    def test_not_a_zip_rejected(self):
        bogus = self.path("bogus.zip")
        with open(bogus, "w") as f:
            f.write("not a zip")
        self.assertRejected(bogus, "not a readable zip")

    def test_missing_zip_is_a_usage_error(self):
        p = run_checker(self.path("absent.zip"))
        self.assertEqual(p.returncode, 2, p.stderr.decode())
        self.assertIn("no such file", p.stderr.decode())


if __name__ == "__main__":
    unittest.main(verbosity=2)
