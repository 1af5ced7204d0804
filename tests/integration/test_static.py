"""Issue #5: one portable static executable (docs/static-build.md).

Registered by tests/CMakeLists.txt only when GAME_STATIC is ON, and then it fails (never skips)
if GAME_BIN is not a static PIE. The chroot tests need root (or unprivileged user namespaces,
then `unshare --map-root-user` is used).

What the chroot holds is exactly what these tests show a run needs: the binary and a home
directory. No /etc, /dev, /proc, /usr or /lib: no passwd, no NSS, no openssl.cnf, no shared
library, no /dev/urandom (OpenSSL uses getrandom(2); libstdc++'s random_device uses RDRAND, or
getentropy(3) when the CPU has none).
"""

import os
import re
import shutil
import stat
import subprocess
import tempfile
import unittest

from gamehelpers import SharedServerTestCase, run_command, OK, ssh_keygen_fingerprint
from harness import Server, game_bin

HOME_IN_ROOT = "/home/player"

# Stripped size the static build must stay under (docs/static-build.md has the figures).
MAX_STRIPPED_BYTES = 6_500_000


def chroot_prefix():
    """The command that runs something chrooted: chroot as root, else in a user namespace."""
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    if os.geteuid() == 0:
        return [chroot]
    unshare = shutil.which("unshare")
    if unshare and run_command([unshare, "--map-root-user", "true"]).returncode == 0:
        return [unshare, "--map-root-user", chroot]
    raise AssertionError("test_static needs root (or unprivileged user namespaces) to chroot")


