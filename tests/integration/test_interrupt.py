"""Issue 10, interruptions: signals, a closed stdout, and printed resume commands that work.

Each test runs the real client against a real reference server, interrupts it the way a user or
a system would (SIGINT/SIGTERM/SIGHUP, `| head -1`, a full disk), and checks what the user
would: the exit code, the summary, the message, what the server holds, and that a printed
resume command pasted through `sh -c` finishes the job.
"""

import json
import os
import re
import select
import signal
import subprocess
import time
import tomllib
import unittest

from gamehelpers import DATAERR, IOERR, OK, endpoint, uuid_of
from harness import Cluster, Home, Server, game_bin, run_game, wait_until

STOP_WAIT = 2.0  # docs/batch.md: how long outstanding results get after a stop signal
SLACK = 3.0      # start-up and teardown on a loaded 2-core machine
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def client_env(home):
    # The binary under test first on PATH, as `game`, for the printed commands pasted through sh.
    path = os.path.dirname(os.path.abspath(game_bin())) + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")
    return {"PATH": path, "HOME": home.path, "LANG": "C.UTF-8"}


def start_client(home, args, stdin=subprocess.DEVNULL, cwd=None):
    return subprocess.Popen([os.path.abspath(game_bin()), *map(str, args)], env=client_env(home), stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=cwd)


def finish(client, timeout=30):
    try:
        out, err = client.communicate(timeout=timeout)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    return out, err


def read_line(stream, timeout=10):
    """One line read straight from the pipe (no read-ahead that communicate() would miss)."""
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            raise AssertionError(f"no complete line within {timeout} s: {data!r}")
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            raise AssertionError(f"end of output before a complete line: {data!r}")
        data += chunk
    return data.decode()


def resume_command(stderr):
    match = re.search(r"resume with: (.*)$", stderr, re.MULTILINE)
    return match.group(1) if match else None


def paste(command, home, cwd=None):
    """Runs a printed command exactly as printed, the way a user pasting it into a shell would."""
    return subprocess.run(["sh", "-c", command], env=client_env(home), cwd=cwd, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)


