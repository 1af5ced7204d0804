"""Integration-test harness for the `game` client (python3 stdlib only).

Environment:
  GAME_BIN              path of the client binary (needed by run_game)
  GAME_SERVER_EBIN      ebin dir produced by tests/server/build.sh OUTDIR
                        (OUTDIR/ebin). If unset, the server is built once per
                        test process into a temporary directory.
  GAME_SERVER_LAUNCHER  defaults to tests/server/game-server of this repo

Typical use:

    import unittest
    from harness import Server, Home, run_game

    class T(unittest.TestCase):
        def test_score(self):
            with Server(mode="ack") as srv, Home() as home:
                r = run_game(["--server", srv.address, "score", "789"], home)
                self.assertEqual(r.returncode, 0, r.stderr)
                self.assertEqual(srv.scores(), [789])

The server writes STATE/requests.log, one tab-separated event per line:
  connect     <conn-id> <uuid>
  register    <uuid> <SHA256:fingerprint>
  setUsername <conn-id> <uuid> <hex of the UTF-8 name>
  addScore    <conn-id> <uuid> <decimal value>
  rejected    <conn-id> <uuid> <reason>
  malformed   <conn-id> <uuid> <hex of the bytes>
  eof         <conn-id> <uuid>
  closed      <conn-id> <uuid>
  dropped     <conn-id> <uuid>    (drop:N, just before the TCP connection is killed)
  paused      <conn-id> <uuid>    (pause:N, when the channel stops reading)
conn-id is "<server OS pid>-<n>", n counting SSH connections from 1.
Request events are written before the response is sent; `closed` before
the server's CHANNEL_CLOSE (or when the client closed the channel).

The mnesia cluster (tests/server/game-cluster) is driven by Cluster:

    with Cluster(nodes=3) as c:   # own epmd + N mnesia nodes on free loopback ports
        c.ports, c.addresses      # [p1, ...], ["127.0.0.1:p1", ...]
        c.host_key                # "SHA256:..." presented by every node
        c.config_table("arena")   # TOML text of [servers.arena] with addresses + host_key
        c.kill(i); c.stop(i); c.start(i)   # SIGKILL / SIGTERM / restart node i (0-based)
        c.dump(i=None)            # list of dicts: the JSON lines of the database dump
        c.scores(uuid=None)       # [(uuid, value, stream_hex_or_None, seq_or_None)], commit order
        c.names(uuid=None)        # [(uuid, name)], last set name per uuid
        c.keys(uuid)              # [(ssh_pub_line "type base64", label)]

Its nodes speak protocol 1 on `game` (acknowledging, stored in mnesia) and
protocol 2 on `game-v2`; Cluster(fault=...) sets a protocol 2 fault knob
(see tests/server/README.md).

Modes (Server(mode=...)):
  ack      BER stream, one Response per Request; after the client's EOF:
           remaining responses, exit-status 0, channel close
  seed     like the production server: one Request per SSH data message,
           never replies; on EOF closes the channel without exit-status
  silent   logs requests, never replies, ignores EOF (never closes)
  stall    never reads (the SSH window stays shut), never replies or closes
  slow     ack, but one response every 0.5 s
  drop:N   ack for N requests, then kills the TCP connection (~0.2 s later)
  pause:N  ack for N requests, then stops reading/answering, never closes
  garbage  answers the first request with ff ff ff ff, then nothing
  huge     answers the first request with a Response header of ~2 GB
  extra    two responses per request
  refuse   the subsystem request fails
"""

import atexit
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SERVER_DIR = os.path.join(REPO, "tests", "server")

MODES = ("seed", "ack", "silent", "stall", "slow", "garbage", "huge",
         "extra", "refuse")  # plus "drop:N" and "pause:N"

_built_ebin = None
_build_lock = threading.Lock()
_servers = []  # every Server and Cluster of this process, closed at exit


@atexit.register
def _close_all_servers():
    # Servers only start()ed and stop()ped (never close()d) would otherwise
    # leave their temporary state directories behind.
    for srv in _servers:
        try:
            srv.close()
        except Exception:  # noqa: BLE001 - best effort at exit
            pass


