"""The reference server as a mnesia cluster (tests/server/game-cluster, harness.Cluster).

Both protocols are driven with OpenSSH's `ssh -s HOST game` / `game-v2` fed with bytes from
protocol2.py (checked against the known-answer vectors first), and the real `game` binary with the
cluster's config table for failover. Assertions are
on the bytes the server sends and on what the database holds (the dump of a node).
"""

import os
import select
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

import protocol2 as p2
from gamehelpers import uuid_of
from harness import Cluster, HarnessError, Home, Server, public_key_line, run_game, server_ebin

HERE = os.path.dirname(os.path.abspath(__file__))
VECTORS2 = os.path.join(HERE, "..", "data", "protocol2-vectors.txt")
TMP = tempfile.mkdtemp(prefix="game-test-cluster-")


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def keygen(name):
    path = os.path.join(TMP, f"{name}-{uuid.uuid4().hex[:8]}")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path],
                   check=True, stdin=subprocess.DEVNULL, timeout=60)
    return path


def pub(key):
    return public_key_line(key + ".pub")


def ssh_cmd(port, user, key, subsystem="game-v2"):
    return ["ssh", "-F", "/dev/null", "-i", key, "-o", "IdentitiesOnly=yes",
            "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
            "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
            "-T", "-p", str(port), "-s", f"{user}@127.0.0.1", subsystem]


SSH_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": TMP}


def v2(port, user, key, data, timeout=60):
    """One protocol 2 channel: sends data, then EOF; returns (ssh exit code, decoded server
    messages, stderr text)."""
    r = subprocess.run(ssh_cmd(port, user, key), input=data, capture_output=True, timeout=timeout,
                       env=SSH_ENV)
    return r.returncode, p2.decode_server(r.stdout), r.stderr.decode("utf-8", "replace")


# protocol 1 Responses (tests/data/protocol-vectors.txt)
P1_ACCEPTED = bytes.fromhex("a0020500")
P1_NEGATIVE = bytes.fromhex("a1143012a0100c0e6e656761746976652073636f7265")


def v1(port, user, key, data, timeout=60):
    """One protocol 1 channel on `game`: sends data, then EOF; returns (ssh exit code, the
    server's bytes, stderr text)."""
    r = subprocess.run(ssh_cmd(port, user, key, "game"), input=data, capture_output=True,
                       timeout=timeout, env=SSH_ENV)
    return r.returncode, r.stdout, r.stderr.decode("utf-8", "replace")


def submits(first, values):
    return b"".join(p2.submit(first + i, p2.add_score(v)) for i, v in enumerate(values))


class Session:
    """A protocol 2 channel driven step by step."""

    def __init__(self, port, user, key):
        self.p = subprocess.Popen(ssh_cmd(port, user, key), stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=SSH_ENV)
        self.buf = b""

    def write(self, data):
        self.p.stdin.write(data)
        self.p.stdin.flush()

    def messages(self, n, timeout=30):
        """Reads until n complete server messages arrived (or EOF); returns them."""
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()
        while True:
            try:
                msgs = p2.decode_server(self.buf)
            except (ValueError, IndexError):
                msgs = None  # a partial message at the end
            if msgs is not None and len(msgs) >= n:
                return msgs
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{n} messages not received within {timeout}s: {self.buf.hex()}")
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return msgs or []
                self.buf += chunk

    def finish(self, timeout=30):
        """EOF, then everything until the server closes; returns (exit code, messages)."""
        self.p.stdin.close()
        out, err = self.p.communicate(timeout=timeout)
        self.buf += out
        return self.p.returncode, p2.decode_server(self.buf)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.communicate(timeout=30)


def results(msgs):
    return [(m[1], m[2]) for m in msgs if m[0] == "result"]


ACC, DUP = ("accepted",), ("duplicate",)


def rej(reason):
    return ("rejected", reason)


# ---------------------------------------------------------------------------

