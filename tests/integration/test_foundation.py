"""Issue: `game setname` and `game score` end to end against the Erlang reference server."""

import os
import shutil
import subprocess
import tempfile
import time
import unittest

from gamehelpers import (SharedServerTestCase, CONFIG, DATAERR, NOPERM, OK, REJECTED, USAGE, config_of, endpoint, key_path_of,
                         mode_of, play, request_vectors, ssh_keygen_fingerprint, uuid_of)
from harness import Home, Server, run_game


class FirstUseAndReuse(SharedServerTestCase):

    def test_first_run_creates_identity_and_registers_second_run_reuses_it(self):
        with Home() as home:
            first = play(self.server, home, "setname", "bob")
            self.assertEqual(first.returncode, OK, first.stderr)
            self.assertIn("created a new player identity", first.stderr)
            self.assertIn("trusting", first.stderr)

            uuid = uuid_of(home)
            self.assertRegex(uuid, r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
            key = key_path_of(home)
            self.assertEqual(mode_of(home.config_path), 0o600)
            self.assertEqual(mode_of(key), 0o600)
            with open(key) as f:
                self.assertTrue(f.read().startswith("-----BEGIN OPENSSH PRIVATE KEY-----"))
            fingerprint = ssh_keygen_fingerprint(key + ".pub")
            self.assertEqual(self.server.registrations(uuid), [(uuid, fingerprint)])
            with open(key, "rb") as f:
                key_bytes = f.read()

            second = play(self.server, home, "score", "789")
            self.assertEqual(second.returncode, OK, second.stderr)
            self.assertNotIn("created", second.stderr)
            self.assertEqual(uuid_of(home), uuid)
            with open(key, "rb") as f:
                self.assertEqual(f.read(), key_bytes, "the key must never be regenerated")
            self.assertEqual(len(self.server.registrations(uuid)), 1)
            self.assertEqual(self.server.names(uuid), ["bob"])
            self.assertEqual(self.server.scores(uuid), [789])
            self.assertEqual(len(self.server.connections(uuid)), 2)

            # The first server becomes the default: no --server needed any more.
            third = run_game(["score", "5"], home)
            self.assertEqual(third.returncode, OK, third.stderr)
            self.assertEqual(self.server.scores(uuid), [789, 5])

    def test_server_records_exactly_what_was_sent(self):
        with Home() as home:
            names = ["Zoë 🎮", "a" * 32, "with  two spaces"]
            scores = ["0", "-0", "9223372036854775807", "2147483647", "128", "1"]
            for name in names:
                r = play(self.server, home, "setname", name)
                self.assertEqual(r.returncode, OK, r.stderr)
            for score in scores:
                r = play(self.server, home, "score", score)
                self.assertEqual(r.returncode, OK, r.stderr)
            uuid = uuid_of(home)
            self.assertEqual(self.server.names(uuid), names)
            self.assertEqual(self.server.scores(uuid), [int(s) for s in scores])
            self.assertEqual(self.server.malformed(uuid), [])

    def test_whoami_shows_uuid_fingerprint_public_key_and_paths(self):
        with Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            r = run_game(["whoami"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            key = key_path_of(home)
            self.assertIn(uuid_of(home), r.stdout)
            self.assertIn(ssh_keygen_fingerprint(key + ".pub"), r.stdout)
            with open(key + ".pub") as f:
                self.assertIn(f.read().strip(), r.stdout)
            self.assertIn(home.config_path, r.stdout)
            self.assertIn(key, r.stdout)

    def test_config_location_from_flag_and_environment(self):
        with Home() as home:
            custom = os.path.join(home.path, "elsewhere", "game.toml")
            os.makedirs(os.path.dirname(custom))
            r = play(self.server, home, "--config", custom, "score", "1")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertTrue(os.path.exists(custom))
            self.assertFalse(os.path.exists(home.config_path))
            r = run_game(["whoami"], home, env={"GAME_CONFIG": custom})
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn(custom, r.stdout)
            self.assertFalse(os.path.exists(home.config_path))

    def test_rejected_requests_give_the_reason_and_exit_1(self):
        with Home() as home:
            r = play(self.server, home, "score", "-5")
            self.assertEqual(r.returncode, REJECTED, r.stderr)
            self.assertIn("rejected by the server: negative score", r.stderr)
            r = play(self.server, home, "setname", "a" * 33)
            self.assertEqual(r.returncode, REJECTED, r.stderr)
            self.assertIn("name longer than 32 characters", r.stderr)
            r = play(self.server, home, "setname", "")
            self.assertEqual(r.returncode, REJECTED, r.stderr)
            self.assertIn("empty name", r.stderr)
            self.assertEqual(self.server.rejections(uuid_of(home)),
                             ["negative score", "name longer than 32 characters", "empty name"])

    def test_a_uuid_whose_key_changed_is_refused_with_a_clear_message(self):
        with Home() as home:
            r = play(self.server, home, "score", "1")
            self.assertEqual(r.returncode, OK, r.stderr)
            key = key_path_of(home)
            os.remove(key)
            os.remove(key + ".pub")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True, timeout=30)
            r = play(self.server, home, "score", "2")
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn("refused this identity's ssh-ed25519 key: the UUID is registered there with a different key",
                          r.stderr)
            self.assertEqual(self.server.scores(uuid_of(home)), [1])

    def test_bad_command_line_values_are_usage_errors_and_touch_nothing(self):
        with Home() as home:
            for value in ["12abc", "1e3", "9223372036854775808", "-9223372036854775809", "18446744073709551616", ""]:
                r = play(self.server, home, "score", value)
                self.assertEqual(r.returncode, USAGE, f"{value!r}: {r.stderr}")
                self.assertIn("score", r.stderr)
            r = run_game(["frobnicate"], home)
            self.assertEqual(r.returncode, USAGE)
            r = run_game(["--timeout", "0", "score", "1"], home)
            self.assertEqual(r.returncode, USAGE)
            self.assertIn("--timeout", r.stderr)
            self.assertFalse(os.path.exists(home.config_path), "usage errors must not create an identity")

    def test_invalid_utf8_name_is_refused(self):
        with Home() as home:
            r = subprocess.run([os.environ["GAME_BIN"], "--dry-run", "setname", b"bad\xff"],
                               capture_output=True, timeout=30, env={"HOME": home.path})
            self.assertEqual(r.returncode, USAGE)
            self.assertIn(b"not valid UTF-8", r.stderr)


class DryRun(unittest.TestCase):
    def test_dry_run_prints_the_vector_bytes_and_sends_nothing(self):
        with Home() as home:
            checked = 0
            for description, expected in request_vectors():
                if "setUsername" in description:
                    name = description.split('"')[1]
                    args = ["setname", name]
                else:
                    value = description.split()[-1]
                    args = ["score", value]
                r = run_game(["--dry-run", *args], home)
                if args[-1] == "18446744073709551616":  # beyond int64: refused, never wrapped
                    self.assertEqual(r.returncode, USAGE, r.stderr)
                    self.assertIn("out of range", r.stderr)
                    self.assertEqual(r.stdout, "")
                    checked += 1
                    continue
                self.assertEqual(r.returncode, OK, r.stderr)
                self.assertEqual(r.stdout.strip(), expected, description)
                checked += 1
            self.assertEqual(checked, 16)
            self.assertEqual(os.listdir(home.path), [], "--dry-run must not create an identity")


class HostKeys(unittest.TestCase):
    def test_pinned_wrong_host_key_is_refused_and_nothing_is_sent(self):
        with Server(mode="ack") as server, Home() as home:
            wrong = "SHA256:" + "A" * 43
            r = play(server, home, "--host-key", wrong, "score", "7")
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn(wrong, r.stderr)
            self.assertIn(server.host_key_fingerprint(), r.stderr)
            self.assertEqual(server.connections(), [])
            self.assertEqual(server.scores(), [])
            self.assertEqual(server.registrations(), [], "no authentication may happen before the host key check")

            r = play(server, home, "--host-key", server.host_key_fingerprint(), "score", "7")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(server.scores(), [7])

    def test_pinned_key_in_config_is_checked_from_the_first_connection(self):
        with Server(mode="ack") as server, Home() as home:
            r = run_game(["init"], home)
            self.assertEqual(r.returncode, OK, r.stderr)
            with open(home.config_path, "a") as f:
                f.write(f'\n[servers.pinned]\nhost = "127.0.0.1"\nport = {server.port}\n'
                        f'host_key = "SHA256:{"B" * 43}"\n')
            before = home.read_config()
            r = run_game(["--server", "pinned", "score", "1"], home)
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn("HOST KEY MISMATCH", r.stderr)
            self.assertEqual(home.read_config(), before)
            self.assertEqual(server.scores(), [])

    def test_trust_on_first_use_then_a_changed_key_is_refused(self):
        with Home() as home:
            first = Server(mode="ack")
            first.start()
            port = first.port
            try:
                r = play(first, home, "score", "1")
                self.assertEqual(r.returncode, OK, r.stderr)
                self.assertIn(first.host_key_fingerprint(), r.stderr)
                recorded = config_of(home)["servers"][endpoint(first)]["host_key"]
                self.assertEqual(recorded, first.host_key_fingerprint())
            finally:
                first.stop()
            # Another server (another host key) now answers on the same address.
            with Server(mode="ack", port=port) as impostor:
                before = home.read_config()
                r = play(impostor, home, "score", "2")
                self.assertEqual(r.returncode, NOPERM, r.stderr)
                self.assertIn(recorded, r.stderr)
                self.assertIn(impostor.host_key_fingerprint(), r.stderr)
                self.assertEqual(impostor.connections(), [])
                self.assertEqual(home.read_config(), before)

    def test_ipv6_loopback_literal(self):
        with Server(mode="ack", bind="::1") as server, Home() as home:
            r = play(server, home, "score", "6")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(server.scores(), [6])
            self.assertIn(f"[::1]:{server.port}", config_of(home)["servers"])


def cpu_has_aes_and_clmul():
    with open("/proc/cpuinfo") as f:
        flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
    return "aes" in flags and "pclmulqdq" in flags


def keygen(kind, bits, path):
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-b", bits, "-N", "", "-f", path], check=True, timeout=60,
                   stdin=subprocess.DEVNULL)


class Algorithms(unittest.TestCase):
    """Every algorithm the client may negotiate works end to end: the static client's OpenSSL
    lists only the algorithms SSH needs (src/crypto_init.cc), so each one the client offers is
    tried against a server that offers nothing else of its type."""

    def score_with(self, algorithms, state_dir=None, user_key=None):
        with Server(mode="ack", algorithms=algorithms, state_dir=state_dir) as server, Home() as home:
            if user_key:
                key = os.path.join(home.path, "id_user")
                keygen(*user_key, key)
                self.assertEqual(run_game(["init", "--key", key], home).returncode, OK)
            r = play(server, home, "score", "5")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertEqual(server.scores(), [5])

    def test_each_cipher_offered(self):
        for cipher in ("aes256-gcm@openssh.com", "aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com",
                       "aes256-ctr", "aes192-ctr", "aes128-ctr"):
            with self.subTest(cipher=cipher):
                self.score_with({"cipher": [cipher]})

    def test_each_mac_with_a_cipher_that_needs_one(self):
        for mac in ("hmac-sha2-256-etm@openssh.com", "hmac-sha2-512-etm@openssh.com", "hmac-sha2-256",
                    "hmac-sha2-512"):
            with self.subTest(mac=mac):
                self.score_with({"cipher": ["aes128-ctr"], "mac": [mac]})

    def test_each_key_exchange(self):
        for kex in ("curve25519-sha256", "curve25519-sha256@libssh.org", "ecdh-sha2-nistp256", "ecdh-sha2-nistp384",
                    "ecdh-sha2-nistp521", "diffie-hellman-group14-sha256", "diffie-hellman-group16-sha512",
                    "diffie-hellman-group18-sha512", "diffie-hellman-group-exchange-sha256"):
            with self.subTest(kex=kex):
                self.score_with({"kex": [kex]})

    def test_each_host_and_user_key_type(self):
        # The server's public_key list is both what it signs with and what it accepts from users.
        for algorithm, kind, bits in (("ecdsa-sha2-nistp256", "ecdsa", "256"), ("ecdsa-sha2-nistp384", "ecdsa", "384"),
                                      ("ecdsa-sha2-nistp521", "ecdsa", "521"), ("rsa-sha2-256", "rsa", "2048"),
                                      ("rsa-sha2-512", "rsa", "2048")):
            with self.subTest(key=algorithm), tempfile.TemporaryDirectory(prefix="game-host-") as state:
                os.makedirs(os.path.join(state, "host"))
                keygen(kind, bits, os.path.join(state, "host", f"ssh_host_{kind}_key"))
                self.score_with({"public_key": [algorithm]}, state_dir=state, user_key=(kind, bits))

    def test_a_key_refused_by_a_server_that_does_not_take_its_kind_names_both_causes(self):
        with tempfile.TemporaryDirectory(prefix="game-host-") as state:
            os.makedirs(os.path.join(state, "host"))
            keygen("ecdsa", "256", os.path.join(state, "host", "ssh_host_ecdsa_key"))
            with Server(mode="ack", algorithms={"public_key": ["ecdsa-sha2-nistp256"]}, state_dir=state) as server, \
                    Home() as home:
                r = play(server, home, "score", "5")
                self.assertEqual(r.returncode, NOPERM, r.stderr)
                self.assertIn("refused this identity's ssh-ed25519 key: the UUID is registered there with a different "
                              "key (restore the original key, e.g. `game identity import`), or the server does not "
                              "accept this kind of key", r.stderr)
                self.assertEqual(server.scores(), [])


class Ciphers(unittest.TestCase):
    def test_aes_gcm_is_preferred_where_the_cpu_has_aes_instructions(self):
        expected = "aes256-gcm@openssh.com" if cpu_has_aes_and_clmul() else "chacha20-poly1305@openssh.com"
        with Server(mode="ack") as server, Home() as home:
            r = play(server, home, "-v", "score", "7")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn(f"(SSH handshake done, {expected})", r.stderr)
            self.assertEqual(server.scores(), [7])

    def test_a_server_without_aes_gcm_gets_chacha20_poly1305(self):
        with Server(mode="ack", algorithms={"cipher": ["chacha20-poly1305@openssh.com"]}) as server, Home() as home:
            r = play(server, home, "-v", "score", "8")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn("(SSH handshake done, chacha20-poly1305@openssh.com)", r.stderr)
            self.assertEqual(server.scores(), [8])


class ServersWithoutAcknowledgements(unittest.TestCase):
    def test_seed_server_delivered_not_acknowledged(self):
        with Server(mode="seed") as server, Home() as home:
            started = time.monotonic()
            r = play(server, home, "-v", "score", "789")
            elapsed = time.monotonic() - started
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn("delivered, not acknowledged", r.stderr)
            self.assertLess(elapsed, 5, "the original server closes on EOF: no waiting")
            server.wait_for_event("addScore")
            self.assertEqual(server.scores(), [789])
            self.assertEqual(server.malformed(), [])

    def test_silent_server_costs_the_grace_period_not_the_timeout(self):
        with Server(mode="silent") as server, Home() as home:
            started = time.monotonic()
            r = play(server, home, "-v", "--timeout", "30", "score", "5")
            elapsed = time.monotonic() - started
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertIn("delivered, not acknowledged", r.stderr)
            self.assertLess(elapsed, 10)
            self.assertEqual(server.scores(), [5])

    def test_acks_setting_skips_or_requires_the_wait(self):
        with Server(mode="silent") as server, Home() as home:
            r = play(server, home, "score", "1")
            self.assertEqual(r.returncode, OK, r.stderr)
            name = endpoint(server)
            text = home.read_config().replace(f'[servers."{name}"]\n', f'[servers."{name}"]\nacks = "no"\n')
            home.write_config(text)
            started = time.monotonic()
            r = play(server, home, "-v", "score", "2")
            self.assertEqual(r.returncode, OK, r.stderr)
            self.assertLess(time.monotonic() - started, 1.5)
            home.write_config(text.replace('acks = "no"', 'acks = "yes"'))
            r = play(server, home, "--timeout", "2", "score", "3")
            self.assertEqual(r.returncode, 75, r.stderr)
            self.assertIn("no acknowledgement", r.stderr)


class BrokenConfigs(unittest.TestCase):
    def test_missing_key_file_is_an_error_and_no_new_identity_is_made(self):
        with Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            key = key_path_of(home)
            os.remove(key)
            before = home.read_config()
            r = run_game(["whoami"], home)
            self.assertEqual(r.returncode, CONFIG, r.stderr)
            self.assertIn(key, r.stderr)
            self.assertIn("does not exist", r.stderr)
            self.assertFalse(os.path.exists(key))
            self.assertEqual(home.read_config(), before)

    def test_broken_toml_reports_line_and_column_and_is_left_untouched(self):
        with Home() as home:
            broken = '[identity]\nuuid = "0b3c5a52-7f0e-4f43-9d1c-2a8f6f3e9b10"\nkey = = "x"\n'
            home.write_config(broken)
            os.chmod(home.config_path, 0o600)
            r = run_game(["score", "1"], home)
            self.assertEqual(r.returncode, CONFIG, r.stderr)
            self.assertIn(f"{home.config_path}:3:7:", r.stderr)
            self.assertEqual(home.read_config(), broken)
            self.assertEqual(sorted(os.listdir(home.path)), [".gameconfig"])

    def test_files_readable_by_others_are_refused(self):
        with Home() as home:
            self.assertEqual(run_game(["init"], home).returncode, OK)
            os.chmod(home.config_path, 0o644)
            r = run_game(["whoami"], home)
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn("chmod 600", r.stderr)
            os.chmod(home.config_path, 0o600)
            os.chmod(key_path_of(home), 0o644)
            r = run_game(["whoami"], home)
            self.assertEqual(r.returncode, NOPERM, r.stderr)
            self.assertIn("private key", r.stderr)

    def test_home_unset_is_a_clear_error(self):
        r = subprocess.run([os.environ["GAME_BIN"], "whoami"], capture_output=True, text=True, timeout=30,
                           env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(r.returncode, CONFIG, r.stderr)
        self.assertIn("HOME is not set", r.stderr)


if __name__ == "__main__":
    unittest.main()
