"""Account keys with the real binary against the mnesia cluster (docs/keys.md): linking a second
device without moving a private key, listing, revoking, rotating (also when interrupted), and a
protocol 1 server, which supports none of it. Assertions are on what the database holds (the
cluster's dump), exit codes, messages and the files left behind."""

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import unittest

from gamehelpers import (NOPERM, OK, REJECTED, UNAVAILABLE, config_of, endpoint, key_path_of,
                         ssh_keygen_fingerprint, uuid_of)
from harness import Cluster, Home, Server, game_bin, public_key_line, run_game, wait_until

TMP = tempfile.mkdtemp(prefix="game-test-keys-")


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def last_line(r):
    lines = r.stdout.rstrip("\n").split("\n")
    return lines[-1]


def run_printed(command, home, timeout=60):
    """Runs a command line the client printed, as a shell would split it."""
    words = shlex.split(command)
    assert words[0] == "game", command
    return run_game(words[1:], home, timeout=timeout)


def set_arena(home, cluster):
    """Points the config's default server `arena` at the cluster's current addresses."""
    text = home.read_config()
    text = re.sub(r"\n\[servers\.arena\]\n.*", "", text, flags=re.S)
    if not text.startswith("default_server"):
        text = 'default_server = "arena"\n' + text
    home.write_config(text.rstrip("\n") + "\n\n" + cluster.config_table("arena"))


def player(cluster, prefix="game-keys-"):
    """A device that plays on `arena`: its identity, registered with one score."""
    home = Home(prefix=prefix)
    r = run_game(["init"], home)
    assert r.returncode == 0, r.stderr
    set_arena(home, cluster)
    r = run_game(["score", "10"], home)
    assert r.returncode == 0, r.stderr
    return home


def pub_of(home):
    return public_key_line(key_path_of(home) + ".pub")


def account_rows(cluster, key_line):
    return [d for d in cluster.dump() if d["table"] == "account" and
            any(k["key"] == key_line for k in d["keys"])]