class Vectors(unittest.TestCase):
    """protocol2.py agrees with the shared known answers, so the other tests' bytes are right."""

    def test_encoder_and_decoder_match_the_vectors(self):
        with open(VECTORS2, encoding="utf-8") as f:
            vec = dict(line.rstrip("\n").split("\t") for line in f if "\t" in line)
        k1 = bytes.fromhex(vec["K1 ssh-ed25519 public key blob (RFC 8032 7.1 TEST 1)"])
        k2 = bytes.fromhex(vec["K2 ssh-ed25519 public key blob (RFC 8032 7.1 TEST 2)"])
        enc = {
            "ClientMessage open stream 000102030405060708090a0b0c0d0e0f": p2.open_stream(bytes(range(16))),
            "ClientMessage submit seq 128 Request addScore -1": p2.submit(128, p2.add_score(-1)),
            'ClientMessage submit seq 9223372036854775807 Request setUsername "Zoë"':
                p2.submit(2**63 - 1, p2.set_username("Zoë")),
            'ClientMessage account seq 1 addKey key K1 label "laptop"': p2.account(1, p2.add_key(k1, "laptop")),
            "ClientMessage account seq 2 removeKey key K1": p2.account(2, p2.remove_key(k1)),
            "ClientMessage account seq 3 listKeys": p2.account(3, p2.LIST_KEYS),
        }
        for desc, data in enc.items():
            self.assertEqual(data.hex(), vec[desc], desc)
        dec = {
            "ServerMessage opened lastSeq 1099511627776": [("opened", 2**40)],
            'ServerMessage result seq 2 rejected "negative score"': [("result", 2, rej("negative score"))],
            "ServerMessage result seq 3 duplicate": [("result", 3, DUP)],
            'ServerMessage result seq 4 keys [K1 "laptop" current TRUE, K2 "phone" current FALSE]':
                [("result", 4, ("keys", [(k1, "laptop", True), (k2, "phone", False)]))],
        }
        for desc, msgs in dec.items():
            self.assertEqual(p2.decode_server(bytes.fromhex(vec[desc])), msgs, desc)


class ClusterCase(unittest.TestCase):
    """One cluster per class (tests use fresh UUIDs and streams, so they do not interfere)."""
    nodes = 1
    fault = None

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(nodes=cls.nodes, fault=cls.fault).launch()
        cls.key = keygen("device1")

    @classmethod
    def tearDownClass(cls):
        cls.c.close()

    def port(self, i=0):
        return self.c.ports[i]


