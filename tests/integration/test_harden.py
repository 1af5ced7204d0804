"""Issue 12: local failures, bad input and trust edge cases get a clear error and leave everything
intact (and issue 13's identity export/import and lock file)."""

import fcntl
import os
import pty
import select
import shlex
import shutil
import signal
import subprocess
import tempfile
import termios
import threading
import time
import tomllib
import unittest

from gamehelpers import (CONFIG, DATAERR, IOERR, NOINPUT, NOPERM, OK, PROTOCOL, REJECTED, TIMEOUT, UNAVAILABLE,
                         USAGE, SharedServerTestCase, config_of, endpoint, key_path_of, play,
                         run_command, uuid_of)
from harness import HarnessError, Home, Server, free_port, game_bin, run_game, wait_exit

PASSPHRASE = "correct horse battery"
# The ciphers ssh-keygen -Z can encrypt an OpenSSH key with: those libssh 0.10 decrypts, and the
# AEAD ones, which crash it (the client refuses such a key first: src/identity.cc).
LIBSSH_KEY_CIPHERS = ("aes128-cbc", "aes192-cbc", "aes256-cbc", "aes128-ctr", "aes192-ctr", "aes256-ctr", "3des-cbc")
AEAD_KEY_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com")


class FullDisk:
    """A 64 KiB tmpfs at a fresh directory, unmounted on exit. Mounting must work (CI runs as
    root): a test that cannot mount fails rather than skips."""

    def __init__(self, size="64k"):
        self.path = tempfile.mkdtemp(prefix="game-full-")
        r = run_command(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", self.path])
        if r.returncode != 0:
            os.rmdir(self.path)
            raise AssertionError(f"cannot mount a tmpfs for a full disk: {r.stderr}")

    def fill(self, leave=0):
        """Fills the file system, then frees `leave` bytes again."""
        filler = os.path.join(self.path, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError:
            pass
        finally:
            os.close(fd)
        size = os.path.getsize(filler)
        os.truncate(filler, max(0, size - leave))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        subprocess.run(["umount", "-l", self.path], timeout=30, check=False)
        os.rmdir(self.path)
        return False


def identity(home):
    r = run_game(["init"], home)
    assert r.returncode == OK, r.stderr
    return uuid_of(home)


def fail_message(test, r, code, *needles):
    test.assertEqual(r.returncode, code, f"stdout: {r.stdout}\nstderr: {r.stderr}")
    for needle in needles:
        test.assertIn(needle, r.stderr)
    test.assertEqual(len(r.stderr.strip().splitlines()), 1, f"one line expected: {r.stderr}")


class BatchInput(SharedServerTestCase):
    def batch_file(self, home, text, name="b.txt"):
        path = os.path.join(home.path, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_a_line_longer_than_the_limit_is_an_error_naming_it_and_nothing_is_sent(self):
        with Home() as home:
            uuid = identity(home)
            path = self.batch_file(home, "score 1\nsetname " + "x" * 70000 + "\nscore 3\n")
            r = play(self.server, home, "batch", path)
            self.assertEqual(r.returncode, DATAERR, r.stderr)
            self.assertIn(f"{path}:2: line longer than 65536 bytes", r.stderr)
            self.assertEqual(self.server.scores(uuid), [])

    def test_a_read_error_is_not_the_end_of_the_file(self):
        # A directory opens, and every read fails (EISDIR): that was "0 sent", exit 0.
        with Home() as home:
            identity(home)
            r = play(self.server, home, "batch", home.path)
            self.assertEqual(r.returncode, NOINPUT, r.stderr)
            self.assertIn(f"cannot open batch file {home.path}: Is a directory", r.stderr)

    def test_a_fifo_is_read_once_and_sent(self):
        with Home() as home:
            uuid = identity(home)
            fifo = os.path.join(home.path, "fifo")
            os.mkfifo(fifo)

            def produce():
                with open(fifo, "w") as f:
                    f.write("score 1\nscore 2\n")
            writer = threading.Thread(target=produce)
            writer.start()
            r = play(self.server, home, "batch", fifo)
            writer.join(timeout=30)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.scores(uuid), [1, 2])

    def test_process_substitution_is_read_once_and_sent(self):
        with Home() as home:
            uuid = identity(home)
            r = run_command(["bash", "-c", f'exec "$0" --server {endpoint(self.server)} batch <(printf "score 7\\n")',
                             game_bin()], env={"HOME": home.path, "PATH": os.environ["PATH"]})
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.scores(uuid), [7])

    def test_from_line_must_be_a_line_of_the_file(self):
        with Home() as home:
            uuid = identity(home)
            path = self.batch_file(home, "score 1\nscore 2\n")
            for value in ["-1", "0", "18446744073709551616", "99999999999999999999999", "0x2", "2x", ""]:
                r = play(self.server, home, "batch", "--from-line", value, path)
                fail_message(self, r, USAGE, f"--from-line '{value}' is not a line number")
            r = play(self.server, home, "batch", "--from-line", "3", path)
            fail_message(self, r, USAGE, f"--from-line 3 is past the end of {path}, which has 2 lines")
            self.assertEqual(self.server.scores(uuid), [])
            r = play(self.server, home, "batch", "--from-line", "2", path)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.scores(uuid), [2])

    def test_follow_without_newlines_is_bounded_and_the_run_goes_on(self):
        with Home() as home:
            uuid = identity(home)
            proc = subprocess.Popen([game_bin(), "--server", endpoint(self.server), "batch", "--follow"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env={"HOME": home.path, "PATH": os.environ["PATH"]})
            try:
                # 4 MiB without a newline, then a good line.
                out, err = proc.communicate(input=b"x" * (4 << 20) + b"\nscore 5\n", timeout=60)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            self.assertEqual(proc.returncode, DATAERR, err)
            self.assertIn(b"stdin:1: line longer than 65536 bytes (skipped)", err)
            self.assertEqual(self.server.scores(uuid), [5])


class OutputOnAFullDisk(unittest.TestCase):
    def test_export_and_whoami_to_a_full_disk_fail(self):
        with Home() as home, FullDisk() as disk:
            identity(home)
            disk.fill()
            for args, name in [(["identity", "export"], "backup.txt"), (["whoami"], "whoami.txt")]:
                target = os.path.join(disk.path, name)
                with open(target, "w") as out:
                    r = subprocess.run([game_bin(), *args], stdout=out, stderr=subprocess.PIPE, text=True,
                                       timeout=60, env={"HOME": home.path, "PATH": os.environ["PATH"]})
                self.assertEqual(r.returncode, IOERR, r.stderr)
                self.assertIn("cannot write to standard output: No space left on device", r.stderr)
            r = run_game(["identity", "export", "-o", os.path.join(disk.path, "b2.txt")], home)
            self.assertEqual(r.returncode, IOERR, r.stderr)
            self.assertFalse(os.path.exists(os.path.join(disk.path, "b2.txt")), "no empty backup left")

    def test_import_force_that_runs_out_of_space_leaves_the_old_identity_working(self):
        with Home() as other, FullDisk("128k") as disk:
            identity(other)
            blob = run_game(["identity", "export"], other).stdout
            home = Home.__new__(Home)
            home.path = disk.path
            mine = identity(home)
            before = home.read_config()
            # One page free: room for the kept copy of the config, none for the new key.
            disk.fill(leave=4096)
            r = run_game(["identity", "import", "--force"], home, input=blob)
            self.assertEqual(r.returncode, IOERR, r.stderr)
            self.assertIn("No space left on device", r.stderr)
            self.assertEqual(home.read_config(), before)
            r = run_game(["whoami"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn(mine, r.stdout)
            leftovers = [f for f in os.listdir(disk.path) if "replaced" in f or ".tmp" in f]
            self.assertEqual(leftovers, [])


class ConfigInput(unittest.TestCase):
    def test_a_huge_config_is_refused_quickly(self):
        with Home() as home:
            identity(home)
            text = home.read_config() + "# padding\n" * 40000  # 400 KB
            home.write_config(text)
            start = time.monotonic()
            r = run_game(["whoami"], home)
            self.assertLess(time.monotonic() - start, 5)
            fail_message(self, r, CONFIG, f"{home.config_path} is larger than 262144 bytes")

    def test_malformed_address_is_a_config_error_with_its_place(self):
        with Home() as home:
            identity(home)
            home.write_config(home.read_config() + '\n[servers.x]\naddresses = ["127.0.0.1:9022", "h:abc"]\n')
            r = run_game(["--server", "x", "score", "1"], home)
            line = home.read_config().count("\n")
            fail_message(self, r, CONFIG, f"{home.config_path}:{line}:32: servers.x: invalid server address 'h:abc'")

    def test_unknown_keys_are_warned_with_file_line_and_the_key_meant(self):
        with Home() as home:
            identity(home)
            home.write_config(home.read_config() + '\n[servers.x]\nhost = "127.0.0.1"\nprot = 9022\n')
            r = run_game(["whoami"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            line = home.read_config().count("\n")
            self.assertIn(f"game: warning: {home.config_path}:{line}:1: unknown key 'prot' in [servers.x] "
                          "(did you mean 'port'?)", r.stderr)

    def test_home_unset_works_with_a_config_whose_key_path_is_absolute(self):
        with Home() as home:
            identity(home)
            key = key_path_of(home)
            text = home.read_config().replace('"~/.game/id_ed25519"', f'"{key}"')
            home.write_config(text)
            without_home = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
            r = run_command([game_bin(), "--config", home.config_path, "whoami"], env=without_home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn(key, r.stdout)
            home.write_config(text.replace(f'"{key}"', '"~/.game/id_ed25519"'))
            r = run_command([game_bin(), "--config", home.config_path, "whoami"], env=without_home)
            fail_message(self, r, CONFIG, "starts with ~/ but HOME is not set")

    def test_two_configs_in_one_directory_get_two_keys(self):
        with Home() as home:
            a, b = os.path.join(home.path, "a.toml"), os.path.join(home.path, "b.toml")
            self.assertEqual(run_game(["--config", a, "init"], home).returncode, OK)
            r = run_game(["--config", b, "init"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            keys = [tomllib.load(open(p, "rb"))["identity"]["key"] for p in (a, b)]
            self.assertEqual(keys, ["~/.game/id_ed25519-a.toml", "~/.game/id_ed25519-b.toml"])

    def test_a_key_without_its_config_is_not_advised_for_adoption(self):
        with Home() as home:
            identity(home)
            os.unlink(home.config_path)
            r = run_game(["init"], home)
            fail_message(self, r, CONFIG, "game identity import")
            self.assertNotIn("init --key", r.stderr)

    def test_the_lock_lives_in_dot_game_and_its_wait_is_bounded_by_timeout(self):
        with Home() as home:
            os.makedirs(os.path.join(home.path, ".game"), mode=0o700)
            lock = os.path.join(home.path, ".game", ".gameconfig.lock")
            with open(lock, "w") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                start = time.monotonic()
                r = run_game(["--timeout", "1", "init"], home)
                elapsed = time.monotonic() - start
            fail_message(self, r, TIMEOUT, f"another game process holds {lock}")
            self.assertLess(elapsed, 5)
            self.assertEqual(run_game(["init"], home).returncode, OK)
            self.assertFalse(os.path.exists(home.config_path + ".lock"))

    def test_symlinked_config_is_written_through_to_its_target(self):
        with Server(mode="ack") as server, Home() as home:
            identity(home)
            dotfiles = os.path.join(home.path, "dotfiles")
            os.makedirs(dotfiles)
            target = os.path.join(dotfiles, "gameconfig")
            shutil.move(home.config_path, target)
            os.symlink(target, home.config_path)
            r = play(server, home, "score", "1")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertTrue(os.path.islink(home.config_path))
            self.assertEqual(os.readlink(home.config_path), target)
            self.assertIn(server.host_key_fingerprint(), open(target).read())
            self.assertEqual(os.listdir(dotfiles), ["gameconfig"])


class Options(SharedServerTestCase):
    def test_malformed_host_key_is_a_usage_error_before_connecting(self):
        with Home() as home:
            identity(home)
            before = len(self.server.connections())
            for bad in ["SHA256:", "SHA256:abc", "SHA256:" + "A" * 43 + "\n", "MD5:" + "A" * 43]:
                r = play(self.server, home, "--host-key", bad, "score", "1")
                fail_message(self, r, USAGE, "is not a fingerprint")
                self.assertNotIn("MISMATCH", r.stderr)
            self.assertEqual(len(self.server.connections()), before)

    def test_timeout_below_a_millisecond_is_refused(self):
        with Home() as home:
            r = play(self.server, home, "--timeout", "0.0001", "score", "1")
            fail_message(self, r, USAGE, "--timeout must be a number of seconds from 0.001")

    def test_unreadable_key_is_not_blamed_on_a_passphrase_and_records_no_host_key(self):
        with Home() as home:
            identity(home)
            key = key_path_of(home)
            for broken in ("garbage", "directory"):
                os.unlink(key) if os.path.isfile(key) else os.rmdir(key)
                if broken == "garbage":
                    with open(key, "w") as f:
                        f.write("not a key\n")
                    os.chmod(key, 0o600)
                else:
                    os.mkdir(key, 0o700)
                r = play(self.server, home, "score", "1")
                self.assertEqual(r.returncode, CONFIG, r.stderr)
                self.assertIn(key, r.stderr)
                self.assertNotIn("passphrase", r.stderr)
                self.assertNotIn("servers", config_of(home))


class HostNameResolution(unittest.TestCase):
    def test_an_unanswering_resolver_is_bounded_by_timeout(self):
        # A network namespace of our own whose only name server, on its loopback, reads queries
        # and never answers; /etc/resolv.conf is replaced in a mount namespace of our own too.
        work = tempfile.mkdtemp(prefix="game-dns-")
        try:
            with open(os.path.join(work, "resolv.conf"), "w") as f:
                f.write("nameserver 127.0.0.1\noptions timeout:30 attempts:1\n")
            home = os.path.join(work, "home")
            os.mkdir(home)
            script = (
                "ip link set lo up && mount --bind \"$0/resolv.conf\" /etc/resolv.conf || exit 99\n"
                "python3 -c 'import socket,sys,time;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);"
                "s.bind((\"127.0.0.1\",53));open(sys.argv[1],\"w\").close();time.sleep(60)' \"$0/ready\" &\n"
                "listener=$!\n"
                "while [ ! -e \"$0/ready\" ]; do sleep 0.05; done\n"
                "start=$(date +%s%N)\n"
                "HOME=\"$0/home\" \"$1\" --timeout 1 --server game.unanswered.test score 1\n"
                "rc=$?\n"
                "echo \"elapsed_ms=$(( ($(date +%s%N) - start) / 1000000 ))\" >&2\n"
                "kill $listener\n"
                "exit $rc\n")
            r = run_command(["unshare", "--net", "--mount", "--", "sh", "-c", script, work,
                             os.path.abspath(game_bin())], timeout=60)
            self.assertEqual(r.returncode, TIMEOUT, r.stderr)
            self.assertIn("resolving host name game.unanswered.test took longer than 1000 ms", r.stderr)
            elapsed = int(r.stderr.rsplit("elapsed_ms=", 1)[1].split()[0])
            self.assertLess(elapsed, 3000, r.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)


class Trust(unittest.TestCase):
    def test_pinning_in_advance_with_trust_records_the_pin_or_refuses(self):
        with Server(mode="ack") as server, Home() as home:
            identity(home)
            wrong = "SHA256:" + "A" * 43
            r = run_game(["--host-key", wrong, "trust", endpoint(server), "--yes"], home)
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn(f"not the --host-key {wrong}; nothing recorded", r.stderr)
            self.assertNotIn("servers", config_of(home))
            right = server.host_key_fingerprint()
            r = run_game(["--host-key", right, "trust", endpoint(server), "--yes"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(config_of(home)["servers"][endpoint(server)]["host_key"], right)

    def test_first_run_with_host_key_records_the_pin_and_the_default_server(self):
        with Server(mode="ack") as server, Home() as home:
            uuid = identity(home)
            pin = server.host_key_fingerprint()
            r = play(server, home, "--host-key", pin, "score", "1")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertNotIn("trusting", r.stderr)
            config = config_of(home)
            self.assertEqual(config["default_server"], endpoint(server))
            self.assertEqual(config["servers"][endpoint(server)]["host_key"], pin)
            r = run_game(["score", "2"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(server.scores(uuid), [1, 2])

    def test_trust_on_a_cluster_with_a_shared_key_pins_only_the_node_that_differs(self):
        with Server(mode="ack") as a, Server(mode="ack") as b, Home() as home:
            uuid = identity(home)
            shared = a.host_key_fingerprint()
            self.assertNotEqual(shared, b.host_key_fingerprint())
            home.write_config(home.read_config() +
                              f'\n[servers.c]\naddresses = ["127.0.0.1:{a.port}", "127.0.0.1:{b.port}"]\n'
                              f'host_key = "{shared}"\n')
            a.stop()
            r = run_game(["--server", "c", "score", "1"], home)
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn("game trust c", r.stderr)
            r = run_game(["trust", "c", "--yes"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            servers = config_of(home)["servers"]["c"]
            self.assertEqual(servers["host_key"], shared)
            self.assertEqual(servers["host_keys"], {f"127.0.0.1:{b.port}": b.host_key_fingerprint()})
            self.assertEqual(run_game(["--server", "c", "score", "2"], home).returncode, OK)
            a.restart()
            r = run_game(["--server", "c", "score", "3"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(b.scores(uuid), [2])
            self.assertEqual(a.scores(uuid), [3])


class ExportImport(unittest.TestCase):
    def test_export_carries_the_servers_and_their_pinned_keys_and_import_restores_them(self):
        with Server(mode="ack") as server, Home() as a, Home() as b:
            r = play(server, a, "score", "1")
            self.assertEqual(r.returncode, OK, r.stderr)
            uuid = uuid_of(a)
            blob = run_game(["identity", "export"], a).stdout
            r = run_game(["identity", "import"], b, input=blob)
            self.assertEqual(r.returncode, OK, r.stderr)
            config = config_of(b)
            self.assertEqual(config["default_server"], endpoint(server))
            self.assertEqual(config["servers"][endpoint(server)]["host_key"], server.host_key_fingerprint())
            r = run_game(["score", "2"], b)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertNotIn("trusting", r.stderr)
            self.assertEqual(server.scores(uuid), [1, 2])

    def test_import_force_says_where_the_old_identity_is_and_it_still_works(self):
        with Home() as home, Home() as other:
            mine = identity(home)
            identity(other)
            blob = run_game(["identity", "export"], other).stdout
            r = run_game(["identity", "import", "--force"], home, input=blob)
            self.assertEqual(r.returncode, OK, r.stderr)
            kept = r.stderr.split(" is kept in ", 1)[1].split(" ")[0]
            self.assertTrue(kept.startswith(home.config_path + ".replaced-"), r.stderr)
            r = run_game(["--config", kept, "whoami"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn(mine, r.stdout)
            self.assertEqual(uuid_of(home), uuid_of(other))


def start_on_terminal(args, home, program=None):
    """`game ARGS` (or `program` with argv `args`) on a new terminal, with a clean environment."""
    env = {"PATH": os.environ["PATH"], "HOME": home.path, "LANG": "C.UTF-8", "TERM": "dumb"}
    argv = args if program else [game_bin(), *args]
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execvpe(program or game_bin(), argv, env)
        finally:
            os._exit(127)
    return pid, fd


def finish_on_terminal(pid, fd, replies=()):
    """Types each reply (bytes) once its prompt shows anew, then reads until the child closes the
    terminal: (exit code, everything shown). The terminal is closed in any case (a child still at
    a prompt gets SIGHUP) and the child reaped (wait_exit)."""
    shown = b""
    try:
        for prompt, reply in replies:
            shown = read_until(fd, prompt, shown.replace(prompt, b"(answered)"))
            os.write(fd, reply + b"\n")
        shown = read_to_eof(fd, shown)
    finally:
        os.close(fd)
        status = wait_exit(pid)
    return os.waitstatus_to_exitcode(status), shown


def read_until(fd, needle, shown=b"", timeout=30):
    deadline = time.monotonic() + timeout
    while needle not in shown:
        if time.monotonic() > deadline:
            raise HarnessError(f"no {needle!r} within {timeout}s; terminal showed {shown!r}")
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                shown += os.read(fd, 4096)
            except OSError:
                break
    return shown


def read_to_eof(fd, shown, timeout=30):
    """Everything the child shows until it closes the terminal; a child still at it after
    `timeout` seconds (waiting at a prompt nobody answers) is reported."""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise HarnessError(f"the child did not close the terminal within {timeout}s; it showed {shown!r}")
        ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    return shown


def echo_on(fd):
    return bool(termios.tcgetattr(fd)[3] & termios.ECHO)


class PassphrasePrompt(SharedServerTestCase):
    def encrypted_home(self):
        home = Home()
        key = os.path.join(home.path, "id_ed25519")
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", key], check=True,
                       timeout=30, stdin=subprocess.DEVNULL)
        self.assertEqual(run_game(["init", "--key", key], home).returncode, OK)
        return home

    def test_signals_at_the_prompt_restore_echo(self):
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            with self.subTest(signal=sig.name), self.encrypted_home() as home:
                pid, fd = start_on_terminal(["--server", endpoint(self.server), "score", "1"], home)
                try:
                    read_until(fd, b"Enter passphrase for")
                    self.assertFalse(echo_on(fd), "echo must be off at the prompt")
                    os.kill(pid, sig)
                    status = wait_exit(pid)
                    self.assertTrue(echo_on(fd), f"echo left off after {sig.name}")
                    self.assertEqual(os.waitstatus_to_exitcode(status), -sig)
                finally:
                    os.close(fd)

    def score_on_terminal(self, home, replies):
        """`game score 1` on a terminal, each reply typed once its prompt shows anew: accepted."""
        pid, fd = start_on_terminal(["--server", endpoint(self.server), "score", "1"], home)
        code, shown = finish_on_terminal(pid, fd, replies)
        self.assertEqual(code, OK, shown)
        self.assertEqual(self.server.scores(uuid_of(home)), [1])

    def test_three_tries_for_the_passphrase(self):
        with self.encrypted_home() as home:
            self.score_on_terminal(home, [(b"Enter passphrase for", b"wrong"),
                                          (b"Bad passphrase, try again", b"wrong again"),
                                          (b"Bad passphrase, try again", PASSPHRASE.encode())])

    def test_encrypted_pem_keys_are_unlocked(self):
        # A traditional PEM key names its cipher in DEK-Info (looked up in OpenSSL's legacy
        # table, which the client does not fill at start-up); PKCS#8 names it by OID.
        for key_format in ("PEM", "PKCS8"):
            with self.subTest(key_format=key_format), Home() as home:
                key = os.path.join(home.path, "id_ecdsa")
                subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-m", key_format, "-N", PASSPHRASE,
                                "-f", key], check=True, timeout=30, stdin=subprocess.DEVNULL)
                self.assertEqual(run_game(["init", "--key", key], home).returncode, OK)
                self.score_on_terminal(home, [(b"Enter passphrase for", PASSPHRASE.encode())])

    def test_openssh_keys_encrypted_with_each_of_libssh_s_ciphers_are_unlocked(self):
        # The static client's OpenSSL lists only the ciphers SSH uses (src/crypto_init.cc); libssh
        # decrypts an OpenSSH key with one of them.
        for cipher in LIBSSH_KEY_CIPHERS:
            with self.subTest(cipher=cipher), Home() as home:
                key = os.path.join(home.path, "id_ed25519")
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-Z", cipher, "-N", PASSPHRASE, "-f", key],
                               check=True, timeout=30, stdin=subprocess.DEVNULL)
                self.assertEqual(run_game(["init", "--key", key], home).returncode, OK)
                self.score_on_terminal(home, [(b"Enter passphrase for", PASSPHRASE.encode())])

    def test_openssh_keys_libssh_cannot_decrypt_are_refused_with_a_command_that_works(self):
        for cipher in AEAD_KEY_CIPHERS:
            with self.subTest(cipher=cipher), Home() as home:
                key = os.path.join(home.path, "my key")  # a space: the printed command must quote it
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-Z", cipher, "-N", PASSPHRASE, "-f", key],
                               check=True, timeout=30, stdin=subprocess.DEVNULL)
                # Adopted (an agent could sign with it), refused where libssh would decrypt it: before
                # the passphrase prompt, with nothing sent.
                self.assertEqual(run_game(["init", "--key", key], home).returncode, OK)
                pid, fd = start_on_terminal(["--server", endpoint(self.server), "score", "1"], home)
                code, shown = finish_on_terminal(pid, fd)
                self.assertEqual(code, CONFIG, shown)
                fix = f"ssh-keygen -p -Z aes256-ctr -f {shlex.quote(key)}"
                self.assertIn(f"the private key {key} is encrypted with {cipher}, which libssh cannot decrypt: "
                              f"re-encrypt it with `{fix}`".encode(), shown)
                self.assertNotIn(b"passphrase for", shown)
                self.assertEqual(self.server.scores(uuid_of(home)), [])
                # Exported as it is, refused where it is imported, with advice for the exporting side.
                blob = run_game(["identity", "export"], home).stdout
                with Home() as other:
                    r = run_game(["identity", "import"], other, input=blob)
                    self.assertEqual(r.returncode, CONFIG, r.stderr)
                    self.assertIn(f"the imported private key is encrypted with {cipher}, which libssh cannot decrypt: "
                                  "re-encrypt it with `ssh-keygen -p -Z aes256-ctr -f KEY` where it was exported "
                                  "from, and export it again", r.stderr)
                    self.assertFalse(os.path.exists(other.config_path), "a refused import must write nothing")
                # The command as printed, typed into a shell on a terminal: the old passphrase, then
                # the new one twice.
                pid, fd = start_on_terminal(["sh", "-c", fix], home, program="sh")
                code, shown = finish_on_terminal(pid, fd, [(b"Enter old passphrase:", PASSPHRASE.encode()),
                                                           (b"Enter new passphrase", PASSPHRASE.encode()),
                                                           (b"Enter same passphrase", PASSPHRASE.encode())])
                self.assertEqual(code, 0, shown)
                self.score_on_terminal(home, [(b"Enter passphrase for", PASSPHRASE.encode())])

    def test_pem_keys_with_ciphers_ssh_does_not_use_are_unlocked(self):
        # The static client's OpenSSL lists only SSH's ciphers until it meets a PEM key, which may
        # be encrypted with any cipher OpenSSL has (src/crypto_init.cc): Camellia here, once in
        # a traditional PEM key and once in PKCS#8.
        secret = f"pass:{PASSPHRASE}"
        for key_format, convert in (("PEM", ["ec", "-camellia256", "-passout", secret]),
                                    ("PKCS8", ["pkcs8", "-topk8", "-v2", "camellia-256-cbc", "-passout", secret])):
            with self.subTest(key_format=key_format), Home() as home:
                plain = os.path.join(home.path, "plain")
                key = os.path.join(home.path, "id_ecdsa")
                subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-m", "PEM", "-N", "", "-f", plain], check=True,
                               timeout=30, stdin=subprocess.DEVNULL)
                subprocess.run(["openssl", *convert, "-in", plain, "-out", key], check=True, timeout=30,
                               stdin=subprocess.DEVNULL, capture_output=True)
                os.chmod(key, 0o600)
                os.rename(plain + ".pub", key + ".pub")
                # The cipher is Camellia's: in DEK-Info, or in PKCS#8's PBES2 parameters.
                shown = open(key).read() if key_format == "PEM" else subprocess.run(
                    ["openssl", "asn1parse", "-in", key], check=True, timeout=30, capture_output=True, text=True).stdout
                self.assertIn("CAMELLIA-256-CBC" if key_format == "PEM" else ":camellia-256-cbc", shown)
                self.assertEqual(run_game(["init", "--key", key], home).returncode, OK)
                self.score_on_terminal(home, [(b"Enter passphrase for", PASSPHRASE.encode())])

class ExitCodes(SharedServerTestCase):
    """One test per row of the README's exit-code table."""

    def test_0_delivered_and_accepted(self):
        with Home() as home:
            self.assertEqual(play(self.server, home, "score", "1").returncode, OK)

    def test_1_rejected(self):
        with Home() as home:
            self.assertEqual(play(self.server, home, "score", "-1").returncode, REJECTED)

    def test_64_usage(self):
        with Home() as home:
            fail_message(self, play(self.server, home, "score", "twelve"), USAGE, "twelve")

    def test_65_bad_input_data(self):
        with Home() as home:
            path = os.path.join(home.path, "b.txt")
            with open(path, "w") as f:
                f.write("score x\n")
            r = play(self.server, home, "batch", path)
            self.assertEqual(r.returncode, DATAERR, r.stderr)
            self.assertIn(f"{path}:1:", r.stderr)

    def test_66_no_input_file(self):
        with Home() as home:
            fail_message(self, play(self.server, home, "batch", "/nonexistent/b.txt"), NOINPUT, "/nonexistent/b.txt")

    def test_69_unavailable(self):
        with Home() as home:
            identity(home)
            r = run_game(["--server", f"127.0.0.1:{free_port()}", "score", "1"], home)
            fail_message(self, r, UNAVAILABLE, "cannot connect to")

    def test_74_local_io(self):
        with Home() as home:
            identity(home)
            r = run_game(["identity", "export", "-o", "/proc/version"], home)
            fail_message(self, r, IOERR, "/proc/version")

    def test_75_timeout(self):
        with Server(mode="pause:1") as paused, Home() as home:
            identity(home)
            path = os.path.join(home.path, "b.txt")
            with open(path, "w") as f:
                f.write("score 1\nscore 2\n")
            r = play(paused, home, "--timeout", "1", "batch", path)
            self.assertEqual(r.returncode, TIMEOUT, r.stderr)
            self.assertIn("(--timeout)", r.stderr)

    def test_76_protocol(self):
        with Server(mode="garbage") as garbage, Home() as home:
            self.assertEqual(play(garbage, home, "score", "1").returncode, PROTOCOL)

    def test_77_permission(self):
        with Home() as home:
            r = play(self.server, home, "--host-key", "SHA256:" + "A" * 43, "score", "1")
            self.assertEqual(r.returncode, NOPERM, r.stderr)

    def test_78_config(self):
        with Home() as home:
            home.write_config("[identity\n")
            os.chmod(home.config_path, 0o600)
            fail_message(self, run_game(["whoami"], home), CONFIG, f"{home.config_path}:1:")


if __name__ == "__main__":
    unittest.main()
