#!/usr/bin/env python3
"""Self-check of the reference server and the harness, without the C++ client.

Drives the server with OpenSSH's `ssh -s` (fresh keys, no agent, no
~/.ssh) and checks replies and requests.log for every mode. Run through
tests/server/selftest.sh; every wait has a timeout.
"""

import os
import re
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
from harness import Home, HarnessError, Server, run_game, wait_until  # noqa: E402

# Known-answer vectors (shared/vectors/protocol-vectors.txt)
V = {k: bytes.fromhex(v) for k, v in {
    "bob": "a0093007a0050c03626f62",
    "empty": "a0063004a0020c00",
    "zoe": "a00f300da00b0c095a6fc3ab20f09f8eae",
    "a32": "a0263024a0220c20" + "61" * 32,
    "a33": "a0273025a0230c21" + "61" * 33,
    "s0": "a1073005a003020100",
    "s789": "a1083006a00402020315",
    "s-1": "a1073005a0030201ff",
    "s2^31-1": "a10a3008a00602047fffffff",
    "s2^63-1": "a10e300ca00a02087fffffffffffffff",
    "s-2^63": "a10e300ca00a02088000000000000000",
    "s2^64": "a10f300da00b0209010000000000000000",
    "accepted": "a0020500",
    "negative": "a1143012a0100c0e6e656761746976652073636f7265",
    "emptyname": "a110300ea00c0c0a656d707479206e616d65",
    "toolong": "a1243022a0200c1e6e616d65206c6f6e676572207468616e2033322063686172616374657273",
    "badutf8": "a11d301ba0190c176e616d65206973206e6f742076616c6964205554462d38",
    "malformed": "a1173015a0130c116d616c666f726d65642072657175657374",
}.items()}
# setUsername with invalid UTF-8 (c3 28)
V["badname"] = bytes.fromhex("a0083006a0040c02c328")
ACK = V["accepted"]

TMP = tempfile.mkdtemp(prefix="game-selftest-")


def keygen(kind="ed25519", name=None):
    path = os.path.join(TMP, name or f"key-{kind}-{uuid.uuid4().hex[:8]}")
    args = ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", path]
    if kind == "rsa":
        args += ["-b", "2048"]
    subprocess.run(args, check=True, stdin=subprocess.DEVNULL, timeout=60)
    return path


def fingerprint(key):
    out = subprocess.run(["ssh-keygen", "-lf", key + ".pub"], capture_output=True,
                         text=True, check=True, timeout=30).stdout
    return out.split()[1]


def ssh_cmd(srv, user, key, subsystem="game", host=None, extra=()):
    host = host or srv.bind
    # ssh keeps the first value given for an option: `extra` goes first
    return ["ssh", *extra, "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
            "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
            "-T", "-p", str(srv.port), "-s", f"{user}@{host}", subsystem]


def ssh(srv, user, key, data=b"", timeout=20, **kw):
    """Runs ssh to completion; returns CompletedProcess (bytes)."""
    env = {"PATH": os.environ["PATH"], "HOME": TMP}
    return subprocess.run(ssh_cmd(srv, user, key, **kw), input=data, capture_output=True,
                          timeout=timeout, env=env)


