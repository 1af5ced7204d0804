"""Exactly once (docs/batch.md, "What a run guarantees"), proven against real servers.

Protocol 2 against the mnesia cluster (harness.Cluster): a node killed with SIGKILL in the middle
of a 100,000-line batch at several points, the client failing over and finishing with every line
held exactly once; the server dropping the connection after applying a request but before its
result; extra and unknown-seq results (76). Protocol 1 against the single-process reference
server: the fallback from NAME-v2 recorded in the config and probed again after 7 days, an extra
response found at once (76), and a dropped connection whose printed resume command, pasted into a
shell as printed, finishes the batch with every line held once.
"""

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from gamehelpers import OK, PROTOCOL, TIMEOUT, UNAVAILABLE, endpoint, play, run_printed, uuid_of, write_lines
from harness import Cluster, Home, Server, game_bin, run_game


def results(stdout):
    """(line, result) of every --json record, and the summary."""
    objects = [json.loads(line) for line in stdout.splitlines()]
    return [(o["line"], o["result"]) for o in objects if "line" in o], objects[-1].get("summary")


class ProtocolOneServers(unittest.TestCase):
    def test_fallback_is_recorded_and_probed_again_after_seven_days(self):
        with Server(mode="ack") as server, Home() as home:
            r = play(server, home, "-v", "score", "5")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn("subsystem 'game-v2' refused: the server speaks protocol 1", r.stderr)
            config = home.read_config()
            self.assertIn("\nprotocol = 1\n", config)
            checked = re.search(r"(?m)^protocol_checked = (\S+)$", config).group(1)
            # Recorded: the next run asks for game only (one subsystem request).
            r = play(server, home, "-v", "score", "6")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertNotIn("game-v2", r.stderr)
            # Eight days later it asks again, and records when.
            home.write_config(config.replace(checked, "2000-01-01T00:00:00Z"))
            r = play(server, home, "-v", "score", "7")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn("subsystem 'game-v2' refused", r.stderr)
            self.assertNotIn("2000-01-01", home.read_config())
            self.assertEqual(server.scores(uuid_of(home)), [5, 6, 7])

    def test_a_server_recorded_as_protocol_2_that_refuses_it_holds_nothing_and_is_recorded_again(self):
        # With a recorded protocol the requests follow the subsystem request without waiting for
        # its answer (docs/protocol.md), so here the refusal arrives after they were written.
        with Server(mode="ack") as server, Home() as home:
            r = play(server, home, "score", "5")
            self.assertEqual(r.returncode, OK, r.stderr)
            home.write_config(home.read_config().replace("\nprotocol = 1\n", "\nprotocol = 2\n"))
            path = write_lines(home, "lines.txt", ["score 6", "score 7"])
            r = play(server, home, "--timeout", "20", "batch", "--json", path)
            self.assertEqual(r.returncode, PROTOCOL, r.stderr)
            self.assertIn(f"server {endpoint(server)} refused the subsystem 'game-v2': it no longer speaks "
                          "protocol 2 (recorded protocol 1", r.stderr)
            # Lines written before the refusal arrived are not delivered; on loopback it can also
            # arrive before the first write, and then no line was read at all.
            lines, summary = results(r.stdout)
            self.assertEqual({result for _, result in lines} - {"not_delivered"}, set())
            self.assertEqual((summary["accepted"], summary["delivered"], summary["duplicate"]), (0, 0, 0))
            self.assertIn("\nprotocol = 1\n", home.read_config())
            self.assertEqual(server.scores(uuid_of(home)), [5])
            # The record is right again: the next run is served.
            r = play(server, home, "score", "8")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(server.scores(uuid_of(home)), [5, 8])

    def test_an_extra_response_is_a_protocol_error_at_once_and_claims_nothing(self):
        with Server(mode="extra") as server, Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            path = write_lines(home, "lines.txt", [f"score {i}" for i in range(1, 21)])
            start = time.monotonic()
            r = play(server, home, "--timeout", "20", "batch", "--json", path, timeout=60)
            elapsed = time.monotonic() - start
            self.assertEqual(r.returncode, PROTOCOL, r.stderr)
            self.assertIn("more responses than requests", r.stderr)
            self.assertLess(elapsed, 10, "found at once, not after the 20 s --timeout")
            lines, summary = results(r.stdout)
            self.assertEqual([result for _, result in lines if result == "accepted"], [])
            self.assertEqual(summary["accepted"], 0)

    def test_drop_keeps_the_answers_received_and_the_printed_resume_command_finishes_the_batch(self):
        with Server(mode="drop:50") as server, Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            write_lines(home, "my lines.txt", [f"score {i}" for i in range(1, 121)])
            # The file named relative to the directory the batch starts in.
            r = run_printed(f"cd {shlex.quote(home.path)} && game --server {endpoint(server)} batch 'my lines.txt'",
                            home)
            for _ in range(5):
                if r.returncode == OK:
                    break
                self.assertEqual(r.returncode, UNAVAILABLE, r.stderr)
                command = re.search(r"resume with: (.*)$", r.stderr.strip()).group(1)
                self.assertIn("--server " + endpoint(server), command)
                # Pasted as printed, from another directory (/), with nothing but HOME and PATH.
                r = run_printed(command, home)
            self.assertEqual(r.returncode, OK, r.stderr)
            # drop:50 answers 50 requests per connection: every resume started exactly after them.
            self.assertEqual(server.scores(uuid_of(home)), list(range(1, 121)))


