"""Issue #13: a first contact as good as git's, and output made for scripts.

Usage and help, typo suggestions, one-line parse errors, options after the subcommand, `--` for a
name starting with '-', environment overrides, `whoami --json` and `whoami` on a fresh machine,
`trust --host-key`; and, on a real terminal (a pseudo-terminal), the stdin hint and the
confirmation line, which scripts do not get.
"""

import json
import os
import subprocess
import unittest

from gamehelpers import (CONFIG, NOPERM, OK, USAGE, SharedServerTestCase, Terminal, config_of, endpoint,
                         key_path_of, play, ssh_keygen_fingerprint, uuid_of)
from harness import Home, Server, game_bin, run_game


def one_line(text):
    lines = text.splitlines()
    return len(lines) == 1 and lines[0].startswith("game: ")


def terminal_env(home, **extra):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home.path, "LANG": "C.UTF-8",
           "TERM": "dumb"}
    env.update(extra)
    return env


class Usage(unittest.TestCase):
    def test_bare_game_prints_the_usage_with_examples_and_fails(self):
        with Home() as home:
            r = run_game([], home)
            self.assertEqual(r.returncode, USAGE)
            self.assertEqual(r.stdout, "")
            self.assertIn("Usage: game [OPTIONS] SUBCOMMAND", r.stderr)
            self.assertIn("Examples:\n  game --server play.example.org setname", r.stderr)
            self.assertEqual(os.listdir(home.path), [])

    def test_help_prints_the_usage_or_a_command_s_help_on_stdout(self):
        with Home() as home:
            r = run_game(["help"], home)
            self.assertEqual((r.returncode, r.stderr), (OK, ""))
            self.assertIn("Usage: game [OPTIONS] SUBCOMMAND", r.stdout)
            self.assertIn("Examples:", r.stdout)
            r = run_game(["help", "score"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn("Usage: game score [OPTIONS] VALUE", r.stdout)
            self.assertIn("Examples:\n  game score 789\n", r.stdout)
            self.assertEqual(r.stdout, run_game(["score", "--help"], home).stdout)
            r = run_game(["help", "identity", "export"], home)
            self.assertIn("Usage: game identity export [OPTIONS]", r.stdout)

    def test_every_command_s_help_ends_with_examples(self):
        with Home() as home:
            for command in (["setname"], ["score"], ["whoami"], ["batch"], ["init"], ["trust"],
                            ["identity", "export"], ["identity", "import"]):
                with self.subTest(command=command):
                    r = run_game([*command, "--help"], home)
                    self.assertEqual(r.returncode, OK, r.stderr)
                    examples = r.stdout.split("Examples:\n")
                    self.assertEqual(len(examples), 2, r.stdout)
                    self.assertTrue(examples[1].startswith(f"  game {' '.join(command)}"), r.stdout)

    def test_dash_capital_v_prints_the_version(self):
        with Home() as home:
            short, long = run_game(["-V"], home), run_game(["--version"], home)
            self.assertEqual(short.returncode, OK, short.stderr)
            self.assertRegex(short.stdout, r"^game \S+ \(libssh ")
            self.assertEqual(short.stdout, long.stdout)

    def test_a_mistyped_command_is_answered_with_the_one_meant(self):
        with Home() as home:
            for args, meant in ((["scroe", "5"], "score"), (["whoamu"], "whoami"),
                                (["identity", "exprot"], "export"), (["help", "btach"], "batch")):
                with self.subTest(args=args):
                    r = run_game(args, home)
                    self.assertEqual(r.returncode, USAGE, r.stderr)
                    self.assertTrue(one_line(r.stderr), r.stderr)
                    self.assertIn(f"did you mean {meant}?", r.stderr)
            r = run_game(["deploy"], home)
            self.assertEqual(r.returncode, USAGE)
            self.assertIn("'deploy' is not a game command", r.stderr)
            self.assertNotIn("did you mean", r.stderr)
            self.assertEqual(os.listdir(home.path), [])

    def test_parse_errors_are_one_line_with_exit_64(self):
        with Home() as home:
            for args in (["--timeout", "abc", "score", "5"], ["score"], ["--server"], ["score", "1", "2"],
                         ["batch", "--bogus"], ["--server", "x"]):
                with self.subTest(args=args):
                    r = run_game(args, home)
                    self.assertEqual(r.returncode, USAGE, r.stderr)
                    self.assertTrue(one_line(r.stderr), r.stderr)
                    self.assertEqual(r.stdout, "")

    def test_a_name_that_starts_with_a_dash_needs_double_dash(self):
        with Home() as home:
            r = run_game(["setname", "-=Zoë=-"], home)
            self.assertEqual(r.returncode, USAGE, r.stderr)
            self.assertTrue(one_line(r.stderr), r.stderr)
            self.assertIn("game setname -- '-=Zoë=-'", r.stderr)
            self.assertNotIn("required", r.stderr)
            r = run_game(["--dry-run", "setname", "--", "-=Zoë=-"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            expected = run_game(["--dry-run", "setname", "x=Zoë=-"], home).stdout
            self.assertEqual(len(r.stdout), len(expected))


class WithAServer(SharedServerTestCase):
    def test_global_options_also_work_after_the_subcommand(self):
        with Home() as home:
            r = run_game(["score", "41", "--server", endpoint(self.server), "--timeout", "20"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.scores(uuid_of(home)), [41])

    def test_short_flags_written_together_after_the_subcommand(self):
        with Home() as home:
            r = run_game(["score", "42", "-vq", "--server", endpoint(self.server)], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn("authenticated as", r.stderr)  # -v
            self.assertEqual(self.server.scores(uuid_of(home)), [42])

    def test_the_double_dash_name_reaches_the_server(self):
        with Home() as home:
            r = play(self.server, home, "setname", "--", "-=Zoë=-")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.names(uuid_of(home)), ["-=Zoë=-"])

    def test_a_mistyped_server_name_from_the_config_is_answered_and_nothing_sent(self):
        with Home() as home:
            self.assertEqual(play(self.server, home, "score", "1").returncode, OK)
            with open(home.config_path, "a") as f:
                f.write(f'\n[servers.arena]\nhost = "127.0.0.1"\nport = {self.server.port}\n')
            r = run_game(["--server", "arnea", "score", "2"], home)
            self.assertEqual(r.returncode, USAGE, r.stderr)
            self.assertTrue(one_line(r.stderr), r.stderr)
            self.assertIn("did you mean arena?", r.stderr)
            self.assertEqual(self.server.scores(uuid_of(home)), [1])
            self.assertEqual(run_game(["--server", "arena", "score", "3"], home).returncode, OK)
            self.assertEqual(self.server.scores(uuid_of(home)), [1, 3])

    def test_environment_overrides_config_and_command_line_overrides_environment(self):
        with Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            uuid = uuid_of(home)
            r = run_game(["score", "5"], home, env={"GAME_SERVER": endpoint(self.server)})
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.scores(uuid), [5])
            # default_server is now this server; GAME_SERVER beats it, --server beats GAME_SERVER.
            r = run_game(["score", "6"], home, env={"GAME_SERVER": "127.0.0.1:1"})
            self.assertNotEqual(r.returncode, OK)
            r = run_game(["--server", endpoint(self.server), "score", "7"], home,
                         env={"GAME_SERVER": "127.0.0.1:1"})
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.scores(uuid), [5, 7])

    def test_game_host_key_is_required_and_beats_the_config(self):
        with Home() as home:
            self.assertEqual(play(self.server, home, "score", "1").returncode, OK)
            before = home.read_config()
            wrong = "SHA256:" + "B" * 43
            r = run_game(["score", "2"], home, env={"GAME_HOST_KEY": wrong})
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn(wrong, r.stderr)
            r = run_game(["--host-key", self.server.host_key_fingerprint(), "score", "3"], home,
                         env={"GAME_HOST_KEY": wrong})
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(self.server.scores(uuid_of(home)), [1, 3])
            self.assertEqual(home.read_config(), before)

    def test_game_timeout_is_checked_like_the_option(self):
        with Home() as home:
            r = run_game(["--dry-run", "score", "1"], home, env={"GAME_TIMEOUT": "soon"})
            self.assertEqual(r.returncode, USAGE)
            self.assertEqual(r.stderr, "game: GAME_TIMEOUT=soon: not a number of seconds\n")
            r = run_game(["--timeout", "5", "--dry-run", "score", "1"], home, env={"GAME_TIMEOUT": "soon"})
            self.assertEqual(r.returncode, OK, r.stderr)

    def test_trust_with_host_key_pins_only_that_key_without_asking(self):
        with Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            before = home.read_config()
            r = run_game(["--host-key", "SHA256:" + "C" * 43, "trust", endpoint(self.server)], home)
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn("nothing recorded", r.stderr)
            self.assertEqual(home.read_config(), before)
            fingerprint = self.server.host_key_fingerprint()
            r = run_game(["--host-key", fingerprint, "trust", endpoint(self.server)], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(config_of(home)["servers"][endpoint(self.server)]["host_key"], fingerprint)

    def test_whoami_json_describes_the_identity_and_servers(self):
        with Home() as home:
            self.assertEqual(play(self.server, home, "score", "1").returncode, OK)
            r = run_game(["whoami", "--json"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(len(r.stdout.splitlines()), 1)
            info = json.loads(r.stdout)
            key = key_path_of(home)
            with open(key + ".pub") as f:
                public = f.read().strip()
            self.assertEqual(set(info), {"uuid", "fingerprint", "public_key", "config", "key", "servers"})
            self.assertEqual(info["uuid"], uuid_of(home))
            self.assertEqual(info["fingerprint"], ssh_keygen_fingerprint(key + ".pub"))
            self.assertEqual(info["public_key"], public)
            self.assertEqual((info["config"], info["key"]), (home.config_path, key))
            self.assertEqual(info["servers"], [{
                "name": endpoint(self.server), "default": True, "addresses": [endpoint(self.server)],
                "host_key": self.server.host_key_fingerprint(), "host_keys": {},
                "protocol": 1}])  # the ack server refuses game-v2: recorded as protocol 1


class Whoami(unittest.TestCase):
    def test_whoami_on_a_fresh_machine_creates_nothing_and_says_so(self):
        with Home() as home:
            for args in (["whoami"], ["whoami", "--json"]):
                r = run_game(args, home)
                self.assertEqual(r.returncode, CONFIG, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertTrue(one_line(r.stderr), r.stderr)
                self.assertIn("no identity yet", r.stderr)
                self.assertIn("game init", r.stderr)
                self.assertEqual(os.listdir(home.path), [])


class OnATerminal(SharedServerTestCase):
    def run_on_terminal(self, home, args, **streams):
        return Terminal([game_bin(), *args], terminal_env(home), **streams)

    def test_batch_reading_a_terminal_says_so_then_sends_what_was_typed(self):
        with Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            term = self.run_on_terminal(home, ["--server", endpoint(self.server), "batch"])
            term.expect(rb"game: reading batch lines from the terminal; Ctrl-D ends")
            term.send(b"score 12\nsetname Zo\xc3\xab\n")
            term.send(b"\x04")
            self.assertEqual(term.finish(), OK, term.shown)
            self.assertEqual(self.server.scores(uuid_of(home)), [12])
            self.assertEqual(self.server.names(uuid_of(home)), ["Zoë"])

    def test_no_hint_when_stdin_is_not_a_terminal_or_with_quiet(self):
        with Home() as home:
            r = play(self.server, home, "batch", input="score 1\n")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertNotIn("terminal", r.stderr)
            term = self.run_on_terminal(home, ["-q", "--server", endpoint(self.server), "batch"])
            term.send(b"score 2\n\x04")
            self.assertEqual(term.finish(), OK, term.shown)
            self.assertNotIn(b"terminal", term.shown)
            self.assertEqual(self.server.scores(uuid_of(home)), [1, 2])

    def test_identity_import_from_a_terminal_says_what_it_waits_for(self):
        with Home() as home, Home() as other:
            self.assertEqual(run_game(["init"], other).returncode, OK)
            blob = run_game(["identity", "export"], other).stdout
            term = self.run_on_terminal(home, ["identity", "import"])
            term.expect(rb"game: paste the exported identity, then press Ctrl-D")
            term.send(blob.encode() + b"\x04")
            self.assertEqual(term.finish(), OK, term.shown)
            self.assertEqual(uuid_of(home), uuid_of(other))

    def test_success_on_a_terminal_is_confirmed_in_one_line(self):
        with Home() as home:
            self.assertEqual(play(self.server, home, "score", "1").returncode, OK)
            name = endpoint(self.server)
            term = self.run_on_terminal(home, ["score", "789"])
            self.assertEqual(term.finish(), OK, term.shown)
            self.assertEqual(term.shown, f"score 789 accepted by {name}\r\n".encode())
            term = self.run_on_terminal(home, ["setname", "Zoë"])
            self.assertEqual(term.finish(), OK, term.shown)
            self.assertEqual(term.shown, f"name Zoë accepted by {name}\r\n".encode())
            self.assertEqual(self.server.scores(uuid_of(home)), [1, 789])

    def test_scripts_and_quiet_get_no_confirmation(self):
        with Home() as home:
            self.assertEqual(play(self.server, home, "score", "1").returncode, OK)
            r = run_game(["score", "2"], home)  # stdout is a pipe
            self.assertEqual((r.returncode, r.stdout, r.stderr), (OK, "", ""))
            term = self.run_on_terminal(home, ["-q", "score", "3"])
            self.assertEqual(term.finish(), OK, term.shown)
            self.assertEqual(term.shown, b"")
            # stderr alone on the terminal: the confirmation belongs to stdout, which is a pipe.
            term = self.run_on_terminal(home, ["score", "4"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
            self.assertEqual(term.finish(), OK, term.shown)
            with term.proc.stdout as stdout:
                self.assertEqual((term.shown, stdout.read()), (b"", b""))
            self.assertEqual(self.server.scores(uuid_of(home)), [1, 2, 3, 4])


if __name__ == "__main__":
    unittest.main()