class Protocol2(ClusterCase):
    """Protocol 2 on game-v2 of a single node: streams, exactly-once, validation, seq rules."""

    def test_resend_is_answered_with_the_first_outcome_and_applied_once(self):
        u, s = str(uuid.uuid4()), os.urandom(16)
        first = p2.open_stream(s) + submits(1, [5, -1]) + p2.submit(3, p2.set_username("Al"))
        rc, msgs, err = v2(self.port(), u, self.key, first)
        self.assertEqual(rc, 0, err)
        self.assertEqual(msgs[0], ("opened", 0))
        self.assertEqual(results(msgs), [(1, ACC), (2, rej("negative score")), (3, ACC)])
        rc, msgs, err = v2(self.port(), u, self.key, first[:0] + p2.open_stream(s) + submits(1, [5, -1])
                           + p2.submit(3, p2.set_username("Al")) + p2.submit(7, p2.add_score(6)))
        self.assertEqual(rc, 0, err)
        self.assertEqual(msgs[0], ("opened", 3))
        self.assertEqual(results(msgs), [(1, DUP), (2, rej("negative score")), (3, DUP), (7, ACC)])
        self.assertEqual(self.c.scores(u), [(u, 5, s.hex(), 1), (u, 6, s.hex(), 7)])
        self.assertEqual(self.c.names(u), [(u, "Al")])
        [stream] = [d for d in self.c.dump() if d["table"] == "stream" and d["uuid"] == u]
        self.assertEqual((stream["last_seq"], stream["rejected"]), (7, {"2": "negative score"}))

    def test_streams_belong_to_their_user(self):
        s = os.urandom(16)
        u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
        self.assertEqual(v2(self.port(), u1, self.key, p2.open_stream(s) + submits(1, [1]))[1][0],
                         ("opened", 0))
        rc, msgs, err = v2(self.port(), u2, self.key, p2.open_stream(s) + submits(1, [2]))
        self.assertEqual((rc, msgs), (0, [("opened", 0), ("result", 1, ACC)]), err)

    def test_names_are_validated_as_in_protocol_1(self):
        u, s = str(uuid.uuid4()), os.urandom(16)
        names = ["", "a" * 33, b"\xc3\x28", "a" * 32, "Zoë 🎮"]
        data = p2.open_stream(s) + b"".join(p2.submit(i + 1, p2.set_username(n)) for i, n in enumerate(names))
        rc, msgs, err = v2(self.port(), u, self.key, data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(results(msgs), [(1, rej("empty name")), (2, rej("name longer than 32 characters")),
                                         (3, rej("name is not valid UTF-8")), (4, ACC), (5, ACC)])
        self.assertEqual(self.c.names(u), [(u, "Zoë 🎮")])

    def test_a_seq_not_greater_than_the_previous_closes_the_channel(self):
        u, s = str(uuid.uuid4()), os.urandom(16)
        rc, msgs, err = v2(self.port(), u, self.key,
                           p2.open_stream(s) + submits(5, [1]) + submits(5, [2]) + submits(6, [3]))
        self.assertNotEqual(rc, 0)
        self.assertEqual(msgs, [("opened", 0), ("result", 5, ACC)])
        self.assertIn("protocol error: seq 5 is not greater than 5", err)
        self.assertEqual(self.c.scores(u), [(u, 1, s.hex(), 5)])

    def test_a_request_before_open_is_a_protocol_error(self):
        u = str(uuid.uuid4())
        rc, msgs, err = v2(self.port(), u, self.key, submits(1, [1]))
        self.assertNotEqual(rc, 0)
        self.assertEqual(msgs, [])
        self.assertIn("protocol error: a request before open", err)
        self.assertEqual(self.c.scores(u), [])

    def test_a_second_open_or_bytes_that_are_no_message_close_the_channel(self):
        for tail, what in [(p2.open_stream(os.urandom(16)), "a second open on the channel"),
                           (bytes.fromhex("a1030201ff"), "not a ClientMessage: a1030201ff"),
                           (bytes.fromhex("a180"), "bad BER framing (indefinite_length)")]:
            u, s = str(uuid.uuid4()), os.urandom(16)
            rc, msgs, err = v2(self.port(), u, self.key, p2.open_stream(s) + submits(1, [1]) + tail
                               + submits(2, [2]))
            self.assertNotEqual(rc, 0)
            self.assertEqual(msgs, [("opened", 0), ("result", 1, ACC)], what)
            self.assertIn(f"protocol error: {what}", err)
            self.assertEqual(self.c.scores(u), [(u, 1, s.hex(), 1)], what)

    def test_protocol_1_on_game_is_acknowledged_and_stored(self):
        u = str(uuid.uuid4())
        rc, out, err = v1(self.port(), u, self.key,
                          p2.add_score(789) + p2.add_score(-1) + p2.set_username("Bo"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(out, P1_ACCEPTED + P1_NEGATIVE + P1_ACCEPTED)
        self.assertEqual(self.c.scores(u), [(u, 789, None, None)])
        self.assertEqual(self.c.names(u), [(u, "Bo")])


class TwoNodes(ClusterCase):
    """Any node serves any player: registration, scores and streams are shared. A and B are
    nodes 0 and 1 (SingleNode runs the same tests with A = B)."""
    nodes = 2

    def port(self, i=0):
        return self.c.ports[min(i, self.nodes - 1)]

    def test_registration_on_a_is_honoured_on_b(self):
        u = str(uuid.uuid4())
        other = keygen("intruder")
        self.assertEqual(v2(self.port(0), u, self.key, p2.open_stream(os.urandom(16)))[0], 0)
        rc, _, err = v2(self.port(1), u, other, p2.open_stream(os.urandom(16)))
        self.assertEqual(rc, 255)
        self.assertIn("Permission denied", err)
        rc, msgs, err = v2(self.port(1), u, self.key, p2.open_stream(os.urandom(16)) + p2.account(1, p2.LIST_KEYS))
        self.assertEqual(rc, 0, err)
        self.assertEqual(results(msgs), [(1, ("keys", [(p2.key_blob(pub(self.key)), "registered", True)]))])

    def test_a_score_sent_to_a_is_in_b_dump(self):
        u, s = str(uuid.uuid4()), os.urandom(16)
        self.assertEqual(v2(self.port(0), u, self.key, p2.open_stream(s) + submits(1, [42]))[0], 0)
        self.assertEqual(self.c.scores(u, i=self.b), [(u, 42, s.hex(), 1)])
        # and the stream: B answers a resend with duplicate
        rc, msgs, err = v2(self.port(1), u, self.key, p2.open_stream(s) + submits(1, [42]))
        self.assertEqual((rc, msgs), (0, [("opened", 1), ("result", 1, DUP)]), err)

    def test_protocol_1_on_a_is_read_from_b(self):
        u = str(uuid.uuid4())
        rc, out, err = v1(self.port(0), u, self.key, p2.add_score(7))
        self.assertEqual((rc, out), (0, P1_ACCEPTED), err)
        self.assertEqual(self.c.scores(u, i=self.b), [(u, 7, None, None)])

    @property
    def b(self):
        return min(1, self.nodes - 1)

    def test_cookie_file_is_0400_and_every_node_presents_one_host_key(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.c.cookie_path).st_mode), 0o400)
        for port in self.c.ports:
            r = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port), "127.0.0.1"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.stdout.split()[1:3], pub(self.c.host_key_path).split(), r.stderr)


