"""Issue #5: packages a user can install, and their man page and completions in sync with the CLI.

Packages: builds them (`cmake --build $GAME_BUILD_DIR --target package`), installs the .deb into a
scratch root with `dpkg -x`, unpacks the .tar.gz, runs the installed binaries and lints the .deb.

DocsInSync: walks `game --help` and `game SUB... --help` for every subcommand (CLI11's help
output) and checks that every subcommand and every option is described in packaging/game.1 (in the
section of its subcommand) and is offered by the bash, zsh and fish completions in
packaging/completions/. A new subcommand or option without documentation fails here.

ShellsCompleteServerNames: the real bash and zsh, interactive on a terminal, complete a server
name HOST:PORT from the config when TAB is typed.
"""

import glob
import gzip
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import unittest

from gamehelpers import Terminal, run_command
from harness import REPO, game_bin

PACKAGING = os.path.join(REPO, "packaging")
MAN_PAGE = os.path.join(PACKAGING, "game.1")
BASH = os.path.join(PACKAGING, "completions", "game.bash")
ZSH = os.path.join(PACKAGING, "completions", "_game")
FISH = os.path.join(PACKAGING, "completions", "game.fish")

# Where the packages put what (relative to the install prefix: /usr for the .deb).
INSTALLED = {
    "bin/game": None,
    "share/man/man1/game.1.gz": MAN_PAGE,
    "share/bash-completion/completions/game": BASH,
    "share/zsh/vendor-completions/_game": ZSH,
    "share/fish/vendor_completions.d/game.fish": FISH,
    "share/doc/game/README.md": os.path.join(REPO, "README.md"),
    "share/doc/game/LICENSE": os.path.join(REPO, "LICENSE"),
    "share/doc/game/copyright": os.path.join(PACKAGING, "copyright"),
    "share/doc/game/changelog.gz": None,
    "share/doc/game/licenses/README": os.path.join(PACKAGING, "licenses", "README"),
    "share/doc/game/licenses/BUILT-USING": None,
    "share/doc/game/licenses/libssh.copyright": os.path.join(PACKAGING, "licenses", "libssh.copyright"),
    "share/doc/game/licenses/LGPL-2.1.txt": os.path.join(PACKAGING, "licenses", "LGPL-2.1.txt"),
}