class KeysTest(unittest.TestCase):
    cluster = None

    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster(nodes=1).launch()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def home(self, h):
        self.addCleanup(h.cleanup)
        return h

    def link(self, old):
        """Links a new device to `old`'s account the way a user would: each printed command
        pasted as printed. Returns (new home, the three runs)."""
        new = self.home(Home(prefix="game-keys-new-"))
        first = run_game(["link", "--label", "phone"], new)
        self.assertEqual(first.returncode, OK, first.stderr)
        second = run_printed(last_line(first), old)
        self.assertEqual(second.returncode, OK, second.stderr)
        third = run_printed(last_line(second), new)
        self.assertEqual(third.returncode, OK, third.stderr)
        return new, (first, second, third)

    def test_link_a_second_device_and_play_from_both_as_one_uuid(self):
        c = self.cluster
        old = self.home(player(c))
        u = uuid_of(old)
        new, runs = self.link(old)
        self.assertTrue(last_line(runs[0]).startswith("game key add --label phone 'ssh-ed25519 "))
        self.assertIn(" link --uuid " + u, last_line(runs[1]))
        self.assertEqual(uuid_of(new), u)
        new_key = os.path.join(new.path, ".game", "id_ed25519")
        self.assertEqual(key_path_of(new), new_key)
        # Only public data crossed: no run printed any part of either private key.
        secrets = []
        for path in (key_path_of(old), new_key):
            with open(path, encoding="utf-8") as f:
                secrets.append(f.read())
        bodies = [line for s in secrets for line in s.splitlines()[1:-1]]
        for r in runs:
            for out in (r.stdout, r.stderr):
                self.assertNotIn("PRIVATE KEY", out)
                for line in bodies:
                    self.assertNotIn(line, out)
        r = run_game(["score", "20"], new)
        self.assertEqual(r.returncode, OK, r.stderr)
        r = run_game(["score", "30"], old)
        self.assertEqual(r.returncode, OK, r.stderr)
        rows = account_rows(c, pub_of(new))
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["uuid"], u)
        self.assertEqual(sorted(k["key"] for k in rows[0]["keys"]), sorted([pub_of(old), pub_of(new)]))
        self.assertEqual(next(k["label"] for k in rows[0]["keys"] if k["key"] == pub_of(new)), "phone")
        self.assertEqual([v for _, v, _, _ in c.scores(u)], [10, 20, 30])

    def test_key_list_shows_fingerprints_labels_and_this_device(self):
        c = self.cluster
        old = self.home(player(c))
        new, _ = self.link(old)
        r = run_game(["key", "list"], new)
        self.assertEqual(r.returncode, OK, r.stderr)
        mine = ssh_keygen_fingerprint(key_path_of(new) + ".pub")
        theirs = ssh_keygen_fingerprint(key_path_of(old) + ".pub")
        lines = r.stdout.splitlines()
        self.assertIn(f"256 {mine} phone (ED25519)  (this device)", lines)
        self.assertEqual(len(lines), 2)
        self.assertTrue(any(line.startswith(f"256 {theirs} ") and "this device" not in line for line in lines))
        r = run_game(["key", "list", "--json"], old)
        self.assertEqual(r.returncode, OK, r.stderr)
        listed = json.loads(r.stdout)
        self.assertEqual(listed["uuid"], uuid_of(old))
        self.assertEqual({k["fingerprint"]: k["this_device"] for k in listed["keys"]}, {mine: False, theirs: True})
        self.assertEqual({k["public_key"] for k in listed["keys"]}, {pub_of(old), pub_of(new)})

    def test_remove_the_first_devices_key_from_the_second(self):
        c = self.cluster
        old = self.home(player(c))
        new, _ = self.link(old)
        lost = ssh_keygen_fingerprint(key_path_of(old) + ".pub")
        r = run_game(["key", "remove", lost], new)
        self.assertEqual(r.returncode, OK, r.stderr)
        self.assertEqual([k for k, _ in c.keys(uuid_of(new))], [pub_of(new)])
        r = run_game(["score", "99"], old)
        self.assertEqual(r.returncode, NOPERM, r.stderr)
        self.assertNotIn(99, [v for _, v, _, _ in c.scores(uuid_of(new))])
        r = run_game(["score", "11"], new)
        self.assertEqual(r.returncode, OK, r.stderr)

    def test_removing_the_last_key_is_refused_and_explained(self):
        c = self.cluster
        home = self.home(player(c))
        mine = ssh_keygen_fingerprint(key_path_of(home) + ".pub")
        r = run_game(["key", "remove", mine], home)
        self.assertEqual(r.returncode, REJECTED, r.stderr)
        self.assertIn("cannot remove the last key", r.stderr)
        self.assertIn("at least one key", r.stderr)
        self.assertEqual([k for k, _ in c.keys(uuid_of(home))], [pub_of(home)])
        r = run_game(["score", "12"], home)
        self.assertEqual(r.returncode, OK, r.stderr)

    def test_rotate_and_keep_playing(self):
        c = self.cluster
        home = self.home(player(c))
        u, old_key, old_pub = uuid_of(home), key_path_of(home), pub_of(home)
        before = home.read_config()
        r = run_game(["key", "rotate"], home)
        self.assertEqual(r.returncode, OK, r.stderr)
        self.assertNotEqual(key_path_of(home), old_key)
        self.assertEqual(uuid_of(home), u)
        self.assertEqual([k for k, _ in c.keys(u)], [pub_of(home)])
        self.assertNotEqual(pub_of(home), old_pub)
        identity = config_of(home)["identity"]
        self.assertEqual(set(identity), {"uuid", "key"})
        # Only the key line changed: comments and the server table are as they were.
        self.assertEqual([l for l in before.splitlines() if not l.startswith("key =")],
                         [l for l in home.read_config().splitlines() if not l.startswith("key =")])
        r = run_game(["score", "13"], home)
        self.assertEqual(r.returncode, OK, r.stderr)
        self.assertEqual([v for _, v, _, _ in c.scores(u)], [10, 13])

    def test_a_key_another_account_holds_is_refused(self):
        c = self.cluster
        a = self.home(player(c))
        b = self.home(player(c))
        r = run_game(["key", "add", "--label", "stolen", pub_of(b)], a)
        self.assertEqual(r.returncode, REJECTED, r.stderr)
        self.assertIn("refused the key", r.stderr)
        self.assertEqual([k for k, _ in c.keys(uuid_of(a))], [pub_of(a)])
        self.assertEqual([k for k, _ in c.keys(uuid_of(b))], [pub_of(b)])