class SingleNode(TwoNodes):
    nodes = 1


class KillMidBatch(unittest.TestCase):
    """A node SIGKILLed while requests are in flight loses nothing it acknowledged; another
    node serves the resend exactly once; the restarted node catches up."""
    nodes = 2

    def test_kill_resend_restart(self):
        with Cluster(nodes=self.nodes) as c:
            key = keygen("device")
            u, s = str(uuid.uuid4()), os.urandom(16)
            b = min(1, self.nodes - 1)
            sess = Session(c.ports[0], u, key)
            try:
                sess.write(p2.open_stream(s) + submits(1, range(1, 1001)))
                acked = results(sess.messages(1001))
                self.assertEqual(acked, [(i, ACC) for i in range(1, 1001)])
                sess.write(submits(1001, range(1001, 3001)))
                c.kill(0)
                acked = results(sess.messages(10**6, timeout=30))  # until the connection is gone
            finally:
                sess.kill()
            if b == 0:
                c.start(0)
            seqs = [seq for _, _, _, seq in c.scores(u, i=b)]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), "committed: a prefix, in order")
            self.assertGreaterEqual(len(seqs), len(acked), "every acknowledged request is kept")
            rc, msgs, err = v2(c.ports[b], u, key, p2.open_stream(s) + submits(1, range(1, 3001)))
            self.assertEqual(rc, 0, err)
            self.assertEqual(msgs[0], ("opened", len(seqs)))
            self.assertEqual(results(msgs), [(i, DUP if i <= len(seqs) else ACC) for i in range(1, 3001)])
            want = [(u, i, s.hex(), i) for i in range(1, 3001)]
            self.assertEqual(c.scores(u, i=b), want)
            if b == 1:
                c.start(0)
            self.assertEqual(c.scores(u, i=0), want)
            self.assertEqual(self._rows(c.dump(0)), self._rows(c.dump(b)))

    @staticmethod
    def _rows(dump):
        return sorted(repr(sorted(d.items())) for d in dump)


class KillMidBatchSingleNode(KillMidBatch):
    nodes = 1