class StopSignals(unittest.TestCase):
    """A `pause:50` server acknowledges 50 requests, then stops reading: the client is mid-batch."""

    def interrupt(self, signo, json_output=False):
        with Server(mode="pause:50") as server, Home() as home:
            path = write_lines(os.path.join(home.path, "scores.txt"), [f"score {i}" for i in range(1, 301)])
            args = ["--server", endpoint(server), "--timeout", "30", "batch", path]
            if json_output:
                args.insert(-1, "--json")
            client = start_client(home, args)
            server.wait_for_event("addScore", count=50, timeout=30)
            time.sleep(0.3)  # the 50 acknowledgements reach the client
            sent_at = time.monotonic()
            client.send_signal(signo)
            out, err = finish(client)
            elapsed = time.monotonic() - sent_at
            self.assertEqual(client.returncode, EXIT[signo], err)
            # It waited for the results in flight, but only briefly (not the 30 s --timeout).
            self.assertLess(elapsed, STOP_WAIT + SLACK, err)
            self.assertEqual(server.scores(uuid_of(home)), list(range(1, 51)))
            return out, err

    def test_sigint_mid_batch_prints_summary_and_resume_command_and_exits_130(self):
        out, err = self.interrupt(signal.SIGINT)
        self.assertRegex(out, r"^\d+ sent, 50 accepted, 0 rejected, \d+ not acknowledged \(from \S+:51 on\)\n$")
        self.assertIn("interrupted (SIGINT)", err)
        self.assertIn("first unacknowledged line: ", err)
        self.assertIn(":51; resume with: game --config ", err)
        self.assertIn(" batch --resume ", err)

    def test_sigterm_and_sighup_exit_143_and_129_with_a_summary(self):
        for signo, word in ((signal.SIGTERM, "terminated (SIGTERM)"), (signal.SIGHUP, "hung up (SIGHUP)")):
            with self.subTest(signal=signo.name):
                out, err = self.interrupt(signo)
                self.assertIn("50 accepted", out)
                self.assertIn(word, err)
                self.assertIn("first unacknowledged line: ", err)
                self.assertIn(":51; resume with: ", err)

    def test_json_output_stays_whole_after_a_signal(self):
        out, err = self.interrupt(signal.SIGINT, json_output=True)
        self.assertTrue(out.endswith("\n"), out[-200:])
        records = [json.loads(line) for line in out.splitlines()]  # every line a whole record
        accepted = [r["line"] for r in records if r.get("result") == "accepted"]
        self.assertEqual(accepted, list(range(1, 51)))
        self.assertIn({"line": 51, "result": "not_delivered"}, records)
        summary = records[-1]["summary"]
        self.assertEqual(summary["accepted"], 50)
        self.assertEqual(summary["first_unacknowledged_line"], 51)
        self.assertIn("interrupted (SIGINT)", summary["error"])
        self.assertIn(" batch --resume ", summary["resume"])

    def test_second_sigint_ends_the_wait_at_once(self):
        with Server(mode="pause:5") as server, Home() as home:
            path = write_lines(os.path.join(home.path, "s.txt"), [f"score {i}" for i in range(1, 101)])
            client = start_client(home, ["--server", endpoint(server), "--timeout", "30", "batch", path])
            server.wait_for_event("addScore", count=5, timeout=30)
            time.sleep(0.3)
            client.send_signal(signal.SIGINT)
            time.sleep(0.2)
            sent_at = time.monotonic()
            client.send_signal(signal.SIGINT)
            out, err = finish(client)
            self.assertLess(time.monotonic() - sent_at, 1.5, err)
            self.assertEqual(client.returncode, 130, err)
            self.assertIn("5 accepted", out)
            self.assertIn(":6; resume with: ", err)

    def test_sigint_during_follow_stops_reading_and_summarises(self):
        # Protocol 2: a result names its seq, so each one is reported the moment it arrives (protocol 1
        # answers carry no identity and are reported when the channel has ended, docs/batch.md).
        with Cluster(nodes=1) as cluster, Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            uuid = uuid_of(home)
            scores = lambda: [value for _, value, _, _ in cluster.scores(uuid)]
            client = start_client(home, ["--server", cluster.addresses[0], "--host-key", cluster.host_key,
                                         "batch", "--follow", "--json"], stdin=subprocess.PIPE)
            try:
                for i in range(1, 4):
                    client.stdin.write(f"score {i}\n")
                    client.stdin.flush()
                # Each result is printed (and flushed) as soon as it is known.
                first = read_line(client.stdout)
                self.assertEqual(json.loads(first), {"line": 1, "result": "accepted"})
                wait_until(lambda: len(scores()) == 3, timeout=10)
                client.send_signal(signal.SIGINT)
                time.sleep(0.5)
                client.stdin.write("score 4\n")  # after the signal: never sent
                client.stdin.flush()
            except BrokenPipeError:
                pass
            out, err = finish(client)
            self.assertEqual(client.returncode, 130, err)
            records = [json.loads(line) for line in (first + out).splitlines()]
            self.assertEqual([r.get("result") for r in records[:3]], ["accepted"] * 3)
            self.assertEqual(records[-1]["summary"]["accepted"], 3)
            self.assertEqual(scores(), [1, 2, 3])

    def test_sigint_during_a_one_shot_command(self):
        # pause:0 never answers; acks = "yes" says it should, so the score stays in flight.
        with Server(mode="pause:0") as server, Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            with open(home.config_path, "a", encoding="utf-8") as f:
                f.write(f'\n[servers.paused]\naddresses = ["127.0.0.1"]\nport = {server.port}\nacks = "yes"\n')
            client = start_client(home, ["--server", "paused", "--timeout", "30", "score", "7"])
            server.wait_for_event("connect", count=1, timeout=30)
            time.sleep(0.3)
            sent_at = time.monotonic()
            client.send_signal(signal.SIGINT)
            out, err = finish(client)
            self.assertLess(time.monotonic() - sent_at, STOP_WAIT + SLACK, err)
            self.assertEqual(client.returncode, 130, err)
            self.assertIn("interrupted (SIGINT); 1 request not acknowledged (it may or may not have been "
                          "recorded)", err)
            self.assertEqual(out, "")