class HarnessError(AssertionError):
    """A failure of the test environment (server did not start, timeout...).

    Derives from AssertionError so unittest reports it as a test failure
    with the message, not as an obscure error."""


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def free_port(host="127.0.0.1"):
    """A TCP port that was free on `host` a moment ago."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def launcher_path():
    return os.environ.get("GAME_SERVER_LAUNCHER") or os.path.join(SERVER_DIR, "game-server")


def server_ebin():
    """GAME_SERVER_EBIN, or a server built once for this process."""
    global _built_ebin
    env = os.environ.get("GAME_SERVER_EBIN")
    if env:
        if not os.path.isfile(os.path.join(env, "game_server.beam")):
            raise HarnessError(f"GAME_SERVER_EBIN={env} does not contain game_server.beam")
        return env
    with _build_lock:
        if _built_ebin is None:
            out = tempfile.mkdtemp(prefix="game-server-ebin-")
            r = subprocess.run(["bash", os.path.join(SERVER_DIR, "build.sh"), out],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=300)
            if r.returncode != 0:
                raise HarnessError(f"building the test server failed:\n{r.stdout}{r.stderr}")
            atexit.register(shutil.rmtree, out, True)
            _built_ebin = os.path.join(out, "ebin")
        return _built_ebin


def game_bin():
    path = os.environ.get("GAME_BIN")
    if not path:
        raise HarnessError("GAME_BIN is not set (path of the game client binary)")
    if not os.access(path, os.X_OK):
        raise HarnessError(f"GAME_BIN={path} is not an executable file")
    return path


def key_fingerprint(pub_path):
    """'SHA256:...' of a public key file, as ssh-keygen -lf prints it."""
    r = subprocess.run(["ssh-keygen", "-lf", pub_path],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise HarnessError(f"ssh-keygen -lf failed: {r.stderr}")
    return r.stdout.split()[1]


def public_key_line(pub_path):
    """'ssh-ed25519 AAAA...' of a public key file (no comment)."""
    with open(pub_path) as f:
        return " ".join(f.read().split()[:2])


def wait_exit(pid, timeout=30.0):
    """os.waitpid(pid, 0) with a deadline (wait_until): a child still running after `timeout`
    seconds is killed (SIGKILL), reaped and reported. Returns the wait status."""
    def reaped():
        done, status = os.waitpid(pid, os.WNOHANG)
        return (status,) if done else None  # a tuple: an exit status of 0 is an answer too

    try:
        return wait_until(reaped, timeout, interval=0.02, message=f"process {pid} to exit")[0]
    except HarnessError:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise


def wait_until(predicate, timeout=10.0, interval=0.05, message="condition"):
    """Polls predicate() until it returns a true value; returns that value.
    Raises HarnessError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HarnessError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


# --------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------