class Failover(unittest.TestCase):
    """The real client with the cluster's config table: a dead node is skipped, the player and
    the scores are the cluster's; a whole cluster restarted from its state keeps everything."""

    def test_client_fails_over_and_a_restarted_cluster_keeps_its_data(self):
        state = tempfile.mkdtemp(prefix="game-cluster-restart-", dir=TMP)
        with Cluster(nodes=2, state_dir=state) as c, Home() as home:
            r = run_game(["--server", c.addresses[0], "--host-key", c.host_key, "score", "5"], home)
            self.assertEqual(r.returncode, 0, r.stderr)
            u = uuid_of(home)
            with open(home.config_path, "a", encoding="utf-8") as f:
                f.write("\n" + c.config_table("arena"))
            c.kill(0)
            r = run_game(["--server", "arena", "score", "6"], home)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual([v for _, v, _, _ in c.scores(u, i=1)], [5, 6])
            c.start(0)
            self.assertEqual([v for _, v, _, _ in c.scores(u, i=0)], [5, 6])
            before = c.dump(0)
        with Cluster(nodes=2, state_dir=state) as c:
            self.assertEqual(sorted(map(repr, c.dump(1))), sorted(map(repr, before)))


class Faults(unittest.TestCase):
    """Each protocol 2 fault knob does what tests/server/README.md says."""

    def run_with(self, fault, data, then=None):
        with Cluster(nodes=1, fault=fault) as c:
            key = keygen("device")
            u, s = str(uuid.uuid4()), os.urandom(16)
            rc, msgs, err = v2(c.ports[0], u, key, p2.open_stream(s) + data)
            out = (rc, msgs, [seq for _, _, _, seq in c.scores(u)])
            if then:
                out += (v2(c.ports[0], u, key, p2.open_stream(s) + then),)
            return out

    def test_drop_before_result_commits_then_kills_the_connection(self):
        rc, msgs, seqs, again = self.run_with("drop_before_result:3", submits(1, [1, 2, 3, 4, 5]),
                                              then=submits(3, [3, 4]))
        self.assertEqual(rc, 255)
        self.assertEqual(msgs, [("opened", 0), ("result", 1, ACC), ("result", 2, ACC)])
        self.assertEqual(seqs, [1, 2, 3], "the 3rd is committed though never answered; 4 and 5 not")
        rc, msgs, err = again
        self.assertEqual((rc, msgs), (0, [("opened", 3), ("result", 3, DUP), ("result", 4, ACC)]), err)

    def test_drop_after_result_sends_the_result_then_kills(self):
        rc, msgs, seqs = self.run_with("drop_after_result:2", submits(1, [1, 2, 3, 4]))
        self.assertEqual(rc, 255)
        self.assertEqual(msgs, [("opened", 0), ("result", 1, ACC), ("result", 2, ACC)])
        self.assertEqual(seqs, [1, 2])

    def test_extra_result_sends_every_result_twice(self):
        rc, msgs, seqs = self.run_with("extra_result", submits(1, [1, -1]))
        self.assertEqual(rc, 0)
        self.assertEqual(results(msgs), [(1, ACC), (1, ACC), (2, rej("negative score")),
                                         (2, rej("negative score"))])
        self.assertEqual(seqs, [1])

    def test_unknown_seq_answers_the_first_request_with_a_seq_never_sent(self):
        rc, msgs, seqs = self.run_with("unknown_seq", submits(1, [1, 2]))
        self.assertEqual(rc, 0)
        self.assertEqual(results(msgs), [(1 + 2**62, ACC), (2, ACC)])
        self.assertEqual(seqs, [1, 2])


