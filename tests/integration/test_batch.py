"""Issue: scripted batch submissions that lose nothing."""

import json
import os
import subprocess
import threading
import time
import unittest

from gamehelpers import DATAERR, NOINPUT, OK, REJECTED, endpoint, play, uuid_of, write_lines
from harness import Home, Server, game_bin, run_game, wait_until


def wait_closed(server, uuid, connections=1):
    """The server logs `closed` after it processed everything of a channel."""
    server.wait_for_event("closed", count=connections, uuid=uuid, timeout=60)


class LargeBatches(unittest.TestCase):
    def test_100k_scores_in_order_over_one_connection(self):
        for mode in ("ack", "seed"):
            with self.subTest(mode=mode), Server(mode=mode) as server, Home() as home:
                path = write_lines(home, "scores.txt", [f"score {i}" for i in range(1, 100001)])
                # OTP 25 takes seconds to work through 100,000 one-request messages on a loaded
                # machine; the client waits for its channel close to claim delivery.
                r = play(server, home, "--timeout", "120", "batch", path, timeout=300)
                self.assertEqual(r.returncode, OK, r.stderr)
                uuid = uuid_of(home)
                wait_closed(server, uuid)
                self.assertEqual(server.scores(uuid), list(range(1, 100001)))
                self.assertEqual(len(server.connections(uuid)), 1)
                self.assertEqual(server.malformed(), [])
                if mode == "ack":
                    self.assertEqual(r.stdout.strip(), "100000 sent, 100000 accepted, 0 rejected")
                else:
                    self.assertIn("100000 delivered without acknowledgement", r.stdout)

    def test_piped_standard_input_without_follow(self):
        with Server(mode="ack") as server, Home() as home:
            lines = "".join(f"score {i}\n" for i in range(1000)) + "setname Zoë the  Great\n"
            r = play(server, home, "batch", input=lines)
            self.assertEqual(r.returncode, OK, r.stderr)
            uuid = uuid_of(home)
            self.assertEqual(server.scores(uuid), list(range(1000)))
            self.assertEqual(server.names(uuid), ["Zoë the  Great"])


class BadInput(unittest.TestCase):
    def test_bad_lines_are_all_reported_and_nothing_is_sent(self):
        with Server(mode="ack") as server, Home() as home:
            lines = ["score 1", "# a comment", "", "score 12abc", "setname ok", "scroe 5",
                     "score 99999999999999999999", "setname \"open", "score 2"]
            path = write_lines(home, "bad.txt", lines)
            r = play(server, home, "batch", path)
            self.assertEqual(r.returncode, DATAERR, r.stderr)
            for number, what in [(4, "not a whole number"), (6, "unknown command 'scroe'"),
                                 (7, "out of range"), (8, "unterminated")]:
                self.assertIn(f"{path}:{number}: ", r.stderr)
                self.assertRegex(r.stderr, rf"{path}:{number}: .*{what}")
            self.assertEqual(r.stderr.count(f"{path}:"), 4 + 1, r.stderr)  # 4 lines + the summary
            self.assertIn("nothing was sent", r.stderr)
            self.assertEqual(server.connections(), [])
            self.assertEqual(server.scores(), [])

    def test_a_bad_last_line_of_a_large_file_sends_nothing(self):
        # Far larger than the reader's blocks; a line over the limit in the middle, and the last
        # line (without a newline) bad: both found before anything is sent, at their lines.
        n = 300_000
        lines = [f"score {i}" for i in range(1, n)]
        lines[149_999] = "x" * 70_000
        with Server(mode="ack") as server, Home() as home:
            path = os.path.join(home.path, "big.txt")
            with open(path, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines) + "score 1x")
            r = play(server, home, "batch", path, timeout=120)
            self.assertEqual(r.returncode, DATAERR, r.stderr)
            self.assertIn(f"{path}:150000: line longer than 65536 bytes", r.stderr)
            self.assertIn(f"{path}:{n}: score '1x' is not a whole number", r.stderr)
            self.assertIn("2 invalid lines; nothing was sent", r.stderr)
            self.assertEqual(server.connections(), [])
            self.assertEqual(server.scores(), [])

    def test_missing_file(self):
        with Home() as home:
            r = run_game(["--server", "127.0.0.1:1", "batch", os.path.join(home.path, "nope.txt")], home)
            self.assertEqual(r.returncode, NOINPUT, r.stderr)
            self.assertIn("nope.txt", r.stderr)