class Server:
    """The Erlang reference server (tests/server) as a child process.

    Server(mode="ack", state_dir=None, bind="127.0.0.1", subsystem=None, port=0, algorithms=None)

    mode      ack | seed | silent | stall | slow | drop:N | pause:N | garbage |
              huge | extra | refuse   (see the module doc)
    state_dir host key, users and requests.log live here; reuse it across
              restarts (users persist) or copy it (copy_state_to) to make a
              second node with the same host key and users. None: a
              temporary directory, removed by close() / the with-block.
    port      0: the OS picks one at the first start; restarts of the same
              object reuse the port it got.
    algorithms None: OTP's defaults; else {type: [names]} with the types of
              OTP's preferred_algorithms (cipher, mac, kex, public_key): only
              these are offered, OTP's defaults for the types not given.
    """

    def __init__(self, mode="ack", state_dir=None, bind="127.0.0.1", subsystem=None, port=0, algorithms=None):
        self.mode = mode
        self.algorithms = algorithms
        self.bind = bind
        self.subsystem = subsystem
        self.port = port or None
        self._requested_port = port
        self._own_state = state_dir is None
        self.state_dir = os.path.abspath(state_dir) if state_dir else \
            tempfile.mkdtemp(prefix="game-server-state-")
        self.proc = None
        self._stderr = None
        self._reader = None
        _servers.append(self)

    # ---- paths ----------------------------------------------------------
    @property
    def log_path(self):
        return os.path.join(self.state_dir, "requests.log")

    @property
    def users_path(self):
        return os.path.join(self.state_dir, "users")

    @property
    def host_key_path(self):
        return os.path.join(self.state_dir, "host", "ssh_host_ed25519_key")

    @property
    def stderr_path(self):
        """Human-readable server diagnostics (appended across restarts)."""
        return os.path.join(self.state_dir, "server.stderr")

    @property
    def address(self):
        return self.bind

    # ---- lifecycle ------------------------------------------------------
    def start(self, timeout=30):
        """Starts the server and waits for its READY line; sets .port."""
        if self.running():
            raise HarnessError("server already running")
        os.makedirs(self.state_dir, exist_ok=True)
        port = self.port if self.port else self._requested_port
        cmd = [launcher_path(), "--ebin", server_ebin(), "--state", self.state_dir,
               "--mode", self.mode, "--port", str(port or 0), "--bind", self.bind,
               "--exit-on-stdin-eof"]
        if self.subsystem:
            cmd += ["--subsystem", self.subsystem]
        if self.algorithms:
            cmd += ["--algorithms", ";".join(f"{t}={','.join(names)}" for t, names in self.algorithms.items())]
        self._stderr = open(self.stderr_path, "ab")
        # stdin is a pipe we never write to: if this test process dies, the
        # server sees EOF and exits instead of lingering.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, start_new_session=True)
        lines = queue.Queue()

        def reader(stream):
            # forwards stdout lines; keeps draining after READY
            for raw in iter(stream.readline, b""):
                lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
            lines.put(None)

        self._reader = threading.Thread(target=reader, args=(self.proc.stdout,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise HarnessError(f"server did not print READY within {timeout}s; "
                                   f"stdout={seen!r}\n{self.stderr_text()}")
            try:
                line = lines.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                rc = self.proc.wait(timeout=30)
                self._reap()
                raise HarnessError(f"server exited with {rc} before READY; stdout={seen!r}\n"
                                   f"{self.stderr_text()}")
            seen.append(line)
            if line.startswith("READY "):
                self.port = int(line.split()[1])
                return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=5.0):
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
            except ProcessLookupError:
                pass
        self._reap()

    def kill(self):
        """SIGKILL now."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=30)
        self._reap()

    def restart(self, timeout=30):
        """stop() and start() again on the same port with the same state."""
        self.stop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.start(timeout=max(1.0, deadline - time.monotonic()))
            except HarnessError:
                # port possibly not free yet
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    def _reap(self):
        if self.proc is not None:
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream:
                    try:
                        stream.close()
                    except OSError:
                        pass
        if self._reader is not None:
            self._reader.join(timeout=5)
            self._reader = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def close(self):
        """stop() and remove the state dir if the harness created it (else
        at exit of the test process at the latest)."""
        self.stop()
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self):
        if not self.running():
            self.start()
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<Server mode={self.mode} port={self.port} state={self.state_dir}>"

    # ---- state helpers --------------------------------------------------
    def copy_state_to(self, path):
        """Copies host key and users (not the log) to `path`, for a second
        node sharing host key and users: Server(state_dir=path)."""
        os.makedirs(path, exist_ok=True)
        shutil.copytree(os.path.join(self.state_dir, "host"), os.path.join(path, "host"),
                        dirs_exist_ok=True)
        if os.path.exists(self.users_path):
            shutil.copy2(self.users_path, os.path.join(path, "users"))
        return path

    def stderr_text(self):
        try:
            with open(self.stderr_path, "r", encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def host_key_fingerprint(self):
        """'SHA256:...' of the host key, as ssh-keygen -lf prints it."""
        return key_fingerprint(self.host_key_path + ".pub")

    def host_public_key(self):
        """'ssh-ed25519 AAAA...' of the host key (e.g. for known_hosts)."""
        return public_key_line(self.host_key_path + ".pub")

    def known_hosts_line(self):
        host = self.bind if self.port == 22 else f"[{self.bind}]:{self.port}"
        return f"{host} {self.host_public_key()}"

    # ---- log ------------------------------------------------------------
    def log(self):
        """All complete events of requests.log, each a list of fields."""
        try:
            with open(self.log_path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return []
        events = []
        for raw in data.split(b"\n")[:-1]:  # a partial last line is skipped
            events.append(raw.decode("utf-8", "replace").split("\t"))
        return events

    def events(self, kind=None, uuid=None):
        """Events of one kind (and user): uuid is field 2 for most events,
        field 1 for `register`."""
        out = []
        for e in self.log():
            if kind is not None and e[0] != kind:
                continue
            if uuid is not None:
                u = e[1] if e[0] == "register" else (e[2] if len(e) > 2 else None)
                if u != uuid:
                    continue
            out.append(e)
        return out

    def scores(self, uuid=None):
        """Recorded addScore values (ints), in order."""
        return [int(e[3]) for e in self.events("addScore", uuid)]

    def names(self, uuid=None):
        """Recorded setUsername names (decoded UTF-8), in order."""
        return [bytes.fromhex(e[3]).decode("utf-8") for e in self.events("setUsername", uuid)]

    def rejections(self, uuid=None):
        return [e[3] for e in self.events("rejected", uuid)]

    def malformed(self, uuid=None):
        return [bytes.fromhex(e[3]) for e in self.events("malformed", uuid)]

    def registrations(self, uuid=None):
        """[(uuid, 'SHA256:...')] of newly registered users, in order."""
        return [(e[1], e[2]) for e in self.events("register", uuid)]

    def connections(self, uuid=None):
        """[(conn_id, uuid)] for every subsystem channel opened, in order."""
        return [(e[1], e[2]) for e in self.events("connect", uuid)]

    def users(self):
        """{uuid: 'ssh-ed25519 AAAA...'} from STATE/users."""
        out = {}
        try:
            with open(self.users_path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3:
                        out.setdefault(parts[0], " ".join(parts[1:3]))
        except FileNotFoundError:
            pass
        return out

    def wait_for_log(self, predicate, timeout=10.0, message="log condition"):
        """Polls predicate(self.log()) until true."""
        return wait_until(lambda: predicate(self.log()), timeout=timeout, message=message)

    def wait_for_event(self, kind, count=1, timeout=10.0, uuid=None):
        """Waits until at least `count` events of `kind` are logged."""
        return wait_until(lambda: len(self.events(kind, uuid)) >= count and self.events(kind, uuid),
                          timeout=timeout, message=f"{count} {kind!r} event(s)")


# --------------------------------------------------------------------------
# Home
# --------------------------------------------------------------------------

class Home:
    """A temporary HOME directory for one client run (or several)."""

    def __init__(self, prefix="game-home-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    @property
    def config_path(self):
        return os.path.join(self.path, ".gameconfig")

    def read_config(self):
        with open(self.config_path, encoding="utf-8") as f:
            return f.read()

    def write_config(self, text):
        with open(self.config_path, "w", encoding="utf-8") as f:
            f.write(text)

    def exists(self, relpath):
        return os.path.exists(os.path.join(self.path, relpath))

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cleanup()
        return False

    def __repr__(self):
        return f"<Home {self.path}>"


# --------------------------------------------------------------------------
# the client
# --------------------------------------------------------------------------

def run_game(args, home, input=None, timeout=60, env=None):
    """Runs GAME_BIN with `args` and HOME=home.path.

    The environment is minimal (PATH, HOME, LANG=C.UTF-8) plus `env`; no
    SSH_AUTH_SOCK unless given in `env`. stdin is `input` (str, or bytes for
    binary I/O) or /dev/null. Returns a subprocess.CompletedProcess with
    stdout/stderr captured (str unless input is bytes). A timeout is raised
    as a HarnessError (a test failure) with the output so far."""
    full_env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": home.path if isinstance(home, Home) else str(home),
        "LANG": "C.UTF-8",
    }
    if env:
        full_env.update({k: v for k, v in env.items() if v is not None})
    cmd = [game_bin()] + [str(a) for a in args]
    binary = isinstance(input, (bytes, bytearray))
    kwargs = dict(env=full_env, capture_output=True, timeout=timeout, text=not binary)
    if input is None:
        kwargs["stdin"] = subprocess.DEVNULL
    else:
        kwargs["input"] = input
    if not binary:
        kwargs.update(encoding="utf-8", errors="replace")
    try:
        return subprocess.run(cmd, **kwargs)
    except subprocess.TimeoutExpired as e:
        raise HarnessError(
            f"{cmd!r} did not finish within {timeout}s\n"
            f"stdout: {_text(e.stdout)}\nstderr: {_text(e.stderr)}") from None


def _text(b):
    if b is None:
        return ""
    if isinstance(b, bytes):
        return b.decode("utf-8", "replace")
    return b


# --------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------

def cluster_launcher_path():
    return os.path.join(SERVER_DIR, "game-cluster")


class Cluster:
    """The reference server as a mnesia cluster (tests/server/game-cluster).

    Cluster(nodes=1, fault=None, state_dir=None, subsystem=None)

    fault      None or a protocol 2 fault knob of every node: "drop_before_result:N",
               "drop_after_result:N", "extra_result", "unknown_seq"
    state_dir  the cluster's state (cookie, host key, one directory per node); reuse
               it to restart a cluster with its data. None: a temporary directory,
               removed by close() / the with-block.
    """

    def __init__(self, nodes=1, fault=None, state_dir=None, subsystem=None):
        self.nodes = nodes
        self.fault = fault
        self.subsystem = subsystem
        self._own_state = state_dir is None
        self.state_dir = os.path.abspath(state_dir) if state_dir else \
            tempfile.mkdtemp(prefix="game-cluster-state-")
        self.ports = []
        self.proc = None
        self._lines = None
        self._lock = threading.Lock()
        _servers.append(self)

    # ---- lifecycle ------------------------------------------------------
    def launch(self, timeout=120):
        """Starts the launcher and waits for every node's READY line."""
        if self.proc is not None and self.proc.poll() is None:
            raise HarnessError("cluster already running")
        cmd = [sys.executable, cluster_launcher_path(), "--ebin", server_ebin(),
               "--state", self.state_dir, "--nodes", str(self.nodes)]
        if self.fault:
            cmd += ["--fault", self.fault]
        if self.subsystem:
            cmd += ["--subsystem", self.subsystem]
        os.makedirs(self.state_dir, exist_ok=True)
        self._stderr = open(os.path.join(self.state_dir, "launcher.stderr"), "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self._stderr, start_new_session=True)
        self._lines = queue.Queue()

        def reader(stream, lines):
            for raw in iter(stream.readline, b""):
                lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
            lines.put(None)

        threading.Thread(target=reader, args=(self.proc.stdout, self._lines), daemon=True).start()
        try:
            self.ports = [self._ready(timeout) for _ in range(self.nodes)]
        except HarnessError:
            self.close()
            raise
        return self

    def _line(self, timeout):
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise HarnessError(f"the cluster launcher did not answer within {timeout}s\n"
                               f"{self.stderr_text()}") from None
        if line is None:
            raise HarnessError(f"the cluster launcher exited\n{self.stderr_text()}")
        return line

    def _ready(self, timeout):
        line = self._line(timeout)
        if not line.startswith("READY "):
            raise HarnessError(f"cluster launcher: {line}\n{self.stderr_text()}")
        return int(line.split()[1])

    def _command(self, text):
        if self.proc is None or self.proc.poll() is not None:
            raise HarnessError(f"the cluster is not running\n{self.stderr_text()}")
        self.proc.stdin.write(text.encode() + b"\n")
        self.proc.stdin.flush()

    def kill(self, i):
        """SIGKILL node i."""
        self._simple(f"kill {int(i)}")

    def stop(self, i):
        """SIGTERM node i."""
        self._simple(f"stop {int(i)}")

    def start(self, i, timeout=120):
        """Restarts node i on its port; returns once it serves (tables loaded)."""
        with self._lock:
            self._command(f"start {int(i)}")
            self.ports[i] = self._ready(timeout)
        return self.ports[i]

    def _simple(self, cmd, timeout=60):
        with self._lock:
            self._command(cmd)
            line = self._line(timeout)
        if line != "OK":
            raise HarnessError(f"cluster launcher, {cmd!r}: {line}")

    def close(self):
        """Stops every node and epmd; removes the state dir if the harness made it."""
        if self.proc is not None:
            try:
                self.proc.stdin.close()  # EOF: the launcher stops its nodes and epmd
                self.proc.wait(timeout=60)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=30)
            self.proc.stdout.close()
            self._stderr.close()
            self.proc = None
        if self._own_state:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self):
        return self.launch()

    def __exit__(self, *exc):
        self.close()
        return False

    def __repr__(self):
        return f"<Cluster nodes={self.nodes} ports={self.ports} state={self.state_dir}>"

    # ---- addresses and keys ---------------------------------------------
    @property
    def addresses(self):
        return [f"127.0.0.1:{p}" for p in self.ports]

    @property
    def host_key_path(self):
        return os.path.join(self.state_dir, "host", "ssh_host_ed25519_key")

    @property
    def cookie_path(self):
        return os.path.join(self.state_dir, "cookie")

    def node_dir(self, i):
        return os.path.join(self.state_dir, f"node{i + 1}")

    @property
    def host_key(self):
        """'SHA256:...' of the one host key every node presents."""
        return key_fingerprint(self.host_key_path + ".pub")

    def host_public_key(self):
        """'ssh-ed25519 AAAA...' of that host key."""
        return public_key_line(self.host_key_path + ".pub")

    def config_table(self, name):
        """TOML text of [servers.NAME] naming every node and the pinned host key."""
        addrs = ", ".join(f'"{a}"' for a in self.addresses)
        sub = f'subsystem = "{self.subsystem}"\n' if self.subsystem else ""
        return (f"[servers.{name}]\naddresses = [{addrs}]\nhost_key = \"{self.host_key}\"\n"
                f"{sub}")

    def stderr_text(self, i=None):
        """The launcher's stderr, or node i's."""
        path = os.path.join(self.state_dir, "launcher.stderr") if i is None else \
            os.path.join(self.node_dir(i), "server.stderr")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # ---- database -------------------------------------------------------
    def dump(self, i=None, timeout=60):
        """The database as read on node i (default: the first running node):
        a list of dicts, one per JSON line (see tests/server/README.md)."""
        with self._lock:
            self._command("dump" if i is None else f"dump {int(i)}")
            lines = []
            while True:
                line = self._line(timeout)
                if line.startswith("ERROR "):
                    raise HarnessError(f"cluster launcher, dump: {line}")
                if line == "END":
                    break
                lines.append(line)
        # parsed only after END was read, so a bad line cannot leave the rest queued
        return [json.loads(line) for line in lines]

    @staticmethod
    def _rows(dump, table, uuid):
        return [d for d in dump if d["table"] == table and (uuid is None or d["uuid"] == uuid)]

    def scores(self, uuid=None, i=None):
        """[(uuid, value, stream_hex_or_None, seq_or_None)] in commit order."""
        rows = sorted(self._rows(self.dump(i), "score", uuid), key=lambda d: d["time"])
        return [(d["uuid"], d["value"], d["stream"], d["seq"]) for d in rows]

    def names(self, uuid=None, i=None):
        """[(uuid, name)]: the last name set, per uuid."""
        return [(d["uuid"], d["name"]) for d in self._rows(self.dump(i), "name", uuid)]

    def keys(self, uuid, i=None):
        """[("type base64", label)] of the account's keys, in the order added."""
        rows = self._rows(self.dump(i), "account", uuid)
        return [(k["key"], k["label"]) for d in rows for k in d["keys"]]
