"""Issue: the player's identity is safe, portable and shared across games; several servers."""

import concurrent.futures
import glob
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

from gamehelpers import (CONFIG, NOPERM, OK, USAGE, config_of, endpoint, key_path_of, mode_of, play,
                         ssh_keygen_fingerprint, uuid_of)
from harness import Home, Server, game_bin, run_game


def keygen(path, kind, passphrase="", cipher=None):
    args = ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-f", path] + (["-Z", cipher] if cipher else [])
    if kind == "rsa":
        args += ["-b", "3072"]
    subprocess.run(args, check=True, timeout=60, stdin=subprocess.DEVNULL)
    return path


class ConfigSafety(unittest.TestCase):
    def test_hand_written_config_survives_tofu_recording_byte_for_byte(self):
        with Server(mode="ack") as server, Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            generated = home.read_config()
            uuid = uuid_of(home)
            hand_written = (
                "# My game settings -- edited by hand.\n"
                "default_server = \"arena\"   # where I usually play\n"
                "\n"
                f"[identity]\nuuid = \"{uuid}\"\nkey = \"~/.game/id_ed25519\"\n"
                "theme = \"dark\"  # a key game does not know\n"
                "\n"
                "# The arena server.\n"
                f"[servers.arena]\nport = {server.port}   # test port\n"
                "host = \"127.0.0.1\"\n"
                "# end of arena\n"
                "\n"
                "[servers.elsewhere]\nhost = \"192.0.2.1\"\n")
            home.write_config(hand_written)
            self.assertNotEqual(generated, hand_written)
            r = run_game(["score", "3"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            # Recorded beside the host key: the protocol the server speaks, and when that was found out.
            line = (f"host_key = \"{server.host_key_fingerprint()}\"\n"
                    "protocol = 1\nprotocol_checked = WHEN\n")
            expected = hand_written.replace("host = \"127.0.0.1\"\n", "host = \"127.0.0.1\"\n" + line)
            written = re.sub(r"(?m)^protocol_checked = \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$",
                             "protocol_checked = WHEN", home.read_config())
            self.assertEqual(written, expected)
            self.assertEqual(mode_of(home.config_path), 0o600)
            leftovers = [f for f in os.listdir(home.path) if ".tmp" in f]
            self.assertEqual(leftovers, [])

    def test_ten_parallel_first_runs_end_with_one_identity(self):
        with Server(mode="ack") as server, Home() as home:
            def run(i):
                return play(server, home, "score", str(i), timeout=120)
            with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
                results = list(pool.map(run, range(10)))
            for r in results:
                self.assertEqual(r.returncode, OK, r.stderr)
            created = [r for r in results if "created a new player identity" in r.stderr]
            self.assertEqual(len(created), 1)
            uuid = uuid_of(home)
            self.assertEqual(len(server.registrations()), 1)
            self.assertEqual(server.registrations(), [(uuid, ssh_keygen_fingerprint(key_path_of(home) + ".pub"))])
            self.assertEqual(sorted(server.scores(uuid)), list(range(10)))
            self.assertEqual(len(config_of(home)["servers"]), 1)

    def test_config_with_wrong_types_is_reported_and_left_alone(self):
        with Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            text = home.read_config() + "\n[servers.x]\nhost = 42\n"
            home.write_config(text)
            r = run_game(["--server", "x", "score", "1"], home)
            self.assertEqual(r.returncode, CONFIG, r.stderr)
            self.assertIn(f"{home.config_path}:", r.stderr)
            self.assertIn("servers.x.host must be a string", r.stderr)
            self.assertEqual(home.read_config(), text)


class Keys(unittest.TestCase):
    def test_adopt_existing_keys_of_each_type(self):
        with Server(mode="ack") as server:
            for kind in ("ed25519", "ecdsa", "rsa"):
                with self.subTest(kind=kind), Home() as home:
                    os.makedirs(os.path.join(home.path, ".ssh"), mode=0o700)
                    key = keygen(os.path.join(home.path, ".ssh", f"id_{kind}"), kind)
                    r = run_game(["init", "--key", "~/.ssh/id_" + kind], home)
                    self.assertEqual(r.returncode, OK, r.stderr)
                    self.assertEqual(config_of(home)["identity"]["key"], "~/.ssh/id_" + kind)
                    r = play(server, home, "score", "1")
                    self.assertEqual(r.returncode, OK, r.stderr)
                    uuid = uuid_of(home)
                    self.assertEqual(server.registrations(uuid), [(uuid, ssh_keygen_fingerprint(key + ".pub"))])
                    r = run_game(["init"], home)
                    self.assertEqual(r.returncode, CONFIG, "init must never replace an identity")
                    self.assertEqual(uuid_of(home), uuid)

    def test_encrypted_key_through_ssh_agent_and_a_clear_error_without_terminal(self):
        # aes256-gcm@openssh.com: a key libssh could not decrypt itself (test_harden), which the
        # agent signs with all the same.
        for cipher in ("aes256-ctr", "aes256-gcm@openssh.com"):
            with self.subTest(cipher=cipher):
                self.encrypted_key_through_ssh_agent(cipher)

    def encrypted_key_through_ssh_agent(self, cipher):
        with Server(mode="ack") as server, Home() as home:
            os.makedirs(os.path.join(home.path, ".ssh"), mode=0o700)
            key = keygen(os.path.join(home.path, ".ssh", "id_ed25519"), "ed25519", passphrase="correct horse",
                         cipher=cipher)
            # An unrelated key in the agent too: it must never be offered (it would register).
            other = keygen(os.path.join(home.path, ".ssh", "other"), "ed25519")
            self.assertEqual(run_game(["init", "--key", key], home).returncode, OK)

            r = subprocess.run([game_bin(), "--server", endpoint(server), "score", "1"], capture_output=True,
                               text=True, timeout=60, stdin=subprocess.DEVNULL, start_new_session=True,
                               env={"HOME": home.path, "PATH": os.environ["PATH"]})
            self.assertEqual(r.returncode, CONFIG, r.stderr)
            if cipher == "aes256-ctr":
                self.assertIn("passphrase-protected", r.stderr)
                self.assertIn("ssh-add", r.stderr)
            else:
                self.assertIn(f"is encrypted with {cipher}, which libssh cannot decrypt", r.stderr)

            agent_dir = tempfile.mkdtemp()
            sock = os.path.join(agent_dir, "agent.sock")
            agent = subprocess.Popen(["ssh-agent", "-D", "-a", sock], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
            try:
                env = {"SSH_AUTH_SOCK": sock, "HOME": home.path, "PATH": os.environ["PATH"]}
                for _ in range(100):
                    if os.path.exists(sock):
                        break
                    subprocess.run(["sleep", "0.05"])
                subprocess.run(["ssh-add", other], env=env, check=True, timeout=30, capture_output=True)
                askpass = os.path.join(agent_dir, "askpass")
                with open(askpass, "w") as f:
                    f.write("#!/bin/sh\necho 'correct horse'\n")
                os.chmod(askpass, 0o700)
                subprocess.run(["ssh-add", key], env={**env, "SSH_ASKPASS": askpass, "SSH_ASKPASS_REQUIRE": "force",
                                                      "DISPLAY": ":0"},
                               check=True, timeout=30, capture_output=True, stdin=subprocess.DEVNULL,
                               start_new_session=True)
                r = subprocess.run([game_bin(), "-v", "--server", endpoint(server), "score", "2"], capture_output=True,
                                   text=True, timeout=60, stdin=subprocess.DEVNULL, start_new_session=True, env=env)
                self.assertEqual(r.returncode, OK, r.stderr)
                self.assertIn("key in ssh-agent", r.stderr)
                uuid = uuid_of(home)
                self.assertEqual(server.registrations(), [(uuid, ssh_keygen_fingerprint(key + ".pub"))])
                self.assertEqual(server.scores(uuid), [2])
            finally:
                agent.terminate()
                agent.wait(timeout=10)
                shutil.rmtree(agent_dir, ignore_errors=True)

    def test_export_on_one_machine_import_on_another_is_the_same_player(self):
        with Server(mode="ack") as server, Home() as machine_a, Home() as machine_b:
            r = play(server, machine_a, "setname", "traveller")
            self.assertEqual(r.returncode, OK, r.stderr)
            uuid = uuid_of(machine_a)
            backup = os.path.join(machine_a.path, "backup.txt")
            r = run_game(["identity", "export", "-o", backup], machine_a)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(mode_of(backup), 0o600)
            with open(backup) as f:
                blob = f.read()
            self.assertIn(uuid, blob)
            r = run_game(["identity", "export", "-o", backup], machine_a)
            self.assertNotEqual(r.returncode, OK, "export must not overwrite a file")

            r = run_game(["identity", "import"], machine_b, input=blob)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(uuid_of(machine_b), uuid)
            self.assertEqual(mode_of(machine_b.config_path), 0o600)
            self.assertEqual(mode_of(key_path_of(machine_b)), 0o600)
            r = play(server, machine_b, "score", "42")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(len(server.registrations()), 1, "same player: no new registration")
            self.assertEqual(server.scores(uuid), [42])

    def test_import_refuses_to_replace_a_different_identity_unless_forced(self):
        with Home() as home, Home() as other:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            self.assertEqual(run_game(["init"], other).returncode, OK)
            blob = run_game(["identity", "export"], other).stdout
            mine = uuid_of(home)
            before = home.read_config()
            r = run_game(["identity", "import"], home, input=blob)
            self.assertEqual(r.returncode, CONFIG, r.stderr)
            self.assertIn("--force", r.stderr)
            self.assertEqual(home.read_config(), before)
            r = run_game(["identity", "import", "--force"], home, input=blob)
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(uuid_of(home), uuid_of(other))
            kept = glob.glob(home.config_path + ".replaced-*")
            self.assertEqual(len(kept), 1)
            with open(kept[0]) as f:
                self.assertEqual(f.read(), before)
            self.assertIn(mine, before)
            # The old key stays where the kept config names it; the new one has a path of its own.
            self.assertIn(f'key = "~/.game/id_ed25519"', before)
            self.assertTrue(os.path.exists(os.path.join(home.path, ".game", "id_ed25519")))
            self.assertNotEqual(key_path_of(home), os.path.join(home.path, ".game", "id_ed25519"))


class SeveralServers(unittest.TestCase):
    def test_named_servers_share_one_identity(self):
        with Server(mode="ack") as one, Server(mode="ack") as two, Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            with open(home.config_path, "a") as f:
                f.write(f'\n[servers.one]\nhost = "127.0.0.1"\nport = {one.port}\n'
                        f'\n[servers.two]\nhost = "127.0.0.1"\nport = {two.port}\n')
            for name, value in (("one", "1"), ("two", "2")):
                r = run_game(["--server", name, "score", value], home)
                self.assertEqual(r.returncode, OK, r.stderr)
            uuid = uuid_of(home)
            self.assertEqual(one.scores(uuid), [1])
            self.assertEqual(two.scores(uuid), [2])
            self.assertEqual(one.registrations()[0][1], two.registrations()[0][1])

    def test_failover_to_the_second_node_of_a_cluster(self):
        with Server(mode="ack") as first, Home() as home:
            first_port = first.port
            shared = tempfile.mkdtemp()
            try:
                state = os.path.join(shared, "state")
                first.copy_state_to(state)
                first.stop()  # node 1 is down: nothing listens on its port any more
                with Server(mode="ack", state_dir=state) as second:
                    self.assertEqual(run_game(["init"], home).returncode, OK)
                    with open(home.config_path, "a") as f:
                        f.write(f'\n[servers.cluster]\naddresses = ["127.0.0.1:{first_port}", "127.0.0.1:{second.port}"]\n'
                                f'host_key = "{second.host_key_fingerprint()}"\n')
                    r = run_game(["-v", "--timeout", "5", "--server", "cluster", "score", "9"], home)
                    self.assertEqual(r.returncode, OK, r.stderr)
                    self.assertIn(f"cannot connect to 127.0.0.1:{first_port}", r.stderr)
                    self.assertIn(f"connected to 127.0.0.1:{second.port}", r.stderr)
                    self.assertEqual(second.scores(uuid_of(home)), [9])
            finally:
                shutil.rmtree(shared, ignore_errors=True)

    def test_changed_host_key_is_refused_then_repinned_with_trust(self):
        with Home() as home:
            with Server(mode="ack") as old:
                port = old.port
                r = play(old, home, "score", "1")
                self.assertEqual(r.returncode, OK, r.stderr)
                name = endpoint(old)
            with Server(mode="ack", port=port) as new:
                r = play(new, home, "score", "2")
                self.assertEqual(r.returncode, NOPERM, r.stderr)
                self.assertIn(f"game trust {name}", r.stderr)
                r = subprocess.run([game_bin(), "trust", name], capture_output=True, text=True, timeout=60,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={"HOME": home.path, "PATH": os.environ["PATH"]})
                self.assertEqual(r.returncode, USAGE, "no terminal and no --yes: refuse")
                self.assertIn("--yes", r.stderr)
                r = run_game(["trust", "--yes", name], home)
                self.assertEqual(r.returncode, OK, r.stderr)
                self.assertIn(new.host_key_fingerprint(), r.stdout)
                self.assertIn("REPLACES", r.stdout)
                self.assertEqual(config_of(home)["servers"][name]["host_key"], new.host_key_fingerprint())
                r = play(new, home, "score", "3")
                self.assertEqual(r.returncode, OK, r.stderr)
                self.assertEqual(new.scores(uuid_of(home)), [3])


if __name__ == "__main__":
    unittest.main()