class ClosedOutput(unittest.TestCase):
    def test_json_into_head_1_reports_the_closed_pipe_and_exits_74(self):
        with Server(mode="ack") as server, Home() as home:
            path = write_lines(os.path.join(home.path, "s.txt"), [f"score {i}" for i in range(1, 20001)])
            command = f"'{game_bin()}' --server {endpoint(server)} batch --json '{path}' | head -1; " \
                      "echo \"status ${PIPESTATUS:-}\" >&2"
            r = subprocess.run(["bash", "-c", "set -o pipefail; " + command.replace("; echo", "; rc=$?; echo")
                                .replace("${PIPESTATUS:-}", "$rc")],
                               env=client_env(home), capture_output=True, text=True, timeout=120)
            self.assertEqual(json.loads(r.stdout), {"line": 1, "result": "accepted"})
            self.assertIn("game: cannot write standard output: Broken pipe", r.stderr)
            self.assertIn(f"status {IOERR}", r.stderr)
            # The summary still reaches the user, on stderr.
            self.assertRegex(r.stderr, r"\d+ sent, \d+ accepted, 0 rejected")

    def test_full_disk_under_stdout_is_an_error(self):
        with Server(mode="ack") as server, Home() as home:
            mount = os.path.join(home.path, "full")
            os.mkdir(mount)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount], check=True)
            try:
                path = write_lines(os.path.join(home.path, "s.txt"), [f"score {i}" for i in range(1, 5001)])
                with open(os.path.join(mount, "out.json"), "w") as out:
                    r = subprocess.run([game_bin(), "--server", endpoint(server), "batch", "--json", path],
                                       env=client_env(home), stdout=out, stderr=subprocess.PIPE, text=True,
                                       timeout=120)
                self.assertEqual(r.returncode, IOERR, r.stderr)
                self.assertIn("cannot write standard output: No space left on device", r.stderr)
                with open(os.path.join(mount, "out.json")) as f:
                    lines = f.read().splitlines(keepends=True)
                # What did reach the file are whole records.
                self.assertTrue(lines)
                for line in lines[:-1]:
                    json.loads(line)
            finally:
                subprocess.run(["umount", mount], check=True)


class JsonRecords(unittest.TestCase):
    def test_invalid_lines_get_records_and_a_summary_and_nothing_is_sent(self):
        with Server(mode="ack") as server, Home() as home:
            path = write_lines(os.path.join(home.path, "s.txt"), ["score 1", "scroe 2", "", "score x"])
            r = run_game(["--server", endpoint(server), "batch", "--json", path], home)
            self.assertEqual(r.returncode, DATAERR, r.stderr)
            records = [json.loads(line) for line in r.stdout.splitlines()]
            self.assertEqual([(x.get("line"), x.get("result")) for x in records[:-1]],
                             [(2, "invalid"), (4, "invalid")])
            self.assertIn("unknown command 'scroe'", records[0]["reason"])
            summary = records[-1]["summary"]
            self.assertEqual((summary["sent"], summary["invalid"]), (0, 2))
            self.assertIn("nothing was sent", summary["error"])
            self.assertIn(f"{path}:2: unknown command 'scroe'", r.stderr)
            self.assertEqual(server.scores(), [])


class ResumeCommand(unittest.TestCase):
    def test_pasted_resume_command_reaches_the_same_non_default_server_and_config(self):
        with Server(mode="pause:20") as paused, Server(mode="ack") as decoy, Home() as home:
            # A config in a directory with a space and a quote, naming two servers; the default is
            # the decoy, so a resume command without --server would go to the wrong one.
            confdir = os.path.join(home.path, "my games", "it's")
            os.makedirs(confdir)
            config = os.path.join(confdir, "game.toml")
            r = run_game(["--config", config, "--server", endpoint(decoy), "score", "0"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            with open(config, "a", encoding="utf-8") as f:
                f.write(f'\n[servers."arena one"]\naddresses = ["127.0.0.1"]\nport = {paused.port}\n')
            batch = write_lines(os.path.join(confdir, "week 1.txt"), [f"score {i}" for i in range(1, 101)])
            # Both paths relative to the directory the client runs in; the command is pasted in /.
            client = start_client(home, ["--config", "it's/game.toml", "--server", "arena one", "--timeout",
                                         "30", "batch", batch], cwd=os.path.dirname(confdir))
            paused.wait_for_event("addScore", count=20, timeout=30)
            time.sleep(0.3)
            client.send_signal(signal.SIGINT)
            out, err = finish(client)
            self.assertEqual(client.returncode, 130, err)
            command = resume_command(err)
            self.assertIsNotNone(command, err)
            with open(config, "rb") as f:
                uuid = tomllib.load(f)["identity"]["uuid"]
            state, port = paused.state_dir, paused.port
            paused.stop()
            with Server(mode="ack", state_dir=state, port=port) as again:
                r = paste(command, home, cwd="/")
                self.assertEqual(r.returncode, OK, r.stderr)
                again.wait_for_event("closed", count=1, uuid=uuid, timeout=30)
                self.assertEqual(again.scores(uuid), list(range(1, 101)))
            self.assertEqual(decoy.scores(), [0])  # the score that made it the default, nothing of the batch


if __name__ == "__main__":
    unittest.main()