def cluster_home(home, cluster, name="arena"):
    home.write_config(home.read_config() + "\n" + cluster.config_table(name))
    r = run_game(["--server", name, "whoami"], home)
    assert r.returncode == OK, r.stderr


def move_server(home, cluster, name="arena"):
    """Points [servers.NAME] at the cluster's addresses (a restarted cluster listens elsewhere)."""
    addresses = ", ".join(f'"{a}"' for a in cluster.addresses)
    home.write_config(re.sub(r"(?m)^addresses = \[.*\]$", f"addresses = [{addresses}]", home.read_config()))


def values(cluster, home):
    return [value for _, value, _, _ in cluster.scores(uuid_of(home))]


class Watched:
    """A client run whose stdout records and -v stderr are read as they come: `records` (lines of
    stdout), `nodes` (the node of each connection, from -v), `reconnections`, `ended`."""

    def __init__(self, argv, home, node_of):
        self.proc = subprocess.Popen(argv, env={"HOME": home.path, "PATH": os.environ["PATH"]},
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.node_of = node_of
        self.records, self.err, self.nodes = [], [], []
        self.reconnections = 0
        self.ended = False
        self._open = 2
        self._changed = threading.Condition()
        self._threads = [threading.Thread(target=self._read, args=(s, f), daemon=True)
                         for s, f in ((self.proc.stdout, self._record), (self.proc.stderr, self._trace))]
        for thread in self._threads:
            thread.start()

    def _record(self, line):
        self.records.append(line)

    def _trace(self, line):
        self.err.append(line)
        found = re.search(r"(?:connected|reconnected) to (127\.0\.0\.1:\d+)", line)
        if found:
            self.nodes.append(self.node_of[found.group(1)])
        if "reconnected to " in line:
            self.reconnections += 1

    def _read(self, stream, handle):
        for line in stream:
            with self._changed:
                handle(line)
                self._changed.notify_all()
        with self._changed:
            self._open -= 1
            self.ended = self._open == 0
            self._changed.notify_all()

    def wait_for(self, predicate, what, timeout=120):
        """Waits until predicate(self) holds or the client has ended; the number of records then."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self) or self.ended, timeout):
                raise AssertionError(f"no {what} within {timeout} s:\n{''.join(self.err[-30:])}")
            return len(self.records)

    def wait(self, timeout=600):
        return self.proc.wait(timeout=timeout)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for thread in self._threads:
            thread.join(timeout=60)
        self.proc.stdout.close()
        self.proc.stderr.close()


class ProtocolTwoCluster(unittest.TestCase):
    def setUp(self):
        self.home = Home()
        self.addCleanup(self.home.cleanup)
        self.assertEqual(run_game(["init"], self.home).returncode, OK)

    def test_nodes_killed_mid_batch_the_client_fails_over_and_every_line_is_held_once(self):
        n = 100_000
        with Cluster(nodes=4) as cluster:
            cluster_home(self.home, cluster)
            path = write_lines(self.home, "big.txt", [f"score {i}" for i in range(1, n + 1)])
            client = Watched([game_bin(), "--server", "arena", "-v", "batch", "--json", path], self.home,
                             {f"127.0.0.1:{port}": i for i, port in enumerate(cluster.ports)})
            kills = []
            try:
                # Three times: once the client's results show it working on a node (2,000 more
                # results since it connected there), SIGKILL that node; the client fails over to
                # one of the others. Each step waits for what the client reports, never for time.
                # (A node restarted meanwhile would hold the launcher for seconds, in which the
                # client finishes the batch: four nodes, so that one is left after three kills.)
                for _ in range(3):
                    base = client.wait_for(lambda c: c.reconnections >= len(kills) and c.nodes, "a connection")
                    client.wait_for(lambda c: len(c.records) >= base + 2_000, "2,000 results on the node")
                    if client.ended:
                        break
                    node = client.nodes[-1]
                    cluster.kill(node)
                    kills.append(node)
                rc = client.wait()
            finally:
                client.close()
            err = "".join(client.err)
            self.assertEqual(rc, OK, err[-3000:])
            self.assertEqual(len(kills), 3, "the batch ended before every kill")
            self.assertGreaterEqual(client.reconnections, 3, err[-3000:])
            held = values(cluster, self.home)
            self.assertEqual(len(held), n)
            self.assertEqual(held, list(range(1, n + 1)))  # once each, in order
            summary = json.loads(client.records[-1])["summary"]
            self.assertEqual((summary["sent"], summary["rejected"]), (n, 0))
            self.assertEqual(summary["accepted"] + summary["duplicate"], n)

    def test_drop_before_result_the_applied_line_comes_back_as_duplicate(self):
        with Cluster(nodes=1, fault="drop_before_result:3") as cluster:
            cluster_home(self.home, cluster)
            path = write_lines(self.home, "lines.txt", ["score 10", "score 20", "score 30", "score 40"])
            r = run_game(["--server", "arena", "-v", "batch", "--json", path], self.home, timeout=120)
            self.assertEqual(r.returncode, OK, r.stderr)
            lines, summary = results(r.stdout)
            self.assertEqual(sorted(line for line, _ in lines), [1, 2, 3, 4], r.stdout)  # one record each
            outcome = dict(lines)
            self.assertEqual(outcome[3], "duplicate", r.stdout)  # applied, its result cut: found applied
            self.assertEqual(outcome[4], "accepted", r.stdout)
            # The fault kills the connection right behind the results of lines 1 and 2: they may
            # not reach the client, and then come back as duplicate on the new channel too.
            self.assertTrue({outcome[1], outcome[2]} <= {"accepted", "duplicate"}, r.stdout)
            self.assertEqual(summary["duplicate"], list(outcome.values()).count("duplicate"))
            self.assertIn("reconnected to ", r.stderr)
            self.assertEqual(values(cluster, self.home), [10, 20, 30, 40])
            self.assertIn("\nprotocol = 2\n", self.home.read_config())

    def test_extra_and_unknown_seq_results_are_protocol_errors(self):
        for fault, message in (("extra_result", "one result too many"), ("unknown_seq", "never sent")):
            with self.subTest(fault=fault), Cluster(nodes=1, fault=fault) as cluster:
                cluster_home(self.home, cluster, "arena_" + fault)
                r = run_game(["--server", "arena_" + fault, "score", "5"], self.home, timeout=60)
                self.assertEqual(r.returncode, PROTOCOL, r.stderr)
                self.assertIn(message, r.stderr)



class NoResultEver(unittest.TestCase):
    """A server that accepts every reconnection and drops each connection before its first result
    (fault drop_before_result:1): every command that goes through the session pump (a one-shot
    command, a batch, an account request) ends within 3 x --timeout of the first loss with exit 75,
    claims nothing, and what it prints to finish the job works once the server is healthy."""

    TIMEOUT = 1  # seconds: the reconnection window is 3 s

    def game(self, home, *args):
        start = time.monotonic()
        r = run_game(["--server", "arena", "--timeout", str(self.TIMEOUT), *args], home, timeout=120)
        return r, time.monotonic() - start

    def assert_bounded(self, r, elapsed):
        self.assertEqual(r.returncode, TIMEOUT, r.stderr)
        self.assertIn("no result within 3 s of the first loss, across ", r.stderr)
        # the window, plus the connection under way and the first one (each within --timeout)
        self.assertLess(elapsed, 3 * self.TIMEOUT + 4, r.stderr)

    def test_score_batch_and_key_rotate_end_within_the_bound_and_finish_once_healthy(self):
        state = tempfile.mkdtemp(prefix="game-noresult-")
        self.addCleanup(shutil.rmtree, state, ignore_errors=True)
        with Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            path = write_lines(home, "three.txt", ["score 1", "score 2", "score 3"])
            with Cluster(nodes=1, fault="drop_before_result:1", state_dir=state) as cluster:
                cluster_home(home, cluster)
                uuid = uuid_of(home)
                r, elapsed = self.game(home, "score", "100")
                self.assert_bounded(r, elapsed)
                self.assertIn("(it may or may not have been recorded)", r.stderr)
                self.assertEqual(values(cluster, home), [100])  # applied once, however often resent

                r, elapsed = self.game(home, "batch", "--json", path)
                self.assert_bounded(r, elapsed)
                records = [json.loads(line) for line in r.stdout.splitlines()]
                self.assertEqual([(o["line"], o["result"]) for o in records[:-1]],
                                 [(1, "not_delivered"), (2, "not_delivered"), (3, "not_delivered")])
                summary = records[-1]["summary"]
                self.assertEqual((summary["sent"], summary["accepted"], summary["not_delivered"]), (3, 0, 3))
                resume = re.search(r"resume with: (.*)$", r.stderr.strip()).group(1)
                self.assertEqual(summary["resume"], resume)
                # the channel is cut at its first request: line 1 is held, 2 and 3 never were
                self.assertEqual(values(cluster, home), [100, 1])

                keys_before = cluster.keys(uuid)
                r, elapsed = self.game(home, "key", "rotate")
                self.assert_bounded(r, elapsed)
                self.assertIn("may or may not be on the account", r.stderr)
                finish = re.search(r"finish with: (.*)$", r.stderr.strip()).group(1)
                # names the config and the server, so no environment or default can redirect it
                self.assertRegex(finish, r"^game --config '?/\S+ --server \S+ key rotate$")
                self.assertEqual(len(cluster.keys(uuid)), len(keys_before) + 1)  # the new key, added once

            with Cluster(nodes=1, state_dir=state) as healthy:
                move_server(home, healthy)
                r = run_printed(resume, home)
                self.assertEqual(r.returncode, OK, r.stderr)
                self.assertIn("already applied", r.stdout)  # line 1, found applied on the resumed stream
                self.assertEqual(values(healthy, home), [100, 1, 2, 3])
                self.assertEqual(os.listdir(os.path.join(home.path, ".game", "pending")), [])
                r = run_printed(finish, home)
                self.assertEqual(r.returncode, OK, r.stderr)
                self.assertEqual(len(healthy.keys(uuid)), len(keys_before))  # the old key is off


if __name__ == "__main__":
    unittest.main()
