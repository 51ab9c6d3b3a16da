"""Every shell command the manual shows still works (so none goes stale).

The commands are the lines of the fenced ```bash blocks of README.md, docs/*.md,
sweeper/README.md and benchmarks/README.md (comments stripped, ``\\`` continuations joined,
``a && b`` split, leading ``VAR=value`` assignments dropped). Each one is checked cheaply:

* ``python train.py ...``: composed, not trained. A single run goes through the real CLI
  (``train.main``) in this process with ``--cfg job`` appended (``--help`` / ``--cfg`` ones as
  written); a multirun (``-m``) one is composed in MULTIRUN mode, as Hydra does before handing
  the config to the sweeper (Hydra refuses ``-m`` together with ``--cfg``). Both must succeed.
* ``python -m analysis ...``: run on a tiny real sweep (the documented sweep dirs replaced by
  it, ``--out`` by a temp dir); ``--help`` must exit 0.
* ``python -m lenet_lab.data`` on tiny data; ``python -m lab_optuna.schema URL`` on the tiny
  sweep's storage.
* ``python benchmarks/<script>.py ...``: the script exists and its ``--help`` lists every
  ``--option`` the command uses; ``bash benchmarks/<script>.sh``: exists and parses (``bash -n``).
* ``python my_app.py ...`` (sweeper/README.md): the app and config that the doc writes in
  blocks starting with ``# file: <path>`` are written to a temp dir and the command is run there.
* ``make <target> ...``: ``make -n <target> ...`` succeeds (the target exists).
* anything else must be in ``NOT_RUN`` below (installs, cluster tools, deleting files), or the
  test fails: a new kind of command needs a check or a deliberate entry there.

Blocks starting with ``# file: <path>`` (any language) are also how a doc provides files for
its commands: ``/their/conf/...`` (README's extending example) becomes a temp config dir.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import CONF_DIR, ENV_ROOT, REPO_ROOT

DOC_FILES = [
    REPO_ROOT / "README.md",
    *sorted((REPO_ROOT / "docs").glob("*.md")),
    REPO_ROOT / "sweeper" / "README.md",
    REPO_ROOT / "benchmarks" / "README.md",
]

# Commands the test deliberately does not run, by program (first word after any VAR=value),
# or by program and first argument. Each entry says why.
NOT_RUN = {
    "pip": "installs packages (make install runs the same installs)",
    "git": "network / repository operations",
    "sbatch": "submits to a SLURM cluster (the SLURM tests run a throw-away cluster)",
    "scancel": "cancels SLURM jobs",
    "export": "sets a variable for the commands that follow",
    "optuna": "Optuna's CLI on the user's real storage (delete-study, storage upgrade)",
    "optuna-dashboard": "starts a web server (make dashboard is checked with make -n)",
    "rm": "deletes the user's results",
    ".": "activates the venv",
    "cd": "changes the directory for the commands that follow",
    "source": "activates the venv",
    "python -m pytest": "the test suite itself (make test / make test-all are checked)",
}

FILE_MARK = re.compile(r"^#\s*file:\s*(\S+)")
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass(frozen=True)
class Command:
    doc: str  # path relative to the repo
    line: int  # line of the block's first line
    env: tuple[tuple[str, str], ...]
    argv: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(shlex.quote(a) for a in self.argv)

    @property
    def id(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"[:140]


def fenced_blocks(path: Path) -> list[tuple[str, int, str]]:
    """(language, first line number, body) of every fenced block of a Markdown file."""
    blocks, lang, start, body = [], None, 0, []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        m = FENCE.match(line.strip())
        if lang is None and m:
            lang, start, body = m.group(1), n + 1, []
        elif lang is not None and line.strip() == "```":
            blocks.append((lang, start, "\n".join(body) + "\n"))
            lang = None
        elif lang is not None:
            body.append(line)
    return blocks


def split_commands(doc: str, line: int, body: str) -> list[Command]:
    """The commands of one bash block."""
    commands = []
    for chunk in body.replace("\\\n", " ").splitlines():
        tokens = shlex.split(chunk, comments=True)
        part: list[str] = []
        for tok in [*tokens, "&&"]:
            if tok in ("&&", ";", "||"):
                if part:
                    env = []
                    while part and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", part[0]):
                        key, _, value = part.pop(0).partition("=")
                        env.append((key, value))
                    if part:
                        commands.append(Command(doc, line, tuple(env), tuple(part)))
                part = []
            else:
                part.append(tok)
    return commands


def doc_commands() -> list[Command]:
    """Every command of the docs, each distinct one once (at its first occurrence)."""
    out, seen = [], set()
    for path in DOC_FILES:
        rel = str(path.relative_to(REPO_ROOT))
        for lang, line, body in fenced_blocks(path):
            if lang == "bash":
                for cmd in split_commands(rel, line, body):
                    if (cmd.env, cmd.argv) not in seen:
                        seen.add((cmd.env, cmd.argv))
                        out.append(cmd)
    return out


def doc_files(doc: str) -> dict[str, str]:
    """``# file: <path>`` blocks of a doc: path → content."""
    files = {}
    for _lang, _line, body in fenced_blocks(REPO_ROOT / doc):
        m = FILE_MARK.match(body.splitlines()[0]) if body.strip() else None
        if m:
            files[m.group(1)] = body
    return files