class EmptyRoot:
    """A directory tree holding only /bin/game and an empty home directory (mode 0700)."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="game-chroot-")
        os.makedirs(self.host_path("/bin"))
        os.makedirs(self.host_path(HOME_IN_ROOT), mode=0o700)
        shutil.copy2(game_bin(), self.host_path("/bin/game"))

    def uuid(self):
        with open(self.host_path(HOME_IN_ROOT + "/.gameconfig")) as f:
            return re.search(r'uuid = "([0-9a-f-]+)"', f.read()).group(1)

    def host_path(self, inside):
        return os.path.join(self.path, inside.lstrip("/"))

    def write(self, inside, text):
        os.makedirs(os.path.dirname(self.host_path(inside)), exist_ok=True)
        with open(self.host_path(inside), "w") as f:
            f.write(text)

    def tree(self):
        out = []
        for top, dirs, files in os.walk(self.path):
            for name in sorted(dirs + files):
                out.append("/" + os.path.relpath(os.path.join(top, name), self.path))
        return sorted(out)

    def run_game(self, args, env=None, trace=None):
        """Runs /bin/game chrooted with only HOME (and `env`) in its environment. With `trace`, a
        file: strace (outside the chroot) logs every file-name system call of the run there."""
        prefix = chroot_prefix()
        if trace:
            prefix = [shutil.which("strace") or "strace", "-f", "-qq", "-e", "trace=%file",
                      "-o", trace] + prefix
        full_env = {"HOME": HOME_IN_ROOT}
        full_env.update(env or {})
        return run_command(prefix + [self.path, "/bin/game", *args], env=full_env)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False


def traced_paths(log):
    """The file names that the traced process (after its execve) passed to system calls."""
    paths = []
    started = False
    with open(log, encoding="utf-8", errors="replace") as f:
        for line in f:
            if 'execve("/bin/game"' in line:
                started = True
                continue
            if started:
                paths += re.findall(r'"((?:[^"\\]|\\.)*)"', line.split("(", 1)[1] if "(" in line else "")
    return [p for p in paths if p.startswith("/")]


class StaticExecutable(unittest.TestCase):
    def test_file_says_static_pie_and_ldd_finds_no_libraries(self):
        out = run_command(["file", "-L", game_bin()]).stdout
        self.assertIn("static-pie linked", out, "GAME_BIN is not a static PIE: " + out)
        ldd = run_command(["ldd", game_bin()])
        # glibc's ldd prints "statically linked" for a static PIE (it has a PT_DYNAMIC without
        # DT_NEEDED) and "not a dynamic executable" for a non-PIE static binary.
        text = ldd.stdout + ldd.stderr
        self.assertRegex(text, r"statically linked|not a dynamic executable", text)
        self.assertNotIn("=>", text)
        dynamic = run_command(["readelf", "--dynamic", "--program-headers", game_bin()]).stdout
        self.assertNotIn("(NEEDED)", dynamic)
        self.assertNotIn("INTERP", dynamic, "a static PIE has no program interpreter")

    def test_stripped_size_stays_under_the_target(self):
        with tempfile.TemporaryDirectory() as tmp:
            stripped = os.path.join(tmp, "game")
            r = run_command(["strip", "-o", stripped, game_bin()])
            self.assertEqual(r.returncode, 0, r.stderr)
            size = os.path.getsize(stripped)
            self.assertLess(size, MAX_STRIPPED_BYTES, f"stripped static game is {size} bytes")

    def test_version_names_the_libraries_inside(self):
        r = run_command([game_bin(), "--version"], env={})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"^game \S+ \(libssh \S+, OpenSSL \S+")


class EmptyChroot(SharedServerTestCase):

    def test_score_from_an_otherwise_empty_root(self):
        with EmptyRoot() as root:
            r = root.run_game(["--server", f"127.0.0.1:{self.server.port}", "score", "789"])
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn("created a new player identity", r.stderr)

            # The identity was created in the chroot's home, and is what the server registered.
            home = root.host_path(HOME_IN_ROOT)
            config = os.path.join(home, ".gameconfig")
            key = os.path.join(home, ".game", "id_ed25519")
            self.assertEqual(stat.S_IMODE(os.stat(config).st_mode), 0o600)
            self.assertEqual(stat.S_IMODE(os.stat(key).st_mode), 0o600)
            uuid = root.uuid()
            self.assertEqual(self.server.registrations(uuid), [(uuid, ssh_keygen_fingerprint(key + ".pub"))])
            self.assertEqual(self.server.scores(uuid), [789])

            # Nothing appeared outside the home directory: no /etc, /dev, /tmp...
            outside = [p for p in root.tree() if not p.startswith(HOME_IN_ROOT) and p not in
                       ("/bin", "/bin/game", "/home")]
            self.assertEqual(outside, [])

    def test_host_name_resolution_needs_no_shared_library(self):
        # The linker's getaddrinfo warning: static glibc >= 2.34 has the `files` and `dns` NSS
        # modules built in; only other modules would be dlopen()ed. Here the one listed first
        # is not built in and is not there: skipped, and /etc/hosts still answers.
        with EmptyRoot() as root:
            root.write("/etc/nsswitch.conf", "hosts: mymachines files\n")
            root.write("/etc/hosts", "127.0.0.1 game.test\n")
            r = root.run_game(["--server", f"game.test:{self.server.port}", "score", "5"])
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.scores(root.uuid()), [5])

    def test_touches_no_file_outside_home_openssl_config_included(self):
        # No passwd/NSS look-up (libssh's getpwuid_r, getpwnam), no SSH config, no openssl.cnf
        # even when OPENSSL_CONF names one (so nothing that could dlopen an engine or provider),
        # no shared library, no /etc at all.
        with EmptyRoot() as root, tempfile.TemporaryDirectory() as tmp:
            root.write("/etc/ssl/game-test.cnf",
                       "openssl_conf = init\n[init]\nengines = engines\n"
                       "[engines]\nfoo = foo\n[foo]\ndynamic_path = /lib/engine-foo.so\n")
            log = os.path.join(tmp, "strace.log")
            r = root.run_game(["--server", f"127.0.0.1:{self.server.port}", "score", "1"], trace=log,
                              env={"OPENSSL_CONF": "/etc/ssl/game-test.cnf", "OPENSSL_MODULES": "/lib",
                                   "OPENSSL_ENGINES": "/lib"})
            self.assertEqual(r.returncode, OK, r.stderr)
            paths = traced_paths(log)
            self.assertTrue(any(p.startswith(HOME_IN_ROOT + "/") for p in paths), paths)
            # /dev/null: the known_hosts files the transport points libssh at (absent here, fine).
            # /proc/self/exe: read by static glibc's start-up (absent here, fine).
            # /dev/urandom: libstdc++'s random_device on a CPU without RDRAND (getentropy else).
            allowed = {"/dev/null", "/proc/self/exe", "/dev/urandom"}
            unexpected = sorted({p for p in paths if not p.startswith(HOME_IN_ROOT + "/") and p != HOME_IN_ROOT
                                 and p not in allowed})
            self.assertEqual(unexpected, [], "files the static game looked at outside HOME")


if __name__ == "__main__":
    unittest.main()
