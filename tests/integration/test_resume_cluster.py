"""Issue 10 against a 2-node cluster (protocol 2): the client interrupted with SIGINT and with
SIGKILL at several points of a long batch, each time continued with `game batch --resume`, ends
with every line held exactly once, on the one stream of the submission.

The points are chosen by watching the client's --json records (the line its results have
reached), never by sleeping: early, in the middle and near the end of the file. After SIGINT the
resume command the client printed is run through sh as printed (with --json added, to watch it);
after SIGKILL there is no summary, and `game batch --resume FILE` continues from the journal.
"""

import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import unittest

from gamehelpers import OK, entries, read_entry, uuid_of, write_lines
from harness import Cluster, Home, game_bin, run_game

# The line a run's results have reached when it is signalled: early, about a third in, about two
# thirds in. SIGINT cuts a batch only while lines are unsent (once all are, the stop's wait gets
# every result and nothing is stopped), and the client keeps up to 65,536 requests in flight, with
# a few thousand more results in the pipe to this test: so each point is at least 2,000 lines
# after the run's start and 70,536 + 2,000 before the end, and three points need 220,000 lines.
# SIGKILL interrupts wherever the client is, so 60,000 lines are enough for it.
SIGINT_LINES, SIGINT_POINTS = 220_000, (2_000, 75_000, 145_000)
SIGKILL_LINES, SIGKILL_POINTS = 60_000, (2_000, 25_000, 45_000)
RESULTS = ("accepted", "rejected", "duplicate")