class InterruptedRotation(unittest.TestCase):
    """The new key is committed and the client never hears of it (every node drops the
    connection before the result; the client is then killed, as a crash or a second Ctrl-C
    would): the device keeps a working identity, and running the command again finishes the
    rotation with the same new key."""

    def test_interrupted_rotation_leaves_a_working_identity_and_can_be_finished(self):
        state = tempfile.mkdtemp(prefix="state-", dir=TMP)
        with Cluster(nodes=1, state_dir=state) as c:
            home = player(c)
        self.addCleanup(home.cleanup)
        u, old_key = uuid_of(home), key_path_of(home)
        with Cluster(nodes=1, state_dir=state, fault="drop_before_result:1") as c:
            set_arena(home, c)
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home.path, "LANG": "C.UTF-8"}
            proc = subprocess.Popen([game_bin(), "key", "rotate"], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                wait_until(lambda: len(c.keys(u)) == 2, timeout=30, message="the new key committed")
            finally:
                proc.kill()
                proc.wait(timeout=30)
            keys = [k for k, _ in c.keys(u)]
        self.assertEqual(key_path_of(home), old_key)  # this device still plays with the old key
        pending = config_of(home)["identity"]["rotating_to"].replace("~", home.path, 1)
        self.assertIn(public_key_line(pending + ".pub"), keys)
        with Cluster(nodes=1, state_dir=state) as c:
            set_arena(home, c)
            r = run_game(["score", "14"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            r = run_game(["key", "rotate"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(key_path_of(home), pending)
            self.assertEqual([k for k, _ in c.keys(u)], [public_key_line(pending + ".pub")])
            self.assertEqual(set(config_of(home)["identity"]), {"uuid", "key"})
            r = run_game(["score", "15"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual([v for _, v, _, _ in c.scores(u)], [10, 14, 15])
        self.assertTrue(os.path.exists(old_key))  # never deleted: only off the account


class Protocol1Server(unittest.TestCase):
    """A server without protocol 2: every key command says so, exits 69, changes nothing."""

    def test_key_commands_fail_clearly_and_change_nothing(self):
        with Server(mode="ack") as server, Home() as home:
            r = run_game(["--server", endpoint(server), "--host-key", server.host_key_fingerprint(),
                          "score", "1"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            # The first run with --host-key recorded the server, its pin and default_server.
            self.assertIn("default_server", home.read_config())
            before = home.read_config()
            files = sorted(os.listdir(os.path.join(home.path, ".game")))
            other = public_key_line(key_path_of(home) + ".pub")
            for args in (["key", "list"], ["key", "rotate"], ["key", "remove", "SHA256:x"],
                         ["key", "add", other]):
                r = run_game(args, home)
                self.assertEqual(r.returncode, UNAVAILABLE, (args, r.stderr))
                self.assertIn("does not support account keys", r.stderr)
                self.assertEqual(home.read_config(), before)
                self.assertEqual(sorted(os.listdir(os.path.join(home.path, ".game"))), files)


if __name__ == "__main__":
    unittest.main()