class Rejections(unittest.TestCase):
    def test_rejected_lines_do_not_stop_the_others_and_json_says_which(self):
        with Server(mode="ack") as server, Home() as home:
            lines = ["score 1", "score -5", "setname " + "x" * 33, "setname fine", "score 3"]
            path = write_lines(home, "mixed.txt", lines)
            r = play(server, home, "batch", "--json", path)
            self.assertEqual(r.returncode, REJECTED, r.stderr)
            objects = [json.loads(line) for line in r.stdout.splitlines()]
            results = {o["line"]: o for o in objects if "line" in o}
            self.assertEqual([results[n]["result"] for n in range(1, 6)],
                             ["accepted", "rejected", "rejected", "accepted", "accepted"])
            self.assertEqual(results[2]["reason"], "negative score")
            self.assertEqual(results[3]["reason"], "name longer than 32 characters")
            summary = objects[-1]["summary"]
            self.assertEqual((summary["sent"], summary["accepted"], summary["rejected"]), (5, 3, 2))
            uuid = uuid_of(home)
            self.assertEqual(server.scores(uuid), [1, 3])
            self.assertEqual(server.names(uuid), ["fine"])

            r = play(server, home, "batch", path)
            self.assertEqual(r.returncode, REJECTED)
            self.assertIn(f"{path}:2: rejected by the server: negative score", r.stderr)
            self.assertEqual(r.stdout, f"5 sent, 3 accepted, 2 rejected (the first at {path}:2)\n")


class ConnectionLoss(unittest.TestCase):
    def test_server_killed_mid_batch_then_resume_completes_exactly_once(self):
        total = 200000
        with Home() as home:
            server = Server(mode="pause:50000")
            server.start()
            state, port = server.state_dir, server.port
            path = write_lines(home, "big.txt", [f"score {i}" for i in range(1, total + 1)])
            client = subprocess.Popen(
                [game_bin(), "--server", endpoint(server), "--timeout", "20", "batch", path],
                env={"HOME": home.path, "PATH": os.environ["PATH"]}, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                server.wait_for_event("addScore", count=50000, timeout=60)
                time.sleep(0.5)
                server.kill()  # SIGKILL: no SSH disconnect, no channel close
                out, err = client.communicate(timeout=30)
            finally:
                if client.poll() is None:
                    client.kill()
            self.assertNotEqual(client.returncode, OK, err)
            self.assertIn("first unacknowledged line: " + path + ":50001", err)
            self.assertIn(" batch --resume " + path, err)

            with Server(mode="ack", state_dir=state, port=port) as again:
                r = play(again, home, "batch", "--from-line", "50001", path, timeout=300)
                self.assertEqual(r.returncode, OK, r.stderr)
                wait_closed(again, uuid_of(home), connections=1)  # the killed one never closed
                self.assertEqual(again.scores(uuid_of(home)), list(range(1, total + 1)))

    def test_abrupt_drop_names_acknowledged_and_unacknowledged_lines(self):
        with Server(mode="drop:300") as server, Home() as home:
            path = write_lines(home, "lines.txt", [f"score {i}" for i in range(1, 1001)])
            started = time.monotonic()
            r = play(server, home, "--timeout", "10", "batch", "--json", path)
            self.assertLess(time.monotonic() - started, 15)
            self.assertNotEqual(r.returncode, OK)
            objects = [json.loads(line) for line in r.stdout.splitlines()]
            accepted = [o["line"] for o in objects if o.get("result") == "accepted"]
            self.assertEqual(accepted, list(range(1, 301)))
            summary = objects[-1]["summary"]
            self.assertEqual(summary["first_unacknowledged_line"], 301)
            self.assertIn("first unacknowledged line: " + path + ":301", r.stderr)
            self.assertEqual(server.scores(uuid_of(home)), list(range(1, 301)))


class Follow(unittest.TestCase):
    def test_slowly_piped_lines_are_sent_as_they_arrive_over_one_session(self):
        with Server(mode="ack") as server, Home() as home:
            r = play(server, home, "init")  # the identity first, so that timing is the pipe's
            self.assertEqual(r.returncode, OK, r.stderr)
            uuid = uuid_of(home)
            client = subprocess.Popen(
                [game_bin(), "--server", endpoint(server), "batch", "--follow"],
                env={"HOME": home.path, "PATH": os.environ["PATH"]}, stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                for i in range(1, 11):
                    client.stdin.write(f"score {i}\n")
                    client.stdin.flush()
                    # Each line reaches the server while the pipe stays open.
                    wait_until(lambda: len(server.scores(uuid)) == i, timeout=5,
                               message=f"score {i} to arrive before the next line is written")
                    time.sleep(0.1)
                out, err = client.communicate(input="scroe 11\nscore 12\n", timeout=30)
            finally:
                if client.poll() is None:
                    client.kill()
            self.assertEqual(client.returncode, DATAERR, err)
            self.assertIn("stdin:11: unknown command 'scroe'", err)
            self.assertEqual(server.scores(uuid), list(range(1, 11)) + [12])
            self.assertEqual(len(server.connections(uuid)), 1)
            self.assertIn("11 sent, 11 accepted, 0 rejected, 1 invalid lines skipped", out)


if __name__ == "__main__":
    unittest.main()
