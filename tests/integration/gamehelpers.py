"""Assertions shared by the integration tests: what a user would check about the client."""

import os
import stat
import subprocess
import tomllib
import unittest

from harness import Server, run_game

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "protocol-vectors.txt")

# Exit codes (README, "Exit codes").
OK, REJECTED, USAGE, DATAERR, NOINPUT, UNAVAILABLE, IOERR, TIMEOUT, PROTOCOL, NOPERM, CONFIG = (
    0, 1, 64, 65, 66, 69, 74, 75, 76, 77, 78)


def config_of(home):
    with open(home.config_path, "rb") as f:
        return tomllib.load(f)


def uuid_of(home):
    return config_of(home)["identity"]["uuid"]


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