class Session:
    """An ssh subsystem session driven step by step."""

    def __init__(self, srv, user, key, **kw):
        env = {"PATH": os.environ["PATH"], "HOME": TMP}
        self.p = subprocess.Popen(ssh_cmd(srv, user, key, **kw), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def close_stdin(self):
        self.p.stdin.close()

    def read(self, n, timeout=10):
        """Reads exactly n bytes of stdout (or fails after timeout)."""
        buf = b""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"read {len(buf)} of {n} bytes within {timeout}s: {buf.hex()}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, n - len(buf))
                if not chunk:
                    raise AssertionError(f"EOF after {len(buf)} of {n} bytes: {buf.hex()}")
                buf += chunk
        return buf

    def alive_after(self, seconds):
        try:
            self.p.wait(timeout=seconds)
            return False
        except subprocess.TimeoutExpired:
            return True

    def wait(self, timeout=10):
        return self.p.wait(timeout=timeout)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait(timeout=10)
        for s in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                s.close()
            except (OSError, BrokenPipeError):
                pass


def new_user():
    return str(uuid.uuid4())


def ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


class Base(unittest.TestCase):
    key = None

    @classmethod
    def setUpClass(cls):
        if Base.key is None:
            Base.key = keygen("ed25519", "main-key")

    def server(self, mode="ack", **kw):
        srv = Server(mode=mode, **kw)
        srv.start(timeout=30)
        self.addCleanup(srv.close)
        return srv


class AckMode(Base):
    def test_valid_and_rejected(self):
        srv = self.server("ack")
        u = new_user()
        data = V["bob"] + V["s789"] + V["s-1"]
        r = ssh(srv, u, self.key, data)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, ACK + ACK + V["negative"])
        self.assertEqual(srv.names(u), ["bob"])
        self.assertEqual(srv.scores(u), [789])
        self.assertEqual(srv.rejections(u), ["negative score"])
        kinds = [e[0] for e in srv.events(uuid=u)]
        self.assertEqual(kinds, ["register", "connect", "setUsername", "addScore", "rejected",
                                 "eof", "closed"])
        conn_id = srv.connections(u)[0][0]
        self.assertRegex(conn_id, r"^\d+-1$")

    def test_validation(self):
        srv = self.server("ack")
        u = new_user()
        cases = [(V["zoe"], ACK), (V["a32"], ACK), (V["a33"], V["toolong"]),
                 (V["empty"], V["emptyname"]), (V["badname"], V["badutf8"]),
                 (V["s0"], ACK), (V["s2^31-1"], ACK), (V["s2^63-1"], ACK),
                 (V["s-2^63"], V["negative"]), (V["s2^64"], ACK)]
        r = ssh(srv, u, self.key, b"".join(c[0] for c in cases))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.hex(), b"".join(c[1] for c in cases).hex())
        self.assertEqual(srv.names(u), ["Zoë 🎮", "a" * 32])
        self.assertEqual(srv.scores(u), [0, 2**31 - 1, 2**63 - 1, 2**64])
        self.assertEqual(srv.rejections(u), ["name longer than 32 characters", "empty name",
                                             "name is not valid UTF-8", "negative score"])

    def test_thousand_requests(self):
        srv = self.server("ack")
        u = new_user()
        r = ssh(srv, u, self.key, V["s789"] * 1000, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout), 4000)
        self.assertEqual(r.stdout, ACK * 1000)
        self.assertEqual(srv.scores(u), [789] * 1000)

    def test_split_and_shared_messages(self):
        srv = self.server("ack")
        u = new_user()
        s = Session(srv, u, self.key)
        try:
            pdu = V["s789"]
            s.write(pdu[:3])
            time.sleep(0.3)
            s.write(pdu[3:7])
            time.sleep(0.3)
            s.write(pdu[7:] + V["bob"] + V["s0"][:2])   # 1 rest + 1 + a partial
            self.assertEqual(s.read(8), ACK * 2)
            time.sleep(0.3)
            s.write(V["s0"][2:])
            self.assertEqual(s.read(4), ACK)
            s.close_stdin()
            self.assertEqual(s.wait(), 0)
        finally:
            s.kill()
        self.assertEqual(srv.scores(u), [789, 0])
        self.assertEqual(srv.names(u), ["bob"])

    def test_malformed_closes_channel(self):
        srv = self.server("ack")
        u = new_user()
        s = Session(srv, u, self.key)
        try:
            s.write(V["s789"] + bytes.fromhex("0400"))   # OCTET STRING: not a Request
            self.assertEqual(s.read(4 + len(V["malformed"])), ACK + V["malformed"])
            self.assertIsNotNone(s.wait(10))             # server closed the channel
        finally:
            s.kill()
        self.assertEqual(srv.scores(u), [789])
        self.assertEqual(srv.malformed(u), [bytes.fromhex("0400")])
        srv.wait_for_event("closed", uuid=u)

    def test_framing_errors(self):
        srv = self.server("ack")
        for bad in ["a080" + "0000", "a0830100010000", "a08500000000010000"]:
            u = new_user()
            r = ssh(srv, u, self.key, bytes.fromhex(bad))
            self.assertEqual(r.stdout, V["malformed"], bad)
            self.assertEqual(len(srv.malformed(u)), 1, bad)

    def test_truncated_at_eof(self):
        srv = self.server("ack")
        u = new_user()
        r = ssh(srv, u, self.key, V["s789"] + V["bob"][:5])
        self.assertEqual(r.stdout, ACK + V["malformed"])
        self.assertEqual(srv.malformed(u), [V["bob"][:5]])


