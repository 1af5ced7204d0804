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
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from gamehelpers import OK, PROTOCOL, UNAVAILABLE, endpoint, play, uuid_of
from harness import Home, Server, game_bin, run_game

try:
    from harness import Cluster
except ImportError:  # until harness.Cluster lands
    Cluster = None

NEEDS_CLUSTER = unittest.skipIf(Cluster is None, "harness.Cluster is not in this tree yet")


def write_lines(home, name, lines):
    path = os.path.join(home.path, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


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
        with Server(mode="drop:50") as server, Home() as home, tempfile.TemporaryDirectory() as bin_dir:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            os.symlink(os.path.abspath(game_bin()), os.path.join(bin_dir, "game"))
            path = write_lines(home, "my lines.txt", [f"score {i}" for i in range(1, 121)])
            r = play(server, home, "batch", path)
            for _ in range(5):
                if r.returncode == OK:
                    break
                self.assertEqual(r.returncode, UNAVAILABLE, r.stderr)
                command = re.search(r"resume with: (.*)$", r.stderr.strip()).group(1)
                self.assertIn("--server " + endpoint(server), command)
                # Pasted as printed, from another directory, with nothing but HOME and PATH.
                r = subprocess.run(["sh", "-c", command], cwd="/", capture_output=True, text=True, timeout=60,
                                   env={"HOME": home.path, "PATH": bin_dir + ":" + os.environ["PATH"]})
            self.assertEqual(r.returncode, OK, r.stderr)
            # drop:50 answers 50 requests per connection: every resume started exactly after them.
            self.assertEqual(server.scores(uuid_of(home)), list(range(1, 121)))


def cluster_home(home, cluster, name="arena"):
    home.write_config(home.read_config() + "\n" + cluster.config_table(name))
    r = run_game(["--server", name, "whoami"], home)
    assert r.returncode == OK, r.stderr


def values(cluster, home):
    return [value for _, value, _, _ in cluster.scores(uuid_of(home))]


@NEEDS_CLUSTER
class ProtocolTwoCluster(unittest.TestCase):
    def setUp(self):
        self.home = Home()
        self.addCleanup(self.home.cleanup)
        self.assertEqual(run_game(["init"], self.home).returncode, OK)

    def test_nodes_killed_mid_batch_the_client_fails_over_and_every_line_is_held_once(self):
        n = 100_000
        with Cluster(nodes=3) as cluster:
            cluster_home(self.home, cluster)
            path = write_lines(self.home, "big.txt", [f"score {i}" for i in range(1, n + 1)])
            client = subprocess.Popen([game_bin(), "--server", "arena", "-v", "batch", path],
                                      env={"HOME": self.home.path, "PATH": os.environ["PATH"]},
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            node_of = {f"127.0.0.1:{port}": i for i, port in enumerate(cluster.ports)}
            current = []  # the node the client is connected to, from its -v lines
            reconnections = []
            err_lines = []

            def read_stderr():
                for line in client.stderr:
                    err_lines.append(line)
                    found = re.search(r"(?:connected|reconnected) to (127\.0\.0\.1:\d+)", line)
                    if found:
                        current.append(node_of[found.group(1)])
                    if "reconnected to " in line:
                        reconnections.append(line)

            reader = threading.Thread(target=read_stderr, daemon=True)
            reader.start()
            kills = []
            restarts = []
            # Three times: once the client has been sending to a node for a moment, SIGKILL that
            # node; restart it shortly after, so that the cluster keeps a majority.
            for _ in range(3):
                deadline = time.monotonic() + 60
                # Connected (at first) or reconnected after the previous kill.
                while client.poll() is None and (not current or len(reconnections) < len(kills)) and \
                        time.monotonic() < deadline:
                    time.sleep(0.01)
                time.sleep(0.25)
                if client.poll() is not None:
                    break
                node = current[-1]
                cluster.kill(node)
                kills.append(node)
                restarts.append(threading.Timer(0.5, cluster.start, args=(node,)))
                restarts[-1].start()
            for restart in restarts:
                restart.join(timeout=180)
            try:
                out = client.stdout.read()
                client.wait(timeout=600)
            finally:
                if client.poll() is None:
                    client.kill()
            reader.join(timeout=60)
            client.stdout.close()
            client.stderr.close()
            err = "".join(err_lines)
            self.assertEqual(client.returncode, OK, err[-3000:])
            self.assertEqual(len(kills), 3, "the batch ended before every kill")
            self.assertGreaterEqual(err.count("reconnected to "), 3, err[-3000:])
            held = values(cluster, self.home)
            self.assertEqual(len(held), n)
            self.assertEqual(held, list(range(1, n + 1)))  # once each, in order
            self.assertRegex(out, rf"^{n} sent, \d+ accepted, 0 rejected")

    def test_drop_before_result_the_applied_line_comes_back_as_duplicate(self):
        with Cluster(nodes=1, fault="drop_before_result:3") as cluster:
            cluster_home(self.home, cluster)
            path = write_lines(self.home, "lines.txt", ["score 10", "score 20", "score 30", "score 40"])
            r = run_game(["--server", "arena", "-v", "batch", "--json", path], self.home, timeout=120)
            self.assertEqual(r.returncode, OK, r.stderr)
            lines, summary = results(r.stdout)
            self.assertEqual(dict(lines)[3], "duplicate", r.stdout)
            self.assertEqual(summary["duplicate"], 1)
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


if __name__ == "__main__":
    unittest.main()
