"""Issue #6: nothing the client prints gives away the player's secrets.

Verbose sessions of every command (setname, score, batch, whoami, trust, a refused
authentication, a broken config, identity export to a file, identity import) are run and all
they print (stdout and stderr, as bytes) is searched for:
  - the private key file: its base64 body, in pieces of 24 characters;
  - the raw key material inside it (the ed25519 seed and 64-byte private key), as raw bytes,
    hex and base64 -- decoded from the OpenSSH format here, for an encrypted key from a
    decrypted copy;
  - the full text of the config file;
  - the passphrase of an encrypted key, typed on a pseudo-terminal (the client reads it from
    /dev/tty with echo off; everything the terminal shows is searched).
The search is shown to work: it finds the key lines in the exported identity file, the public
key that whoami prints, and a passphrase typed on the same terminal to a program that echoes.
"""

import base64
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import tempfile
import termios
import time
import unittest

from gamehelpers import CONFIG, NOPERM, OK, REJECTED, endpoint, key_path_of
from harness import HarnessError, Home, Server, game_bin, run_game, wait_exit

PASSPHRASE = "correct horse battery staple 7f3k"
WRONG_PASSPHRASE = "not-the-passphrase-Q9z"


# ---- what must never be printed -----------------------------------------------------------

def key_body(path):
    """The base64 lines of a PEM/OpenSSH private key file."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith("-----")]


def key_body_pieces(path, size=24):
    """The body cut into pieces of `size` characters (libssh writes it as one long line), so that
    a part of it printed is found too. Pieces that are part of the public key line (PATH.pub, which
    whoami prints: the file holds the public key too, at the same base64 alignment) are left out."""
    body = "".join(key_body(path))
    with open(path + ".pub") as f:
        public = f.read()
    pieces = {i: body[i:i + size] for i in range(0, len(body) - size + 1, size)}
    return {i: piece for i, piece in pieces.items() if piece not in public}


def openssh_private_material(path):
    """The secret byte strings inside an unencrypted OpenSSH private key: for ed25519 the 64-byte
    private key and its 32-byte seed; for other types the whole private section."""
    def strings(data, pos):
        while pos < len(data):
            (n,) = struct.unpack(">I", data[pos:pos + 4])
            yield data[pos + 4:pos + 4 + n]
            pos += 4 + n

    blob = base64.b64decode("".join(key_body(path)))
    magic = b"openssh-key-v1\0"
    assert blob.startswith(magic), "not an OpenSSH private key"
    header = strings(blob, len(magic))
    cipher, _kdf, _kdf_options = next(header), next(header), next(header)
    assert cipher == b"none", "decrypt the key first (ssh-keygen -p)"
    count_at = len(magic) + sum(4 + len(x) for x in (cipher, _kdf, _kdf_options))
    (count,) = struct.unpack(">I", blob[count_at:count_at + 4])
    rest = strings(blob, count_at + 4)
    for _ in range(count):
        next(rest)  # the public keys
    private = next(rest)
    fields = strings(private, 8)  # after two check integers
    if next(fields) == b"ssh-ed25519":
        next(fields)  # the public key
        secret = next(fields)
        return [secret, secret[:32]]
    return [private]


def encodings(secret):
    """The ways a byte string could show up in text output."""
    b64 = base64.b64encode(secret)
    return {secret, secret.hex().encode(), secret.hex().upper().encode(), b64, b64.rstrip(b"="),
            base64.urlsafe_b64encode(secret).rstrip(b"=")}


def found(haystack, needles):
    """Labels of the needles ({label: [bytes, ...]}) that occur in haystack (bytes)."""
    return sorted(label for label, forms in needles.items() if any(form in haystack for form in forms))


# ---- running the client ---------------------------------------------------------------------

def run_on_terminal(args, home, typed=None, timeout=60, program=None):
    """Runs the client (or `program`) on a new pseudo-terminal -- its controlling terminal and
    stdin/stdout/stderr, as at a shell -- and types `typed` (a str, or a list: one per prompt)
    once a prompt shows and the terminal no longer echoes. Returns (exit code, everything the terminal showed, whether echo
    was already off when the prompt appeared)."""
    argv = program or [game_bin(), *map(str, args)]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home.path, "LANG": "C.UTF-8",
           "TERM": "dumb"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: exec at once
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    shown = b""
    echo_off_at_prompt = None
    answers = [] if typed is None else [typed] if isinstance(typed, str) else list(typed)
    prompts_answered = 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                raise HarnessError(f"{argv!r} did not finish within {timeout}s; terminal showed:\n{shown!r}")
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.1))
            if ready:
                try:
                    chunk = os.read(fd, 4096)
                except OSError:  # EIO: the program has exited and closed the terminal
                    break
                if not chunk:
                    break
                shown += chunk
            if answers and (shown.count(b"passphrase") > prompts_answered or program):
                echo = bool(termios.tcgetattr(fd)[3] & termios.ECHO)
                if echo_off_at_prompt is None:
                    echo_off_at_prompt = not echo
                if not echo or program:
                    os.write(fd, answers.pop(0).encode() + b"\n")
                    prompts_answered = shown.count(b"passphrase")
    finally:
        os.close(fd)  # a child still at a prompt gets SIGHUP
        status = wait_exit(pid)
    return os.waitstatus_to_exitcode(status), shown, echo_off_at_prompt


class Secrets(unittest.TestCase):
    def setUp(self):
        self.outputs = []  # (label, bytes printed)

    def run_client(self, label, home, *args, expect=OK):
        r = run_game(list(args), home, input=b"", timeout=60)
        self.assertEqual(r.returncode, expect, f"{label}: {r.stderr.decode(errors='replace')}")
        self.outputs.append((label, r.stdout + r.stderr))
        return r

    def assertNothingLeaked(self, needles):
        for label, output in self.outputs:
            self.assertEqual(found(output, needles), [], f"`{label}` printed a secret:\n{output.decode(errors='replace')}")

    def needles_for(self, home, key_path=None, material_from=None):
        key_path = key_path or key_path_of(home)
        needles = {f"key file characters {i}-{i + 23}": [piece.encode()]
                   for i, piece in key_body_pieces(key_path).items()}
        for i, secret in enumerate(openssh_private_material(material_from or key_path)):
            needles[f"raw private key material #{i + 1} ({len(secret)} bytes)"] = encodings(secret)
        needles["config text"] = [home.read_config().encode()]
        return needles

    def test_verbose_sessions_print_no_key_material_and_no_config(self):
        with Server(mode="ack") as server, Home() as home, Home() as other, Home() as broken, Home() as restored:
            ep = endpoint(server)
            self.run_client("setname", home, "-v", "--server", ep, "setname", "Zoë")
            self.run_client("score", home, "-v", "score", "5")
            self.run_client("rejected score", home, "-v", "score", "-5", expect=REJECTED)
            batch = os.path.join(home.path, "lines.txt")
            with open(batch, "w") as f:
                f.write("score 1\nsetname batch player\nscore -2\n")
            self.run_client("batch", home, "-v", "batch", batch, expect=REJECTED)
            self.run_client("batch --json", home, "-v", "batch", "--json", batch, expect=REJECTED)
            whoami = self.run_client("whoami", home, "-v", "whoami")
            self.run_client("trust", home, "-v", "trust", "--yes")
            exported = os.path.join(home.path, "backup.txt")
            r = self.run_client("identity export", home, "-v", "identity", "export", "-o", exported)
            self.assertEqual(r.stdout, b"")
            needles = self.needles_for(home)

            # A refused authentication: the same UUID with another key.
            shutil.copy(home.config_path, other.config_path)
            os.makedirs(os.path.join(other.path, ".game"), mode=0o700)
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key_path_of(other)], check=True,
                           timeout=30, stdin=subprocess.DEVNULL)
            r = self.run_client("refused key", other, "-v", "score", "1", expect=NOPERM)
            self.assertIn(b"refused this identity's ssh-ed25519 key", r.stderr)

            # A config the client cannot parse (its error quotes the line and column).
            shutil.copytree(os.path.join(home.path, ".game"), os.path.join(broken.path, ".game"))
            broken.write_config(home.read_config() + "oops = = 1\n")
            os.chmod(broken.config_path, 0o600)
            self.run_client("broken config", broken, "-v", "score", "1", expect=CONFIG)

            self.run_client("identity import", restored, "-v", "identity", "import", exported)

            # The search works: it finds the key lines in the export, and the public key in
            # whoami's output.
            with open(exported, "rb") as f:
                self.assertEqual(len(found(f.read(), needles)), len(key_body_pieces(key_path_of(home))))
            with open(key_path_of(home) + ".pub") as f:
                public_blob = base64.b64decode(f.read().split()[1])
            self.assertEqual(found(whoami.stdout, {"public key": encodings(public_blob)}), ["public key"])

            self.assertNothingLeaked(needles)
            self.assertNothingLeaked(self.needles_for(other))
            self.assertNothingLeaked({"broken config text": [broken.read_config().encode()]})

    def test_passphrase_typed_on_the_terminal_is_never_shown(self):
        with Server(mode="ack") as server, Home() as home, Home() as restored:
            os.makedirs(os.path.join(home.path, ".ssh"), mode=0o700)
            key = os.path.join(home.path, ".ssh", "id_ed25519")
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", PASSPHRASE, "-f", key], check=True, timeout=30,
                           stdin=subprocess.DEVNULL)
            self.run_client("init --key", home, "-v", "init", "--key", key)
            plain = os.path.join(tempfile.mkdtemp(dir=home.path), "plain")
            shutil.copy(key, plain)
            subprocess.run(["ssh-keygen", "-q", "-p", "-P", PASSPHRASE, "-N", "", "-f", plain], check=True, timeout=30,
                           stdin=subprocess.DEVNULL, capture_output=True)

            code, shown, echo_off = run_on_terminal(["-v", "--server", endpoint(server), "score", "7"], home,
                                                    typed=PASSPHRASE)
            self.assertEqual(code, OK, shown)
            self.assertIn(b"Enter passphrase for", shown)
            self.assertTrue(echo_off, "echo must be off before the prompt shows")
            self.outputs.append(("score, passphrase typed", shown))

            code, shown, _ = run_on_terminal(["-v", "score", "8"], home, typed=[WRONG_PASSPHRASE] * 3)
            self.assertEqual(code, CONFIG, shown)
            self.assertIn(b"wrong passphrase", shown)
            self.outputs.append(("score, wrong passphrase typed", shown))

            exported = os.path.join(home.path, "backup.txt")
            self.run_client("identity export", home, "-v", "identity", "export", "-o", exported)
            code, shown, _ = run_on_terminal(["-v", "identity", "import", exported], restored, typed=PASSPHRASE)
            self.assertEqual(code, OK, shown)
            self.outputs.append(("identity import, passphrase typed", shown))
            self.run_client("whoami", home, "-v", "whoami")

            # The terminal capture would show an echoed passphrase: `read` echoes it.
            code, shown, _ = run_on_terminal([], home, typed=PASSPHRASE, program=["sh", "-c", "read line"])
            self.assertEqual(found(shown, {"passphrase": [PASSPHRASE.encode()]}), ["passphrase"])

            needles = self.needles_for(home, key_path=key, material_from=plain)
            needles["passphrase"] = [PASSPHRASE.encode()]
            needles["wrong passphrase"] = [WRONG_PASSPHRASE.encode()]
            self.assertNothingLeaked(needles)


if __name__ == "__main__":
    unittest.main()