class Vectors(unittest.TestCase):
    """The asn1ct-compiled module reproduces the known-answer vectors."""

    def test_known_answers(self):
        path = os.environ.get("GAME_PROTOCOL_VECTORS") or next(
            (p for p in (os.path.join(os.path.dirname(HERE), "data", "protocol-vectors.txt"),
                         "/work/shared/vectors/protocol-vectors.txt") if os.path.exists(p)), None)
        if path is None:
            self.skipTest("no protocol-vectors.txt")
        r = subprocess.run(["erl", "-noinput", "-pa", harness.server_ebin(), "-run", "game_vectors",
                            "main", "-extra", path], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(path, encoding="utf-8") as f:
            expected = [ln.rstrip("\n").split("\t") for ln in f if ln.strip()]
        got = [ln.split("\t") for ln in r.stdout.splitlines()]
        self.assertEqual(len(got), len(expected))
        for (desc, hexbytes), (gdesc, decoded, reencoded) in zip(expected, got):
            with self.subTest(desc):
                self.assertEqual(gdesc, desc)
                self.assertEqual(reencoded, hexbytes)
                m = re.fullmatch(r'Request setUsername "(.*)"(?: \((\d+) x (.)\))?', desc)
                if m:
                    name = m.group(3) * int(m.group(2)) if m.group(2) else m.group(1)
                    self.assertEqual(decoded, "setUsername " + name.encode().hex())
                    continue
                m = re.fullmatch(r"Request addScore (-?\d+)", desc)
                if m:
                    self.assertEqual(decoded, "addScore " + m.group(1))
                    continue
                m = re.fullmatch(r'Response rejected "(.*)"', desc)
                if m:
                    self.assertEqual(decoded, "rejected " + m.group(1).encode().hex())
                    continue
                self.assertEqual((desc, decoded), ("Response accepted", "accepted"))


class Registration(Base):
    def test_register_once_and_other_key_refused(self):
        srv = self.server("ack")
        u = new_user()
        for _ in range(2):
            r = ssh(srv, u, self.key, V["s789"])
            self.assertEqual((r.returncode, r.stdout), (0, ACK), r.stderr)
        self.assertEqual(srv.registrations(u), [(u, fingerprint(self.key))])
        other = keygen()
        r = ssh(srv, u, other, V["s0"])
        self.assertEqual(r.returncode, 255)
        self.assertIn(b"Permission denied", r.stderr)
        self.assertEqual(srv.scores(u), [789, 789])
        self.assertEqual(len(srv.registrations(u)), 1)
        with open(srv.users_path) as f:
            lines = [ln.split() for ln in f if ln.startswith(u + " ")]
        with open(self.key + ".pub") as f:
            pub = f.read().split()[:2]
        self.assertEqual(lines, [[u] + pub])

    def test_key_types(self):
        srv = self.server("ack")
        for kind in ["ed25519", "ecdsa", "rsa"]:
            key = keygen(kind)
            u = new_user()
            r = ssh(srv, u, key, V["s789"])
            self.assertEqual((r.returncode, r.stdout), (0, ACK), (kind, r.stderr))
            self.assertEqual(srv.registrations(u), [(u, fingerprint(key))], kind)
            r = ssh(srv, u, key, V["s0"])
            self.assertEqual((r.returncode, r.stdout), (0, ACK), (kind, r.stderr))
            self.assertEqual(len(srv.registrations(u)), 1, kind)

    def test_persistence_across_restart(self):
        state = tempfile.mkdtemp(dir=TMP)
        srv = self.server("ack", state_dir=state)
        u = new_user()
        self.assertEqual(ssh(srv, u, self.key, V["s789"]).stdout, ACK)
        first_id = srv.connections(u)[0][0]
        fp = srv.host_key_fingerprint()
        srv.restart()
        self.assertEqual(srv.host_key_fingerprint(), fp)
        r = ssh(srv, u, keygen(), V["s0"])
        self.assertEqual(r.returncode, 255)
        self.assertEqual(ssh(srv, u, self.key, V["s0"]).stdout, ACK)
        self.assertEqual(len(srv.registrations(u)), 1)
        ids = [c[0] for c in srv.connections(u)]
        self.assertEqual(len(ids), 2)
        self.assertNotEqual(ids[1], first_id)
        # a second node sharing host key and users
        node2 = self.server("ack", state_dir=srv.copy_state_to(tempfile.mkdtemp(dir=TMP)))
        self.assertEqual(node2.host_key_fingerprint(), fp)
        self.assertEqual(ssh(node2, u, self.key, V["s0"]).stdout, ACK)
        self.assertEqual(ssh(node2, u, keygen(), V["s0"]).returncode, 255)
        self.assertEqual(node2.registrations(), [])

    def test_parallel_same_key(self):
        srv = self.server("ack")
        u = new_user()
        results = [None] * 10

        def run(i):
            results[i] = ssh(srv, u, self.key, V["s789"], timeout=60)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        for r in results:
            self.assertEqual((r.returncode, r.stdout), (0, ACK), r.stderr)
        self.assertEqual(len(srv.registrations(u)), 1)
        self.assertEqual(len(srv.connections(u)), 10)
        self.assertEqual(len(set(c[0] for c in srv.connections(u))), 10)
        self.assertEqual(list(srv.users()).count(u), 1)
        with open(srv.users_path) as f:
            self.assertEqual(sum(1 for ln in f if ln.startswith(u + " ")), 1)

    def test_parallel_different_keys(self):
        srv = self.server("ack")
        u = new_user()
        keys = [keygen() for _ in range(10)]
        results = [None] * 10

        def run(i):
            results[i] = ssh(srv, u, keys[i], V["s789"], timeout=60)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(90)
        regs = srv.registrations(u)
        self.assertEqual(len(regs), 1)
        winner = [k for k in keys if fingerprint(k) == regs[0][1]]
        self.assertEqual(len(winner), 1)
        ok = [keys[i] for i, r in enumerate(results) if r.returncode == 0 and r.stdout == ACK]
        self.assertIn(winner[0], ok)
        self.assertEqual(set(ok), {winner[0]})
        self.assertEqual(len(srv.scores(u)), 1)


class OtherModes(Base):
    def test_seed(self):
        srv = self.server("seed")
        u = new_user()
        s = Session(srv, u, self.key)
        try:
            s.write(V["bob"])
            srv.wait_for_event("setUsername", uuid=u)
            s.write(V["s789"])
            srv.wait_for_event("addScore", uuid=u)
            s.write(V["s789"] + V["s0"])            # two PDUs in one message
            srv.wait_for_event("malformed", uuid=u)
            s.close_stdin()
            rc = s.wait(10)
            out = s.p.stdout.read()
        finally:
            s.kill()
        self.assertEqual(out, b"")
        self.assertEqual(rc, 255)                   # closed without exit-status
        self.assertEqual(srv.names(u), ["bob"])
        self.assertEqual(srv.scores(u), [789])
        kinds = [e[0] for e in srv.events(uuid=u)]
        self.assertEqual(kinds[-2:], ["eof", "closed"])

    def test_silent(self):
        srv = self.server("silent")
        u = new_user()
        s = Session(srv, u, self.key)
        try:
            s.write(V["s789"])
            s.close_stdin()
            srv.wait_for_event("eof", uuid=u)
            self.assertTrue(s.alive_after(1.5), "silent mode must not close the channel")
        finally:
            s.kill()
        self.assertEqual(srv.scores(u), [789])
        srv.wait_for_event("closed", uuid=u)        # after the client went away

    def test_stall(self):
        srv = self.server("stall")
        u = new_user()
        s = Session(srv, u, self.key)
        written = [0]

        def writer():
            try:
                chunk = V["s789"] * 10000
                for _ in range(100):                 # 10 MB, far more than the window
                    s.write(chunk)
                    written[0] += len(chunk)
            except (BrokenPipeError, ValueError, OSError):
                pass

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            srv.wait_for_event("connect", uuid=u)
            self.assertTrue(s.alive_after(2.0))
            self.assertTrue(t.is_alive(), "writer should be blocked by the SSH window")
            self.assertLess(written[0], 100 * 100000)
        finally:
            s.kill()
            t.join(10)
        self.assertEqual(srv.scores(u), [])

    def test_slow(self):
        srv = self.server("slow")
        u = new_user()
        t0 = time.monotonic()
        r = ssh(srv, u, self.key, V["s789"] * 3)
        elapsed = time.monotonic() - t0
        self.assertEqual((r.returncode, r.stdout), (0, ACK * 3), r.stderr)
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertEqual(srv.scores(u), [789] * 3)

    def test_drop(self):
        srv = self.server("drop:2")
        u = new_user()
        r = ssh(srv, u, self.key, V["s789"] + V["bob"] + V["s0"] + V["s0"])
        self.assertEqual(r.returncode, 255)
        self.assertEqual(r.stdout, ACK * 2)
        self.assertEqual(srv.scores(u), [789])
        self.assertEqual(srv.names(u), ["bob"])
        srv.wait_for_event("dropped", uuid=u)

    def test_pause(self):
        srv = self.server("pause:2")
        u = new_user()
        s = Session(srv, u, self.key)
        try:
            s.write(V["s789"] + V["bob"] + V["s0"] + V["s0"])
            self.assertEqual(s.read(8), ACK * 2)
            srv.wait_for_event("paused", uuid=u)
            s.write(V["s0"])
            s.close_stdin()
            self.assertTrue(s.alive_after(1.0), "pause keeps the channel open")
        finally:
            s.kill()
        srv.wait_for_event("closed", uuid=u)
        self.assertEqual(srv.scores(u), [789])
        self.assertEqual(srv.names(u), ["bob"])
        self.assertEqual([e[0] for e in srv.events(uuid=u)][-2:], ["paused", "closed"])

    def test_garbage_and_huge(self):
        for mode, expect in [("garbage", "ffffffff"), ("huge", "a0847fffffff")]:
            srv = self.server(mode)
            u = new_user()
            s = Session(srv, u, self.key)
            try:
                s.write(V["s789"] + V["s0"])
                self.assertEqual(s.read(len(expect) // 2).hex(), expect, mode)
                s.write(V["s0"])
                srv.wait_for_event("addScore", count=3, uuid=u)
                s.close_stdin()
                self.assertTrue(s.alive_after(1.0), f"{mode} keeps the channel open")
            finally:
                s.kill()

    def test_extra(self):
        srv = self.server("extra")
        r = ssh(srv, new_user(), self.key, V["s789"] * 2)
        self.assertEqual((r.returncode, r.stdout), (0, ACK * 4), r.stderr)

    def test_refuse(self):
        srv = self.server("refuse")
        u = new_user()
        r = ssh(srv, u, self.key, V["s789"])
        self.assertEqual(r.returncode, 255)
        self.assertIn(b"subsystem request failed", r.stderr)
        self.assertEqual(srv.connections(u), [])

    def test_subsystem_name(self):
        srv = self.server("ack", subsystem="game-v2")
        u = new_user()
        self.assertEqual(ssh(srv, u, self.key, V["s0"], subsystem="game-v2").stdout, ACK)
        self.assertEqual(ssh(srv, u, self.key, V["s0"]).returncode, 255)

    @unittest.skipUnless(ipv6_loopback(), "no IPv6 loopback")
    def test_ipv6(self):
        srv = self.server("ack", bind="::1")
        r = ssh(srv, new_user(), self.key, V["s0"], host="::1")
        self.assertEqual((r.returncode, r.stdout), (0, ACK), r.stderr)


class HarnessChecks(Base):
    def test_host_key_fingerprint_matches_ssh(self):
        srv = self.server("ack")
        r = ssh(srv, new_user(), self.key, V["s0"], extra=("-o", "LogLevel=DEBUG"))
        self.assertIn(f"Server host key: ssh-ed25519 {srv.host_key_fingerprint()}",
                      r.stderr.decode())

    def test_bind_must_be_loopback(self):
        srv = Server("ack", bind="0.0.0.0")
        self.addCleanup(srv.close)
        with self.assertRaises(HarnessError):
            srv.start(timeout=10)

    def test_stop_and_kill(self):
        srv = self.server("ack")
        t0 = time.monotonic()
        srv.stop()
        self.assertFalse(srv.running())
        self.assertLess(time.monotonic() - t0, 6)
        srv.start()
        srv.kill()
        self.assertFalse(srv.running())

    def test_run_game_env_and_timeout(self):
        script = os.path.join(TMP, "fake-game")
        with open(script, "w") as f:
            f.write("#!/bin/sh\n"
                    "if [ \"$1\" = sleep ]; then sleep 30; fi\n"
                    "echo \"HOME=$HOME\"; echo \"AGENT=${SSH_AUTH_SOCK:-none}\"; cat\n")
        os.chmod(script, 0o755)
        old = os.environ.get("GAME_BIN")
        os.environ["GAME_BIN"] = script
        try:
            with Home() as home:
                r = run_game([], home)
                self.assertEqual(r.stdout, f"HOME={home.path}\nAGENT=none\n")
                r = run_game([], home, input="hi\n", env={"SSH_AUTH_SOCK": "/x"})
                self.assertEqual(r.stdout, f"HOME={home.path}\nAGENT=/x\nhi\n")
                t0 = time.monotonic()
                with self.assertRaises(HarnessError):
                    run_game(["sleep"], home, timeout=1)
                self.assertLess(time.monotonic() - t0, 10)
                self.assertEqual(home.config_path, os.path.join(home.path, ".gameconfig"))
        finally:
            if old is None:
                del os.environ["GAME_BIN"]
            else:
                os.environ["GAME_BIN"] = old


class Performance(Base):
    def test_100k_ack_one_session(self):
        srv = self.server("ack")
        u = new_user()
        t0 = time.monotonic()
        r = ssh(srv, u, self.key, V["s789"] * 100000, timeout=120)
        elapsed = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, (r.stderr, srv.stderr_text()[-3000:]))
        self.assertEqual(len(r.stdout), 400000)
        self.assertEqual(len(srv.scores(u)), 100000)
        print(f"\n  100k addScore in ack mode over OpenSSH: {elapsed:.2f}s", file=sys.stderr)
        self.assertLess(elapsed, 30)


if __name__ == "__main__":
    try:
        unittest.main(verbosity=2)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