class AccountKeys(ClusterCase):
    """addKey / removeKey / listKeys, and what authentication then accepts."""

    def account(self, user, key, *requests, first=1):
        data = p2.open_stream(os.urandom(16)) + b"".join(
            p2.account(first + i, r) for i, r in enumerate(requests))
        rc, msgs, err = v2(self.port(), user, key, data)
        self.assertEqual(rc, 0, err)
        return [outcome for _, outcome in results(msgs)]

    def test_second_device_then_revoke_the_first(self):
        u = str(uuid.uuid4())
        k1, k2 = self.key, keygen("device2")
        b1, b2 = p2.key_blob(pub(k1)), p2.key_blob(pub(k2))
        self.assertEqual(self.account(u, k1, p2.add_key(b2, "phone"), p2.LIST_KEYS),
                         [ACC, ("keys", [(b1, "registered", True), (b2, "phone", False)])])
        self.assertEqual(self.c.keys(u), [(pub(k1), "registered"), (pub(k2), "phone")])
        # the new device plays as the same account; current is the key that signed
        self.assertEqual(self.account(u, k2, p2.LIST_KEYS),
                         [("keys", [(b1, "registered", False), (b2, "phone", True)])])
        self.assertEqual(self.account(u, k2, p2.remove_key(b1), p2.remove_key(b2), p2.remove_key(b1)),
                         [ACC, rej("cannot remove the last key"), rej("no such key")])
        # listKeys is answered with keys even when its seq is not above lastSeq
        s = os.urandom(16)
        for _ in range(2):
            rc, msgs, err = v2(self.port(), u, k2, p2.open_stream(s) + p2.account(1, p2.LIST_KEYS))
            self.assertEqual(results(msgs), [(1, ("keys", [(b2, "phone", True)]))], err)
        rc, _, err = v2(self.port(), u, k1, p2.open_stream(os.urandom(16)))
        self.assertEqual(rc, 255, "the removed key is refused")
        self.assertIn("Permission denied", err)
        self.assertEqual(self.c.keys(u), [(pub(k2), "phone")])

    def test_a_key_of_another_account_is_refused(self):
        u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
        other = keygen("other")
        self.assertEqual(self.account(u2, other, p2.LIST_KEYS)[0][0], "keys")
        self.assertEqual(self.account(u1, self.key, p2.add_key(p2.key_blob(pub(other)), "stolen")),
                         [rej("key belongs to another account")])
        self.assertEqual(self.c.keys(u1), [(pub(self.key), "registered")])

    def test_bad_label_and_bad_key_are_rejected_and_a_resend_is_a_duplicate(self):
        u, s = str(uuid.uuid4()), os.urandom(16)
        k2 = p2.key_blob(pub(keygen("device2")))
        data = p2.open_stream(s) + p2.account(1, p2.add_key(k2, "")) + \
            p2.account(2, p2.add_key(b"\x00\x00\x00\x03abc", "x")) + p2.account(3, p2.add_key(k2, "tablet"))
        rc, msgs, err = v2(self.port(), u, self.key, data)
        self.assertEqual(rc, 0, err)
        self.assertEqual(results(msgs), [(1, rej("label must be 1 to 64 characters")),
                                         (2, rej("not a valid SSH public key")), (3, ACC)])
        rc, msgs, err = v2(self.port(), u, self.key, data)
        self.assertEqual(results(msgs), [(1, rej("label must be 1 to 64 characters")),
                                         (2, rej("not a valid SSH public key")), (3, DUP)])
        self.assertEqual(len(self.c.keys(u)), 2)


class SingleServerModes(unittest.TestCase):
    def test_single_server_modes_do_not_offer_protocol_2(self):
        with Server(mode="ack") as srv:
            r = subprocess.run(ssh_cmd(srv.port, str(uuid.uuid4()), keygen("single")),
                               input=p2.open_stream(os.urandom(16)), capture_output=True, timeout=60,
                               env=SSH_ENV)
            self.assertEqual(r.returncode, 255)
            self.assertIn(b"subsystem request failed", r.stderr)
            self.assertEqual(r.stdout, b"")


