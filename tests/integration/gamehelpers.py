"""Assertions shared by the integration tests: what a user would check about the client."""

import fcntl
import os
import re
import select
import stat
import struct
import subprocess
import tempfile
import termios
import time
import tomllib
import unittest

from harness import Server, game_bin, run_game

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "protocol-vectors.txt")

# Exit codes (README, "Exit codes").
OK, REJECTED, USAGE, DATAERR, NOINPUT, UNAVAILABLE, IOERR, TIMEOUT, PROTOCOL, NOPERM, CONFIG = (
    0, 1, 64, 65, 66, 69, 74, 75, 76, 77, 78)


def config_of(home):
    with open(home.config_path, "rb") as f:
        return tomllib.load(f)


def uuid_of(home):
    return config_of(home)["identity"]["uuid"]


def run_printed(command, home, timeout=120):
    """A command the client printed, pasted into a shell as printed, with only HOME and PATH, in
    another directory (/) than the one it was printed in."""
    with tempfile.TemporaryDirectory() as bin_dir:
        os.symlink(os.path.abspath(game_bin()), os.path.join(bin_dir, "game"))
        return subprocess.run(["sh", "-c", command], cwd="/", capture_output=True, text=True, timeout=timeout,
                              env={"HOME": home.path, "PATH": bin_dir + ":" + os.environ["PATH"]})


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def key_path_of(home):
    return config_of(home)["identity"]["key"].replace("~", home.path, 1)


def ssh_keygen_fingerprint(pub_path):
    out = subprocess.run(["ssh-keygen", "-lf", pub_path], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    return out.split()[1]


def request_vectors():
    """[(description, hex)] of the Request vectors."""
    out = []
    with open(VECTORS, encoding="utf-8") as f:
        for line in f:
            desc, _, hexbytes = line.rstrip("\n").partition("\t")
            if desc.startswith("Request"):
                out.append((desc, hexbytes))
    return out


def endpoint(server):
    """HOST:PORT of a test server, as given to --server."""
    host = f"[{server.bind}]" if ":" in server.bind else server.bind
    return f"{host}:{server.port}"


def play(server, home, *args, timeout=60, input=None, env=None):
    """Runs `game --server HOST:PORT ARGS...` against a test server."""
    return run_game(["--server", endpoint(server), *args], home, timeout=timeout, input=input, env=env)


def write_lines(home, name, lines):
    """A file NAME in the home directory holding `lines`, each ending with a newline."""
    path = os.path.join(home.path, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def pending_dir(home):
    """Where the client journals unfinished submissions (docs/batch.md, "Resuming")."""
    return os.path.join(home.path, ".game", "pending")


def entries(home):
    """The journal's entries: one path per unfinished submission."""
    d = pending_dir(home)
    return sorted(os.path.join(d, n) for n in os.listdir(d)) if os.path.isdir(d) else []


def read_entry(path):
    """A journal entry's `key value` lines as a dict."""
    with open(path, encoding="utf-8") as f:
        return dict(line.rstrip("\n").split(" ", 1) for line in f)


def run_command(cmd, **kwargs):
    """subprocess.run with output captured as text, no stdin and a 120 s bound."""
    kwargs.setdefault("capture_output", True)
    kwargs.setdefault("text", True)
    kwargs.setdefault("timeout", 120)
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    return subprocess.run(cmd, **kwargs)


class SharedServerTestCase(unittest.TestCase):
    """Tests that share one acknowledging reference server (self.server) per class."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server(mode="ack").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()


class Terminal:
    """A program on a new pseudo-terminal (os.openpty), as at a shell. stdin, stdout and stderr
    are the terminal unless given (a file object or subprocess.PIPE), so a test can put only
    stderr, say, on the terminal. `shown` is everything the terminal received so far."""

    def __init__(self, argv, env, stdin=None, stdout=None, stderr=None, cols=200):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
        streams = [slave if s is None else s for s in (stdin, stdout, stderr)]
        controlling = next((i for i, s in enumerate((stdin, stdout, stderr)) if s is None), None)

        def make_controlling_terminal():
            if controlling is not None:
                fcntl.ioctl(controlling, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(argv, env=env, stdin=streams[0], stdout=streams[1], stderr=streams[2],
                                     start_new_session=True, preexec_fn=make_controlling_terminal)
        os.close(slave)
        self.master = master
        self.shown = b""

    def _read(self, timeout):
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.master, 65536)
        except OSError:  # EIO: every process holding the terminal has closed it
            return False
        self.shown += chunk
        return bool(chunk)

    def expect(self, pattern, timeout=30):
        """Waits until what the terminal showed matches the regex `pattern` (bytes); returns the match."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.search(pattern, self.shown)
            if match:
                return match
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(remaining, 0.1)):
                raise AssertionError(f"the terminal did not show {pattern!r} within {timeout}s:\n{self.shown!r}")

    def send(self, data):
        os.write(self.master, data)

    def finish(self, timeout=60):
        """Reads the terminal until the program exits; returns its exit code."""
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.proc.args!r} did not exit within {timeout}s:\n{self.shown!r}")
            self._read(0.05)
        while select.select([self.master], [], [], 0)[0] and self._read(0):
            pass  # what it wrote before exiting
        os.close(self.master)
        return self.proc.returncode