class Watched:
    """A client run with --json: its records as they arrive; `signo` is sent once a record names
    line `at` or later. A record cut by SIGKILL (no newline) is not a record."""

    def __init__(self, argv, home, bin_dir, at=None, signo=None):
        env = {"HOME": home.path, "PATH": bin_dir + ":" + os.environ["PATH"], "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(argv, env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.records = []
        self.signalled = False
        self.err = ""
        self._reader = threading.Thread(target=self._read, args=(at, signo), daemon=True)
        self._reader.start()
        self._errors = threading.Thread(target=self._read_stderr, daemon=True)
        self._errors.start()

    def _read(self, at, signo):
        for raw in self.proc.stdout:
            if not raw.endswith("\n"):
                break
            record = json.loads(raw)
            self.records.append(record)
            if at is not None and not self.signalled and record.get("line", 0) >= at:
                self.proc.send_signal(signo)
                self.signalled = True

    def _read_stderr(self):
        self.err = self.proc.stderr.read()

    def wait(self, timeout=300):
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(timeout=60)
            self._errors.join(timeout=60)
            self.proc.stdout.close()
            self.proc.stderr.close()
        return self.proc.returncode

    def lines(self):
        return [(r["line"], r["result"]) for r in self.records if "line" in r]

    def summary(self):
        return self.records[-1].get("summary") if self.records else None


class InterruptedThenResumed(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(nodes=2).launch()
        cls.bin_dir = tempfile.mkdtemp(prefix="game-bin-")
        os.symlink(os.path.abspath(game_bin()), os.path.join(cls.bin_dir, "game"))

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()
        os.unlink(os.path.join(cls.bin_dir, "game"))
        os.rmdir(cls.bin_dir)

    def setUp(self):
        self.home = Home()
        self.addCleanup(self.home.cleanup)
        self.assertEqual(run_game(["init"], self.home).returncode, OK)
        self.home.write_config(self.home.read_config() + "\n" + self.cluster.config_table("arena"))

    def batch(self, lines, points):
        """The file of `lines` scores (line N: score N) and where each run is to be signalled."""
        self.lines, self.points = lines, points
        self.path = write_lines(self.home, "scores.txt", [f"score {i}" for i in range(1, lines + 1)])

    def watch(self, argv, at=None, signo=None):
        return Watched(argv, self.home, self.bin_dir, at, signo)

    def first_run(self, signo):
        run = self.watch(["game", "--server", "arena", "batch", "--json", self.path], self.points[0], signo)
        return run, run.wait()

    def point(self, k, start):
        """Where run k (from 0), starting at line `start`, is signalled; None: it is let finish."""
        return None if k == len(self.points) else max(self.points[k], start + 2_000)

    def assert_interrupted(self, run, rc, signo):
        self.assertTrue(run.signalled, f"the run ended before line {run.lines()[-1:]}: {run.err}")
        self.assertEqual(rc, 128 + signo if signo != signal.SIGKILL else -signal.SIGKILL, run.err)
        [entry] = entries(self.home)  # the submission is journaled until every line has a result
        return read_entry(entry)["stream"]

    def assert_every_line_held_once_on(self, stream):
        held = self.cluster.scores(uuid_of(self.home))
        self.assertEqual(len(held), self.lines)
        self.assertEqual(sorted(value for _, value, _, _ in held), list(range(1, self.lines + 1)))
        self.assertEqual({s for _, _, s, _ in held}, {stream})  # one stream: the submission's
        self.assertEqual([seq for _, value, _, seq in held if seq != value], [])  # seq = the line
        self.assertEqual(entries(self.home), [])

    def assert_summary_counts_records(self, run):
        """The summary counts the results of the lines sent; the line read but not yet sent when
        the stop came has a not_delivered record too, but was not sent."""
        summary, lines = run.summary(), run.lines()
        for result in RESULTS:
            self.assertEqual(summary[result], sum(1 for _, r in lines if r == result), result)
        self.assertEqual(summary["sent"], sum(summary[r] for r in RESULTS + ("not_delivered",)))
        self.assertIn(len(lines), (summary["sent"], summary["sent"] + 1))

    def assert_records_consistent(self, runs):
        """Each run gives each line at most one record; across runs a line is accepted at most once,
        and once it has a result it is never accepted again (only found already applied); every
        line has a result in some run."""
        settled = {}
        for run in runs:
            lines = run.lines()
            self.assertEqual(len({line for line, _ in lines}), len(lines), "a line with two records")
            for line, result in lines:
                if result in RESULTS:
                    self.assertFalse(line in settled and result == "accepted",
                                     f"line {line} accepted after it was {settled.get(line)}")
                    settled.setdefault(line, result)
                else:
                    self.assertEqual(result, "not_delivered")
        self.assertEqual(sorted(settled), list(range(1, self.lines + 1)))
        self.assertEqual(sum(1 for r in settled.values() if r == "rejected"), 0)

    def test_sigint_at_three_points_then_the_printed_resume_command_each_time(self):
        self.batch(SIGINT_LINES, SIGINT_POINTS)
        run, rc = self.first_run(signal.SIGINT)
        runs = [run]
        stream = self.assert_interrupted(run, rc, signal.SIGINT)
        for k in range(1, len(self.points) + 1):
            previous = runs[-1].summary()
            at = self.point(k, previous["first_unacknowledged_line"])
            self.assert_summary_counts_records(runs[-1])
            command = re.search(r"resume with: (.*)$", runs[-1].err.strip()).group(1)
            self.assertEqual(previous["resume"], command)
            # As printed, through a shell, from another directory; --json added to watch it.
            run = self.watch(["sh", "-c", f"exec {command} --json"], at, signal.SIGINT)
            rc = run.wait()
            runs.append(run)
            # The journal after a stop is exact: the resumed run starts at the first line the
            # previous one had no result for.
            self.assertEqual(run.lines()[0][0], previous["first_unacknowledged_line"])
            if at is not None:
                self.assertEqual(self.assert_interrupted(run, rc, signal.SIGINT), stream)
        self.assertEqual(rc, OK, run.err)
        self.assert_summary_counts_records(run)
        self.assertIsNone(run.summary().get("error"))
        self.assertIsNone(run.summary()["resume"])
        self.assert_records_consistent(runs)
        self.assert_every_line_held_once_on(stream)

    def test_sigkill_at_three_points_then_resume_from_the_journal(self):
        self.batch(SIGKILL_LINES, SIGKILL_POINTS)
        run, rc = self.first_run(signal.SIGKILL)
        runs = [run]
        stream = self.assert_interrupted(run, rc, signal.SIGKILL)
        self.assertIsNone(run.summary())  # killed: no summary, no resume command
        for k in range(1, len(self.points) + 1):
            [entry] = entries(self.home)
            at = self.point(k, int(read_entry(entry)["confirmed"]) + 1)
            run = self.watch(["game", "batch", "--resume", self.path, "--json"], at, signal.SIGKILL)
            rc = run.wait()
            runs.append(run)
            if at is not None:
                self.assertEqual(self.assert_interrupted(run, rc, signal.SIGKILL), stream)
        self.assertEqual(rc, OK, run.err)
        self.assertIsNone(run.summary()["resume"])
        self.assert_records_consistent(runs)
        self.assert_every_line_held_once_on(stream)


if __name__ == "__main__":
    unittest.main()
