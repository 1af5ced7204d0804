"""Issue 10, resume across invocations: the journal under ~/.game/pending and batch --resume/--new.

The client is interrupted for real (SIGINT, SIGKILL) against a real reference server, which is
then restarted on its own state (as after a crash or reboot); the journal files are checked for
their modes and contents, and --resume must finish the set.
"""

import os
import pty
import select
import shlex
import signal
import stat
import subprocess
import time
import unittest

from gamehelpers import (DATAERR, IOERR, OK, UNAVAILABLE, USAGE, endpoint, entries, pending_dir, read_entry,
                         run_printed, uuid_of)
from harness import Home, Server, game_bin, run_game, wait_exit

TOTAL = 300


def write_lines(path, lines):
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))
    return path


def client_env(home):
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home.path, "LANG": "C.UTF-8"}


def interrupted_batch(home, server, signo, total=TOTAL):
    """Starts a batch of `total` scores, signals the client once the server holds 50 of them."""
    path = write_lines(os.path.join(home.path, "scores.txt"), [f"score {i}" for i in range(1, total + 1)])
    client = subprocess.Popen([game_bin(), "--server", endpoint(server), "--timeout", "30", "batch", path],
                              env=client_env(home), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        server.wait_for_event("addScore", count=50, timeout=30)
        time.sleep(1.3)  # the acknowledgements reach the client (and, for SIGKILL, a journal write)
        client.send_signal(signo)
        out, err = client.communicate(timeout=30)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    return path, client.returncode, out, err


def stopped_with_sigint(test, home):
    """A batch to a server that acknowledges 50 lines, stopped with SIGINT (exit 130); the server
    is stopped too, to be restarted on its state and port. (path, state, port, endpoint)."""
    paused = Server(mode="pause:50").start()
    try:
        path, rc, _, err = interrupted_batch(home, paused, signal.SIGINT)
        test.assertEqual(rc, 130, err)
        return path, paused.state_dir, paused.port, endpoint(paused)
    finally:
        paused.stop()


class Journal(unittest.TestCase):
    def test_sigint_then_resume_records_every_line_exactly_once_and_removes_the_entry(self):
        with Home() as home:
            path, state, port, paused_server = stopped_with_sigint(self, home)
            # The journal: private directory, private file, a few bytes naming the stream and file.
            [entry] = entries(home)
            self.assertEqual(stat.S_IMODE(os.stat(os.path.join(home.path, ".game")).st_mode), 0o700)
            self.assertEqual(stat.S_IMODE(os.stat(pending_dir(home)).st_mode), 0o700)
            self.assertEqual(stat.S_IMODE(os.stat(entry).st_mode), 0o600)
            self.assertLess(os.path.getsize(entry), 512)
            fields = read_entry(entry)
            self.assertRegex(fields["stream"], r"^[0-9a-f]{32}$")
            self.assertEqual(fields["file"], os.path.abspath(path))
            self.assertEqual(fields["confirmed"], "50")
            self.assertEqual(fields["server"], paused_server)
            self.assertEqual(fields["config"], home.config_path)
            self.assertEqual(int(fields["size"]), os.path.getsize(path))

            with Server(mode="ack", state_dir=state, port=port) as again:
                uuid = uuid_of(home)
                # A plain re-run in a script never starts a second submission silently.
                r = run_game(["--server", endpoint(again), "batch", path], home)
                self.assertEqual(r.returncode, USAGE, r.stderr)
                self.assertIn(f"{path} has an unfinished submission to {endpoint(again)} (lines up to 50 "
                              "confirmed): continue it with --resume", r.stderr)
                self.assertIn("or start over with --new; nothing was sent", r.stderr)
                self.assertEqual(again.scores(uuid), list(range(1, 51)))

                r = run_game(["batch", "--resume", path], home)  # server and config from the journal
                self.assertEqual(r.returncode, OK, r.stderr)
                self.assertEqual(r.stdout, f"{TOTAL - 50} sent, {TOTAL - 50} accepted, 0 rejected\n")
                again.wait_for_event("closed", count=1, uuid=uuid, timeout=30)
                self.assertEqual(again.scores(uuid), list(range(1, TOTAL + 1)))
            self.assertEqual(entries(home), [])

    def test_sigkill_of_the_client_then_resume_finishes_the_set(self):
        with Home() as home:
            paused = Server(mode="pause:50").start()
            try:
                path, rc, out, err = interrupted_batch(home, paused, signal.SIGKILL)
                self.assertEqual(rc, -signal.SIGKILL)
                state, port = paused.state_dir, paused.port
            finally:
                paused.kill()
            [entry] = entries(home)
            confirmed = int(read_entry(entry)["confirmed"])
            self.assertLessEqual(confirmed, 50)
            with Server(mode="ack", state_dir=state, port=port) as again:
                r = run_game(["batch", "--resume", path], home)
                self.assertEqual(r.returncode, OK, r.stderr)
                uuid = uuid_of(home)
                again.wait_for_event("closed", count=1, uuid=uuid, timeout=30)
                scores = again.scores(uuid)
            # Protocol 1 is at-least-once: lines 1..confirmed once, the rest from confirmed + 1 on
            # (lines acknowledged after the journal's last write are sent again).
            self.assertEqual(scores, list(range(1, 51)) + list(range(confirmed + 1, TOTAL + 1)))
            self.assertEqual(entries(home), [])

    def test_the_same_file_named_another_way_is_not_started_again_silently(self):
        with Server(mode="drop:50") as server, Home() as home:
            path = write_lines(os.path.join(home.path, "scores.txt"), [f"score {i}" for i in range(1, 121)])
            r = run_game(["--server", endpoint(server), "batch", path], home)
            self.assertEqual(r.returncode, UNAVAILABLE, r.stderr)  # dropped after 50: unfinished
            held = server.scores(uuid_of(home))
            # (.. is kept as written: behind a symbolic link it names another directory)
            for name in ("./scores.txt", "/./" + path, path.replace("/", "//")):
                r = run_printed(f"cd {shlex.quote(home.path)} && game --server {endpoint(server)} batch {name}", home)
                self.assertEqual(r.returncode, USAGE, r.stderr)
                self.assertIn("has an unfinished submission", r.stderr)
                self.assertEqual(server.scores(uuid_of(home)), held)
            self.assertEqual(len(entries(home)), 1)

    def test_new_drops_the_old_entry_and_a_changed_file_is_not_resumed(self):
        with Server(mode="pause:50") as paused, Home() as home:
            path, rc, _, err = interrupted_batch(home, paused, signal.SIGTERM)
            self.assertEqual(rc, 143, err)
            [entry] = entries(home)
            old_stream = read_entry(entry)["stream"]
            with open(path, "a", encoding="utf-8") as f:
                f.write("score 301\n")
            r = run_game(["batch", "--resume", path], home)
            self.assertEqual(r.returncode, DATAERR, r.stderr)
            self.assertIn("changed since its interrupted submission", r.stderr)
            self.assertIn("use --new", r.stderr)
            with Server(mode="ack") as other:
                r = run_game(["--server", endpoint(other), "batch", "--new", path], home)
                self.assertEqual(r.returncode, OK, r.stderr)
                uuid = uuid_of(home)
                other.wait_for_event("closed", count=1, uuid=uuid, timeout=30)
                self.assertEqual(other.scores(uuid), list(range(1, TOTAL + 2)))
            self.assertEqual(entries(home), [])
            self.assertNotEqual(old_stream, "")

    def test_resume_without_an_entry_and_conflicting_options(self):
        with Home() as home:
            path = write_lines(os.path.join(home.path, "s.txt"), ["score 1"])
            r = run_game(["batch", "--resume", path], home)
            self.assertEqual(r.returncode, USAGE, r.stderr)
            self.assertIn(f"no unfinished submission of {path} to resume", r.stderr)
            for args in (["--resume", "--new", path], ["--resume", "--from-line", "3", path],
                         ["--follow", "--resume"]):
                r = run_game(["batch", *args], home)
                self.assertEqual(r.returncode, USAGE, (args, r.stderr))


class FullDisk(unittest.TestCase):
    def test_a_journal_that_cannot_be_written_stops_the_run_before_anything_is_sent(self):
        with Server(mode="ack") as server, Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            journal = os.path.join(home.path, ".game", "pending")  # beside the key, which stays readable
            os.mkdir(journal, 0o700)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", journal], check=True)
            try:
                with open(os.path.join(journal, "filler"), "wb") as f:
                    try:
                        f.write(b"x" * (128 * 1024))
                    except OSError:
                        pass  # ENOSPC: the disk is full, as intended
                path = write_lines(os.path.join(home.path, "s.txt"), ["score 1", "score 2"])
                r = run_game(["--server", endpoint(server), "batch", path], home)
                self.assertEqual(r.returncode, IOERR, r.stderr)
                self.assertIn(f"cannot write {journal}/", r.stderr)
                self.assertIn("No space left on device", r.stderr)
                self.assertEqual(server.scores(), [])
                self.assertEqual(os.listdir(journal), ["filler"])  # no temporary file left behind
            finally:
                subprocess.run(["umount", journal], check=True)


class Prompt(unittest.TestCase):
    """On a terminal, `game batch FILE` with an unfinished submission asks what to do."""

    def run_on_pty(self, home, args, answer, timeout=30):
        pid, fd = pty.fork()
        if pid == 0:  # the child: its controlling terminal is the pty
            os.execve(game_bin(), [game_bin(), *args], client_env(home))
        output = b""
        deadline = time.monotonic() + timeout
        answered = False
        try:
            while time.monotonic() < deadline:
                ready = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]
                if not ready:
                    break
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
                if not answered and b"[r/n/A]" in output:
                    os.write(fd, answer)
                    answered = True
            status = wait_exit(pid)
        finally:
            os.close(fd)
        return os.waitstatus_to_exitcode(status), output.decode("utf-8", "replace")

    def test_asks_then_abort_sends_nothing_and_resume_finishes(self):
        with Home() as home:
            path, state, port, _ = stopped_with_sigint(self, home)
            with Server(mode="ack", state_dir=state, port=port) as again:
                uuid = uuid_of(home)
                rc, text = self.run_on_pty(home, ["--server", endpoint(again), "batch", path], b"a\n")
                self.assertEqual(rc, USAGE, text)
                self.assertIn("has an unfinished submission", text)
                self.assertIn("[r]esume it, start a [n]ew one", text)
                self.assertEqual(again.scores(uuid), list(range(1, 51)))
                rc, text = self.run_on_pty(home, ["--server", endpoint(again), "batch", path], b"r\n")
                self.assertEqual(rc, OK, text)
                again.wait_for_event("closed", count=1, uuid=uuid, timeout=30)
                self.assertEqual(again.scores(uuid), list(range(1, TOTAL + 1)))
            self.assertEqual(entries(home), [])


if __name__ == "__main__":
    unittest.main()
