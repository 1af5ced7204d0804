"""Issue #13: the progress line of a batch on a terminal.

The batch runs against the reference server's `slow` mode (acknowledgements 0.5 s apart) with
only stderr on a pseudo-terminal: what the terminal shows is the progress line alone, redrawn
in place (carriage return, no newline) and erased at the end; the summary goes to stdout. Off a
terminal and with --quiet there is none.
"""

import os
import re
import subprocess
import time
import unittest

from gamehelpers import OK, Terminal, endpoint, play, uuid_of, write_lines
from harness import Home, Server, game_bin

LINES = 6
FRAME = rb"\rsent (\d+) of %d, acknowledged (\d+) \((\d+)%%\)([^\r]*)\x1b\[K" % LINES


class ProgressLine(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Server(mode="slow").start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()

    def setUp(self):
        self.home = Home().__enter__()
        self.addCleanup(self.home.__exit__, None, None, None)
        # The host key is pinned first, so that the batch's stderr holds nothing but progress.
        self.assertEqual(play(self.server, self.home, "score", "0", timeout=60).returncode, OK)
        self.batch = write_lines(self.home, "scores.txt", [f"score {i}" for i in range(1, LINES + 1)])

    def run_batch(self, *options):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home.path, "LANG": "C.UTF-8",
               "TERM": "dumb"}
        started = time.monotonic()
        term = Terminal([game_bin(), *options, "--server", endpoint(self.server), "batch", self.batch], env,
                        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        code = term.finish(timeout=60)
        with term.proc.stdout as stdout:
            summary = stdout.read().decode()
        return code, term.shown, summary, time.monotonic() - started

    def test_a_batch_on_a_terminal_shows_one_line_redrawn_in_place_then_erased(self):
        code, shown, summary, elapsed = self.run_batch()
        self.assertEqual(code, OK, shown)
        self.assertEqual(summary, f"{LINES} sent, {LINES} accepted, 0 rejected\n")
        self.assertEqual(self.server.scores(uuid_of(self.home)), list(range(0, LINES + 1)))
        self.assertNotIn(b"\n", shown, "one line, redrawn in place")
        self.assertTrue(shown.endswith(b"\r\x1b[K"), f"the line is erased at the end: {shown!r}")
        frames = re.findall(FRAME, shown)
        self.assertEqual(len(frames) * len(b"\r") + shown.count(b"\r\x1b[K"), shown.count(b"\r"),
                         f"every redraw is a whole frame: {shown!r}")
        acknowledged = [int(f[1]) for f in frames]
        self.assertGreaterEqual(len(set(acknowledged)), 2, f"acknowledgements show as they come: {shown!r}")
        self.assertEqual(acknowledged, sorted(acknowledged))
        self.assertTrue(all(int(f[0]) <= LINES and int(f[1]) <= int(f[0]) for f in frames), frames)
        self.assertTrue(any(re.match(rb"^, \d+ lines/s, about \d+s left$", f[3]) for f in frames),
                        f"a rate and the time left once a second has passed: {frames}")
        # A modest rate: at most 5 redraws a second (and one at the start).
        self.assertLessEqual(len(frames), elapsed * 5 + 1, frames)

    def test_no_progress_line_with_quiet(self):
        code, shown, summary, _ = self.run_batch("-q")
        self.assertEqual(code, OK, shown)
        self.assertEqual(shown, b"")
        self.assertEqual(summary, f"{LINES} sent, {LINES} accepted, 0 rejected\n")

    def test_no_progress_line_when_stderr_is_not_a_terminal(self):
        r = play(self.server, self.home, "batch", self.batch, timeout=60)
        self.assertEqual(r.returncode, OK, r.stderr)
        self.assertEqual(r.stderr, "")
        self.assertEqual(r.stdout, f"{LINES} sent, {LINES} accepted, 0 rejected\n")


if __name__ == "__main__":
    unittest.main()