def read(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return f.read()


# --------------------------------------------------------------------------
# the command line, from CLI11's --help
# --------------------------------------------------------------------------

HELP_OPTIONS = {"-h", "--help"}  # every command has them; game(1) describes them once, in OPTIONS


def parse_help(text):
    """(option names, subcommand names) of one CLI11 --help page."""
    options, subcommands, section = [], [], None
    for line in text.splitlines():
        heading = re.match(r"^(Options|Positionals|Subcommands):$", line)
        if heading:
            section = heading.group(1)
        elif re.match(r"^  \S", line):  # an entry (continuation lines are indented further)
            first = line.split()[0]
            if section == "Options":
                options += [name for name in first.split(",") if name.startswith("-")]
            elif section == "Subcommands":
                subcommands.append(first)
        elif line.strip():
            section = None  # usage, description, footer
    return options, subcommands


def command_tree():
    """{(): options of game, ("batch",): options of batch, ("identity", "export"): ...} and
    {path: its subcommands}, from `game [PATH...] --help`."""
    options, children, todo = {}, {}, [()]
    while todo:
        path = todo.pop(0)
        r = run_command([game_bin(), *path, "--help"], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        if r.returncode != 0 or "Usage:" not in r.stdout:
            raise AssertionError(f"game {' '.join(path)} --help failed: {r.stdout}{r.stderr}")
        options[path], children[path] = parse_help(r.stdout)
        todo += [path + (child,) for child in children[path]]
    if len(options) < 2 or not children[()]:
        raise AssertionError("could not parse the subcommands out of game --help")
    return options, children


# --------------------------------------------------------------------------
# the man page
# --------------------------------------------------------------------------

def man_text(troff):
    """Troff source as the words a reader sees: font changes and escapes removed."""
    text = re.sub(r"\\f(\[[^]]*\]|\(..|.)", "", troff)
    text = text.replace("\\-", "-").replace("\\(em", "-").replace("\\&", "").replace('"', "")
    return text


def man_sections(troff):
    """[(macro, heading, body)] for each .SH and .SS of the page."""
    sections, current = [], None
    for line in troff.splitlines():
        m = re.match(r"^\.(SH|SS)\s+(.*)$", line)
        if m:
            current = [m.group(1), man_text(m.group(2)).strip(), []]
            sections.append(current)
        elif current is not None:
            current[2].append(line)
    return [(macro, heading, man_text("\n".join(body))) for macro, heading, body in sections]


def mentions(text, name):
    return re.search(r"(?<![\w-])" + re.escape(name) + r"(?![\w-])", text) is not None


class DocsInSync(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.options, cls.children = command_tree()
        cls.paths = [p for p in cls.options if p]
        cls.scratch = tempfile.mkdtemp(prefix="game-completion-")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def test_help_walk_found_the_known_commands(self):
        names = {" ".join(p) for p in self.paths}
        self.assertTrue({"setname", "score", "whoami", "batch"} <= names, names)
        self.assertIn("--server", self.options[()])

    # ---- man page ----------------------------------------------------------
    def test_man_page_describes_every_option_of_game(self):
        sections = man_sections(read(MAN_PAGE))
        options = [body for macro, heading, body in sections if macro == "SH" and heading == "OPTIONS"]
        self.assertEqual(len(options), 1, "game.1 needs one .SH OPTIONS section")
        missing = [o for o in self.options[()] if not mentions(options[0], o)]
        self.assertEqual(missing, [], "options of game missing from game.1's OPTIONS section")

    def test_man_page_has_a_section_for_every_subcommand_with_its_options(self):
        sections = man_sections(read(MAN_PAGE))
        headings = [(heading, body) for macro, heading, body in sections if macro == "SS"]
        for path in self.paths:
            words = " ".join(path)
            own = []
            for heading, body in headings:
                rest = heading[len(words):].split()
                if heading == words or (heading.startswith(words + " ") and
                                        (not rest or rest[0] not in self.children[path])):
                    own.append(body)
            documented = [h for h, _ in headings if h == words or h.startswith(words + " ")]
            with self.subTest(command=words):
                self.assertTrue(documented, f"game.1 has no .SS section for `game {words}`")
                options = [o for o in self.options[path] if o not in HELP_OPTIONS]
                if options or not self.children[path]:
                    self.assertEqual(len(own), 1, f"game.1 needs one .SS section for `game {words}`")
                    missing = [o for o in options if not mentions(own[0], o)]
                    self.assertEqual(missing, [], f"options of `game {words}` missing from its section")
        self.assertTrue(any(mentions(body, "--help") for _, heading, body in sections if heading == "OPTIONS"))

    def test_man_page_names_the_current_version(self):
        version = run_command([game_bin(), "--version"]).stdout.split()[1]
        th = re.search(r'^\.TH GAME 1 \S+ "game ([^"]+)"', read(MAN_PAGE), re.M)
        self.assertIsNotNone(th, "game.1 needs a .TH line")
        self.assertEqual(th.group(1), version, "update the .TH line of packaging/game.1")

    def test_man_page_renders_without_warnings(self):
        if not shutil.which("man"):
            self.fail("man (man-db) is not installed: run scripts/install-deps")
        r = run_command(["man", "--warnings", "-E", "UTF-8", "-l", MAN_PAGE],
                env={"LC_ALL": "C.UTF-8", "MANWIDTH": "80", "PATH": os.environ.get("PATH", "")})
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stderr.strip(), "")
        self.assertIn("game - play on SSH-key game servers", r.stdout)

    # ---- bash --------------------------------------------------------------
    def bash_complete(self, *words, env=None):
        script = ('source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); '
                  'COMPREPLY=(); _game; printf "%s\\n" "${COMPREPLY[@]}"')
        full_env = {"PATH": os.environ.get("PATH", ""), "HOME": self.scratch}
        full_env.update(env or {})
        r = run_command(["bash", "--norc", "--noprofile", "-c", script, "bash", BASH, "game", *words], env=full_env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return set(r.stdout.split())

    def test_bash_completion_offers_every_subcommand_and_option(self):
        for path in [()] + self.paths:
            with self.subTest(command=" ".join(path)):
                offered = self.bash_complete(*path, "-")
                self.assertEqual(sorted(set(self.options[path]) - offered), [], f"options after `game {' '.join(path)}`")
                if self.children[path]:
                    offered = self.bash_complete(*path, "")
                    self.assertEqual(sorted(set(self.children[path]) - offered), [])

    def test_bash_completion_offers_server_names_from_the_config(self):
        config = os.path.join(self.scratch, "bash.gameconfig")
        with open(config, "w") as f:
            f.write('[identity]\nuuid = "x"\nkey = "k"\n[servers.arena]\nhost = "a"\n'
                    '[servers."127.0.0.1:9022"]\nhost_key = "SHA256:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"\n')
        self.assertEqual(self.bash_complete("--server", "", env={"GAME_CONFIG": config}),
                         {"arena", "127.0.0.1:9022"})
        self.assertEqual(self.bash_complete("--config", config, "trust", "ar"), {"arena"})

    # ---- fish --------------------------------------------------------------
    def fish_complete(self, line):
        if not shutil.which("fish"):
            self.fail("fish is not installed: run scripts/install-deps")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": self.scratch,
               "XDG_CONFIG_HOME": os.path.join(self.scratch, "config"),
               "XDG_DATA_HOME": os.path.join(self.scratch, "data")}
        r = run_command(["fish", "--no-config", "-c", f"source {FISH}; complete -C {shlex_quote(line)}"], env=env)
        self.assertEqual(r.returncode, 0, r.stderr)
        return {entry.split("\t")[0] for entry in r.stdout.splitlines()}

    def test_fish_completion_offers_every_subcommand_and_option(self):
        self.assertEqual(run_command(["fish", "--no-execute", FISH]).returncode, 0)
        for path in [()] + self.paths:
            prefix = " ".join(("game",) + path) + " "
            with self.subTest(command=prefix):
                offered = self.fish_complete(prefix + "-")
                self.assertEqual(sorted(set(self.options[path]) - offered), [], f"options after `{prefix}`")
                if self.children[path]:
                    offered = self.fish_complete(prefix)
                    self.assertEqual(sorted(set(self.children[path]) - offered), [])

    # ---- zsh ---------------------------------------------------------------
    def test_zsh_completion_names_every_subcommand_and_option(self):
        if not shutil.which("zsh"):
            self.fail("zsh is not installed: run scripts/install-deps")
        r = run_command(["zsh", "-n", ZSH])
        self.assertEqual(r.returncode, 0, r.stderr)
        text = read(ZSH)
        self.assertTrue(text.startswith("#compdef game"))
        for path in [()] + self.paths:
            with self.subTest(command=" ".join(path)):
                for name in self.options[path] + self.children[path]:
                    # In _arguments specs an option reads like '--name[', '--name=[' or {-n,--name}.
                    self.assertTrue(mentions(text, name) or f"'{name}:" in text or f"{name}+" in text,
                                    f"_game does not offer {name} (game {' '.join(path)})")


class ShellsCompleteServerNames(unittest.TestCase):
    """TAB typed into an interactive bash and zsh on a pseudo-terminal. `game` there is a shell
    function printing its arguments, so what the line held when Enter was typed is what the
    terminal shows back (completion applies to a function of that name as to the executable)."""

    CONFIG = ('[identity]\nuuid = "x"\nkey = "k"\n[servers.arena]\nhost = "a"\n'
              '[servers."127.0.0.1:9022"]\nhost_key = "SHA256:x"\n')
    # Prints ARGS<...>: the terminal echoes what is typed, which must not match by itself.
    SHOW_ARGS = "game() { printf 'A%sS<%s>\\n' RG \"$*\"; }"

    def setUp(self):
        self.home = tempfile.mkdtemp(prefix="game-shell-")
        self.addCleanup(shutil.rmtree, self.home, True)
        config = os.path.join(self.home, ".gameconfig")
        with open(config, "w") as f:
            f.write(self.CONFIG)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": self.home, "TERM": "xterm",
                    "LANG": "C.UTF-8", "GAME_CONFIG": config, "PS1": "$ ", "PROMPT": "$ "}

    def complete(self, shell, setup, typed):
        """The arguments `game` received after `typed` (with its TABs) and Enter."""
        term = Terminal(shell, self.env)
        try:
            term.send(setup.encode() + b"\n")
            term.send(b"echo READ''Y\n")
            term.expect(rb"READY")
            term.send(typed.encode())
            time.sleep(0.5)  # the shell completes the line, then Enter runs it
            term.send(b"\n")
            shown = term.expect(rb"ARGS<([^>]*)>").group(1).decode()
            term.send(b"exit\n")
        finally:
            if term.proc.poll() is None:
                term.proc.kill()
            term.finish(timeout=10)
        return shown

    def bash(self, typed):
        return self.complete(["bash", "--norc", "--noprofile", "-i"], f"source {BASH}; {self.SHOW_ARGS}", typed)

    def zsh(self, typed):
        completions = os.path.dirname(ZSH)
        return self.complete(["zsh", "-f", "-i"],
                             f"fpath=({completions} $fpath); autoload -Uz compinit; compinit -u -D; "
                             f"{self.SHOW_ARGS}", typed)

    def test_bash_completes_a_host_port_name_before_and_after_the_colon(self):
        self.assertEqual(self.bash("game trust 127\t"), "trust 127.0.0.1:9022")
        self.assertEqual(self.bash("game --server 127.0.0.1:90\t score 1"), "--server 127.0.0.1:9022 score 1")
        self.assertEqual(self.bash("game trust ar\t"), "trust arena")

    def test_zsh_completes_a_host_port_name_whole(self):
        self.assertEqual(self.zsh("game trust 127\t"), "trust 127.0.0.1:9022")
        self.assertEqual(self.zsh("game --server 127.0.0.1:90\t score 1"), "--server 127.0.0.1:9022 score 1")
        self.assertEqual(self.zsh("game trust ar\t"), "trust arena")


def shlex_quote(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


# --------------------------------------------------------------------------
# the packages
# --------------------------------------------------------------------------

class Packages(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        build = os.environ.get("GAME_BUILD_DIR")
        if not build or not os.path.isfile(os.path.join(build, "CMakeCache.txt")):
            raise AssertionError("GAME_BUILD_DIR must name the CMake build directory")
        cls.static = os.environ.get("GAME_STATIC", "1") not in ("", "0")
        out = os.path.join(build, "packages")
        shutil.rmtree(out, ignore_errors=True)
        r = run_command(["cmake", "--build", build, "--target", "package"], timeout=1800)
        if r.returncode != 0:
            raise AssertionError(f"building the packages failed:\n{r.stdout[-5000:]}\n{r.stderr[-5000:]}")
        debs = glob.glob(os.path.join(out, "game_*.deb"))
        tarballs = glob.glob(os.path.join(out, "game-*.tar.gz"))
        if len(debs) != 1 or len(tarballs) != 1:
            raise AssertionError(f"expected one .deb and one .tar.gz in {out}: {os.listdir(out)}")
        cls.deb, cls.tarball = debs[0], tarballs[0]
        cls.scratch = tempfile.mkdtemp(prefix="game-packages-")
        cls.deb_root = os.path.join(cls.scratch, "deb")
        r = run_command(["dpkg", "-x", cls.deb, cls.deb_root])
        if r.returncode != 0:
            raise AssertionError(f"dpkg -x failed: {r.stderr}")
        cls.tar_root = os.path.join(cls.scratch, "tar")
        with tarfile.open(cls.tarball) as t:
            t.extractall(cls.tar_root, filter="tar") if hasattr(tarfile, "tar_filter") else t.extractall(cls.tar_root)
        tops = os.listdir(cls.tar_root)
        if len(tops) != 1:
            raise AssertionError(f"the .tar.gz should hold one top directory, not {tops}")
        cls.tar_prefix = os.path.join(cls.tar_root, tops[0])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.scratch, ignore_errors=True)

    def run_installed(self, binary, *args):
        return run_command([binary, *args], env={"PATH": "/usr/bin:/bin"})

    def check_tree(self, prefix):
        for relative, source in INSTALLED.items():
            path = os.path.join(prefix, relative)
            with self.subTest(file=relative):
                self.assertTrue(os.path.isfile(path), f"{relative} is missing")
                if source:
                    self.assertEqual(read(path), read(source), f"{relative} differs from {source}")

    def check_binary(self, binary):
        version = self.run_installed(binary, "--version")
        self.assertEqual(version.returncode, 0, version.stderr)
        self.assertRegex(version.stdout, r"^game \S+ \(libssh \S+, OpenSSL ")
        dry = self.run_installed(binary, "--dry-run", "score", "5")
        self.assertEqual(dry.returncode, 0, dry.stderr)
        expected = run_command([game_bin(), "--dry-run", "score", "5"]).stdout
        self.assertEqual(dry.stdout, expected)
        self.assertRegex(dry.stdout, r"^[0-9a-f]+\n$")
        described = run_command(["file", "-L", binary]).stdout
        self.assertRegex(described, r", stripped$|, stripped\n", described)
        if self.static:
            self.assertIn("static-pie linked", described)

    def test_deb_installs_into_a_scratch_root_and_runs(self):
        self.check_tree(os.path.join(self.deb_root, "usr"))
        self.check_binary(os.path.join(self.deb_root, "usr", "bin", "game"))

    def test_deb_control_fields(self):
        fields = run_command(["dpkg-deb", "--field", self.deb]).stdout
        self.assertRegex(fields, r"(?m)^Package: game$")
        self.assertRegex(fields, r"(?m)^Maintainer: .+ <.+@.+>$")
        self.assertNotRegex(fields, r"(?m)^Maintainer: .*@(example\.(org|com|net)|localhost)>",
                            "a placeholder maintainer address")
        self.assertRegex(fields, r"(?m)^Homepage: https://\S+$")
        if self.static:
            self.assertNotRegex(fields, r"(?m)^(Pre-)?Depends:", "a static executable depends on nothing")
        listing = run_command(["dpkg-deb", "--contents", self.deb]).stdout
        self.assertNotRegex(listing, r"\./usr/(lib|include)/", "only the executable and its docs")

    def test_tarball_holds_the_same_files_and_runs(self):
        self.check_tree(self.tar_prefix)
        self.check_binary(os.path.join(self.tar_prefix, "bin", "game"))

        def files(top):
            return sorted(os.path.relpath(os.path.join(d, f), top) for d, _, fs in os.walk(top) for f in fs)
        self.assertEqual(files(self.tar_prefix), files(os.path.join(self.deb_root, "usr")))

    def test_lintian_finds_no_error(self):
        if not shutil.which("lintian"):
            self.fail("lintian is not installed: run scripts/install-deps")
        # The deliberate exceptions are in packaging/lintian-overrides, each with its reason.
        r = run_command(["lintian", "--allow-root", "--display-info", "--fail-on", "error", self.deb], timeout=600)
        report = r.stdout + r.stderr
        errors = [line for line in report.splitlines() if line.startswith("E:")]
        self.assertEqual(errors, [], report)
        self.assertEqual(r.returncode, 0, report)


if __name__ == "__main__":
    unittest.main()