class Cookie(unittest.TestCase):
    def test_a_cookie_readable_by_others_is_refused_and_home_is_never_used(self):
        state = tempfile.mkdtemp(prefix="game-cluster-cookie-", dir=TMP)
        with open(os.path.join(state, "cookie"), "w") as f:
            f.write("0123456789abcdef\n")
        os.chmod(os.path.join(state, "cookie"), 0o644)
        with self.assertRaises(HarnessError) as cm:
            Cluster(nodes=1, state_dir=state).launch(timeout=60)
        self.assertIn("is readable by others (mode 644); it must be 0400", str(cm.exception))
        home = tempfile.mkdtemp(prefix="home-", dir=TMP)
        old = os.environ.get("HOME")
        os.environ["HOME"] = home
        try:
            with Cluster(nodes=2) as c:
                self.assertEqual(stat.S_IMODE(os.stat(c.cookie_path).st_mode), 0o400)
        finally:
            os.environ["HOME"] = old
        self.assertEqual(os.listdir(home), [], "nothing written to $HOME (no ~/.erlang.cookie)")


class Migration(unittest.TestCase):
    def test_a_version_1_database_is_migrated_without_loss(self):
        state = tempfile.mkdtemp(prefix="game-cluster-v1-", dir=TMP)
        k1, k2 = keygen("v1a"), keygen("v1b")
        u1, u2 = str(uuid.uuid4()), str(uuid.uuid4())
        terms = os.path.join(TMP, f"v1-{uuid.uuid4().hex[:8]}.terms")
        with open(terms, "w", encoding="utf-8") as f:
            f.write(f'{{account, <<"{u1}">>, <<"{pub(k1)}">>}}.\n'
                    f'{{account, <<"{u2}">>, <<"{pub(k2)}">>}}.\n'
                    f'{{name, <<"{u1}">>, <<"Zo\\x{{eb}}"/utf8>>}}.\n'
                    f'{{score, <<"{u1}">>, 1000, 5}}.\n{{score, <<"{u1}">>, 2000, 7}}.\n'
                    f'{{score, <<"{u2}">>, 1500, 9}}.\n')
        r = subprocess.run([sys.executable, os.path.join(HERE, "..", "server", "game-cluster"),
                            "--ebin", server_ebin(), "--state", state, "--seed-v1", terms],
                           capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        self.assertEqual(r.returncode, 0, r.stderr)
        with Cluster(nodes=1, state_dir=state) as c:
            d = c.dump()
            self.assertIn({"table": "schema", "version": 2}, d)
            self.assertEqual(c.keys(u1), [(pub(k1), "registered")])
            self.assertEqual(c.keys(u2), [(pub(k2), "registered")])
            self.assertEqual(c.names(u1), [(u1, "Zoë")])
            self.assertEqual(sorted((x["uuid"], x["time"], x["value"], x["stream"], x["seq"])
                                    for x in d if x["table"] == "score"),
                             sorted([(u1, 1000, 5, None, None), (u1, 2000, 7, None, None),
                                     (u2, 1500, 9, None, None)]))
            # the migrated accounts authenticate and own their keys
            rc, msgs, err = v2(c.ports[0], u1, k1, p2.open_stream(os.urandom(16))
                               + p2.account(1, p2.add_key(p2.key_blob(pub(k2)), "x")) + submits(2, [11]))
            self.assertEqual(results(msgs), [(1, rej("key belongs to another account")), (2, ACC)], err)
            self.assertEqual(len(c.scores(u1)), 3)


class Throughput(unittest.TestCase):
    def test_100000_submits_through_one_channel_on_two_nodes(self):
        n = 100_000
        with Cluster(nodes=2) as c:
            key = keygen("bulk")
            u, s = str(uuid.uuid4()), os.urandom(16)
            data = p2.open_stream(s) + submits(1, range(n))
            t0 = time.monotonic()
            rc, msgs, err = v2(c.ports[0], u, key, data, timeout=120)
            elapsed = time.monotonic() - t0
            self.assertEqual(rc, 0, err)
            self.assertEqual(len(msgs), n + 1)
            self.assertEqual(msgs[-1], ("result", n, ACC))
            self.assertLess(elapsed, 30, f"{n} submits took {elapsed:.1f}s")
            rc, msgs, err = v2(c.ports[1], u, key, p2.open_stream(s))
            self.assertEqual((rc, msgs), (0, [("opened", n)]), err)


if __name__ == "__main__":
    unittest.main()