def kind(cmd: Command) -> str:
    a = cmd.argv
    if a[0] == "python" and len(a) > 1:
        if a[1] == "train.py":
            return "train"
        if a[1] == "-m" and len(a) > 2:
            if a[2] in ("analysis", "lenet_lab.data", "lab_optuna.schema"):
                return a[2]
            if f"python -m {a[2]}" in NOT_RUN:
                return "not_run"
        if a[1].startswith("benchmarks/") and a[1].endswith(".py"):
            return "benchmark"
        if a[1] in doc_files(cmd.doc):
            return "doc_app"
    if a[0] == "bash" and len(a) > 1 and a[1].startswith("benchmarks/"):
        return "bash_script"
    if a[0] == "make":
        return "make"
    if a[0] in NOT_RUN:
        return "not_run"
    return "unknown"


COMMANDS = doc_commands()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def their_conf(tmp_path_factory) -> Path:
    """The ``# file: /their/conf/...`` blocks of the docs, written under a temp dir."""
    root = tmp_path_factory.mktemp("their")
    for path in DOC_FILES:
        for name, body in doc_files(str(path.relative_to(REPO_ROOT))).items():
            if name.startswith("/their/"):
                target = root / name.lstrip("/")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(body)
    return root


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory, tiny_data_factory) -> dict[str, Path | str]:
    """A real two-trial phase-1 sweep on tiny data: its sweep dir and storage URL."""
    tmp = tmp_path_factory.mktemp("docs_sweep")
    url = f"sqlite:///{tmp / 'optuna.db'}"
    cmd = [
        sys.executable,
        "train.py",
        "-m",
        "hparams_search=phase1_flat",
        f"hydra.sweep.dir={tmp / 'phase1'}",
        f"hydra.sweeper.storage={url}",
        "hydra.sweeper.n_trials=2",
        "trainer.epochs=1",
        "data.holdout_size=128",
    ]
    env = {**os.environ, ENV_ROOT: str(tiny_data_factory())}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"dir": tmp / "phase1", "url": url, "tmp": tmp}


_help_cache: dict[str, subprocess.CompletedProcess] = {}


def script_help(script: str) -> subprocess.CompletedProcess:
    if script not in _help_cache:
        _help_cache[script] = subprocess.run(
            [sys.executable, script, "--help"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    return _help_cache[script]


# --------------------------------------------------------------------------- checks


@contextlib.contextmanager
def argv_and_output(argv: list[str]):
    old = sys.argv
    sys.argv = argv
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            yield out
    finally:
        sys.argv = old


def train_cli(args: list[str], monkeypatch) -> tuple[int, str]:
    """``python train.py args`` through the real CLI, in this process."""
    from hydra.core.global_hydra import GlobalHydra

    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    import train

    monkeypatch.setenv("HYDRA_MAIN_MODULE", "__main__")  # config_path relative to train.py
    GlobalHydra.instance().clear()
    code = 0
    with argv_and_output(["train.py", *args]) as out:
        try:
            train.main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    GlobalHydra.instance().clear()
    return code, out.getvalue()


def compose_multirun(overrides: list[str]):
    """The config Hydra composes for ``python train.py -m overrides`` before sweeping."""
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    GlobalHydra.instance().clear()
    try:
        hydra = Hydra.create_main_hydra2(
            task_name="train", config_search_path=create_config_search_path(str(CONF_DIR))
        )
        return hydra.compose_config(
            "train",
            overrides,
            run_mode=RunMode.MULTIRUN,
            from_shell=True,
            with_log_configuration=False,
        )
    finally:
        GlobalHydra.instance().clear()


def check_train(cmd: Command, their_conf: Path, monkeypatch) -> None:
    placeholder, real = "file:///their/conf", f"file://{their_conf}/their/conf"
    args = [a.replace(placeholder, real) for a in cmd.argv[2:]]
    if "-m" in args or "--multirun" in args:
        overrides = [a for a in args if a not in ("-m", "--multirun")]
        cfg = compose_multirun(overrides)
        assert cfg.hydra.mode is not None or cfg.hydra.sweeper is not None
        return
    if not any(a in ("--help", "-h", "--cfg", "-c", "--info", "-i") for a in args):
        args = [*args, "--cfg", "job"]
    code, out = train_cli(args, monkeypatch)
    assert code == 0, f"python train.py {' '.join(args)} exited {code}:\n{out[-2000:]}"


def check_analysis(cmd: Command, tiny_sweep, tmp_path) -> None:
    from analysis.__main__ import build_parser, main

    argv = list(cmd.argv[3:])
    if "--help" in argv or "-h" in argv:
        with argv_and_output(["analysis", *argv]), pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        return
    args = build_parser().parse_args(argv)  # the documented options parse
    # no plots: they cost seconds each time, and tests/analysis draws them
    run = [str(tiny_sweep["dir"]), "--out", str(tmp_path / "report"), "--top", str(args.top)]
    run.append("--no-plots")
    with argv_and_output(["analysis", *run]) as out:
        code = main(run)
    assert code == 0, out.getvalue()[-2000:]
    assert (tmp_path / "report" / "report.md").stat().st_size > 0


def check_data(cmd: Command, tiny_data_root: Path, tmp_path, monkeypatch) -> None:
    from lenet_lab.data import main

    argv = list(cmd.argv[3:])
    if "--out" in argv:
        argv[argv.index("--out") + 1] = str(tmp_path)
    else:
        argv += ["--out", str(tmp_path)]
    monkeypatch.setenv(ENV_ROOT, str(tiny_data_root))
    with argv_and_output(["lenet_lab.data", *argv]) as out:
        code = main(argv)
    assert code == 0, out.getvalue()
    assert (tmp_path / "samples.png").is_file()


def check_schema(cmd: Command, tiny_sweep) -> None:
    from lab_optuna.schema import main

    url = tiny_sweep["url"]
    argv = [url if a.startswith(("sqlite:", "postgresql")) else a for a in cmd.argv[3:]]
    with argv_and_output(["schema", *argv]) as out:
        code = main(argv)
    assert code == 0, out.getvalue()


def check_benchmark(cmd: Command) -> None:
    script = cmd.argv[1]
    assert (REPO_ROOT / script).is_file(), f"{script} does not exist"
    proc = script_help(script)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for opt in cmd.argv[2:]:
        if opt.startswith("--"):
            name = opt.split("=")[0]
            assert name in proc.stdout, f"{script} has no option {name}:\n{proc.stdout}"


def check_bash_script(cmd: Command) -> None:
    script = REPO_ROOT / cmd.argv[1]
    assert script.is_file(), f"{cmd.argv[1]} does not exist"
    proc = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def check_doc_app(cmd: Command, tmp_path) -> None:
    for name, body in doc_files(cmd.doc).items():
        if not name.startswith("/"):
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(body)
    argv = list(cmd.argv[1:])
    if "-m" in argv or "--multirun" in argv:
        argv.append("hydra.sweeper.n_trials=2")  # the sweep as written, fewer trials
    proc = subprocess.run(
        [sys.executable, *argv],
        cwd=tmp_path,
        env={**os.environ, **dict(cmd.env)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]


def check_make(cmd: Command) -> None:
    proc = subprocess.run(
        ["make", "-n", *cmd.argv[1:]], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, f"make -n {' '.join(cmd.argv[1:])}: {proc.stderr}"


# --------------------------------------------------------------------------- tests


def test_the_docs_have_commands():
    for path in DOC_FILES:
        assert path.is_file(), path
    per_doc = {str(p.relative_to(REPO_ROOT)): 0 for p in DOC_FILES}
    for cmd in COMMANDS:
        per_doc[cmd.doc] += 1
    assert per_doc["README.md"] >= 10, per_doc


@pytest.mark.parametrize("cmd", COMMANDS, ids=[c.id for c in COMMANDS])
def test_documented_command(cmd: Command, request, tmp_path, monkeypatch):
    k = kind(cmd)
    if k == "unknown":
        pytest.fail(
            f"{cmd.doc}:{cmd.line}: `{cmd.text}` is neither checked nor in NOT_RUN: "
            "give it a check or a deliberate entry"
        )
    if k == "not_run":
        return
    for key, value in cmd.env:
        monkeypatch.setenv(key, value)
    if k == "train":
        check_train(cmd, request.getfixturevalue("their_conf"), monkeypatch)
    elif k == "analysis":
        check_analysis(cmd, request.getfixturevalue("tiny_sweep"), tmp_path)
    elif k == "lenet_lab.data":
        check_data(cmd, request.getfixturevalue("tiny_data_root"), tmp_path, monkeypatch)
    elif k == "lab_optuna.schema":
        check_schema(cmd, request.getfixturevalue("tiny_sweep"))
    elif k == "benchmark":
        check_benchmark(cmd)
    elif k == "bash_script":
        check_bash_script(cmd)
    elif k == "doc_app":
        check_doc_app(cmd, tmp_path)
    elif k == "make":
        check_make(cmd)


def test_docs_use_current_names():
    """The names the sweeper's split retired do not come back in the docs."""
    stale = {
        "from sweeper import": "from lab_optuna import",
        "python -m sweeper.schema": "python -m lab_optuna.schema",
        "hydra/sweeper=optuna ": "hydra/sweeper=lab_optuna",
        "explicit_backward": "(removed)",
    }
    for path in DOC_FILES:
        text = path.read_text()
        for old, new in stale.items():
            assert old not in text, f"{path.relative_to(REPO_ROOT)}: {old!r} (now {new})"
