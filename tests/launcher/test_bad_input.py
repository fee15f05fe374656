"""Bad and hostile input, across every subcommand: exit code 2, one line naming the culprit,
no traceback, nothing created (files compared before/after) and no MLflow run left behind."""
from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner

from launcher.cli import main
from tests.conftest import train_args
from tests.data_files import CIFAR_CLASSES, py2_pickle, write_cifar_release, write_class_tree

SWEEP_OK = "name: s\nbase: {epochs: 1}\nspace:\n  optimizer.lr: {choice: [0.1, 0.01]}\n"
ESCAPED = "evil"  # the start of every name a case tries to write outside its folders


def alias_bomb(depth: int) -> str:
    """"Billion laughs": 9 lols, each level 9 aliases of the one before: 9**(depth + 1) values."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    lines = [f"a: &a [{','.join(['lol'] * 9)}]"]
    lines += [f"{letters[i]}: &{letters[i]} [{','.join([f'*{letters[i - 1]}'] * 9)}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


@dataclass
class Ctx:
    """What a case builds its arguments from; `held` keeps objects (a listening socket) alive."""

    tmp: Path
    store: str
    held: list[Any] = field(default_factory=list)

    def write(self, name: str, text: str | bytes) -> str:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return str(path)

    def train(self, *extra: str) -> list[str]:
        return train_args(self.tmp, self.store, *extra)

    def corrupt_store(self) -> str:
        return "sqlite:///" + self.write("corrupt/mlflow.db", os.urandom(4096))

    def foreign_sqlite(self) -> str:
        import sqlite3

        path = self.tmp / "other" / "mlflow.db"
        path.parent.mkdir()
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER)")
        return f"sqlite:///{path}"

    def held_port(self) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        self.held.append(sock)
        return str(sock.getsockname()[1])


def hostile_checkpoint(ctx: Ctx) -> str:
    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    path = ctx.tmp / "evil.pt"
    path.write_bytes(pickle.dumps({"model": Exploit()}))
    return str(path)


def cifar_archive(ctx: Ctx, label_names: list[bytes] | None = None, name: str = "c.tar.gz") -> str:
    """A CIFAR-10 python archive in the real format, with the label names given."""
    release = write_cifar_release(ctx.tmp / f"src-{name}")
    if label_names is not None:
        py2_pickle({b"num_cases_per_batch": 20, b"label_names": label_names, b"num_vis": 3072},
                   release / "batches.meta")
    archive = ctx.tmp / name
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(release, arcname="cifar-10-batches-py")
    return str(archive)


def evil_labels(first: bytes) -> list[bytes]:
    return [first, *[c.encode() for c in CIFAR_CLASSES[1:]]]


def txt_dataset(ctx: Ctx, line: str) -> list[str]:
    root = write_class_tree(ctx.tmp / "txt", {"a": 2, "b": 2})
    for split in ("train", "valid", "test"):
        (root / f"{split}.txt").write_text("a/000.png 0\nb/000.png 1\n")
    (root / "train.txt").write_text(f"a/000.png 0\n{line}\n")
    return ctx.train("-s", "data.name=txt", "-s", f"data.root={root}")


Case = tuple[Callable[[Ctx], list[str]], str]

TRAIN: dict[str, Case] = {
    "missing config file": (lambda c: c.train("--config", str(c.tmp / "nope.yaml")), "nope.yaml"),
    "malformed yaml": (lambda c: c.train("--config", c.write("bad.yaml", "epochs: [1\n")), "line"),
    "config is a list": (lambda c: c.train("--config", c.write("list.yaml", "- 1\n- 2\n")), "list.yaml"),
    "config is a folder": (lambda c: c.train("--config", str(c.tmp)), "is a directory"),
    "duplicate key in config": (lambda c: c.train("--config", c.write("d.yaml", "epochs: 1\nepochs: 2\n")),
                                "d.yaml:2: epochs: duplicate key (first at line 1)"),
    "binary config file": (lambda c: c.train("--config", c.write("b.yaml", bytes(range(256)))), "b.yaml"),
    "infinite lr": (lambda c: c.train("--lr", "inf"), "optimizer.lr"),
    "nan lr": (lambda c: c.train("--lr", "nan"), "optimizer.lr"),
    "infinite lr as YAML": (lambda c: c.train("-s", "optimizer.lr=.inf"), "optimizer.lr"),
    "unknown key": (lambda c: c.train("-s", "optimizer.lrr=0.1"), "optimizer.lrr"),
    "unknown top key": (lambda c: c.train("-s", "epoch=3"), "'epoch'"),
    "unknown model": (lambda c: c.train("--model", "vgg16"), "net, resnet34"),
    "unknown optimizer": (lambda c: c.train("-s", "optimizer.name=sgdd"), "sgdd"),
    "unknown scheduler": (lambda c: c.train("--scheduler", "warp"), "warp"),
    "unknown loss": (lambda c: c.train("--loss", "hinge3"), "hinge3"),
    "unknown init": (lambda c: c.train("--init", "zeros9"), "zeros9"),
    "unknown dataset": (lambda c: c.train("-s", "data.name=imagenet"), "imagenet"),
    "unknown transform": (lambda c: c.train("-s", "transforms.train=[warp]"), "warp"),
    "negative lr": (lambda c: c.train("--lr", "-0.1"), "optimizer.lr"),
    "lr not a number": (lambda c: c.train("-s", "optimizer.lr=fast"), "optimizer.lr"),
    "zero epochs": (lambda c: c.train("--epochs", "0"), "epochs"),
    "zero batch size": (lambda c: c.train("--batch-size", "0"), "batch_size"),
    "unknown device": (lambda c: c.train("--device", "tpu"), "tpu"),
    "cuda without a GPU": (lambda c: c.train("--device", "cuda"), "cuda"),
    "bad override syntax": (lambda c: c.train("-s", "optimizer.lr"), "dotted.key=value"),
    "unknown resume id": (lambda c: c.train("--resume", "0123456789abcdef"), "0123456789abcdef"),
    "resume a non-checkpoint": (lambda c: c.train("--resume", c.write("x.pt", "not a checkpoint")), "x.pt"),
    "resume a hostile pickle": (lambda c: c.train("--resume", hostile_checkpoint(c)), "evil.pt"),
    "resume a truncated zip": (lambda c: c.train("--resume", c.write("t.pt", b"PK\x03\x04" + b"\0" * 40)), "t.pt"),
    "resume a missing path": (lambda c: c.train("--resume", str(c.tmp / "gone" / "ckpt.pt")), "ckpt.pt"),
    "resume and finetune": (lambda c: c.train("--resume", "x", "--finetune", "y"), "--finetune"),
    "finetune a missing file": (lambda c: c.train("--finetune", str(c.tmp / "w.pt")), "w.pt"),
    "finetune a hostile pickle": (lambda c: c.train("--finetune", hostile_checkpoint(c)), "evil.pt"),
    "pad makes net's input too big": (lambda c: c.train("-s", "transforms.train=[pad, normalize]"), "'pad'"),
    "eval crop too small for net": (
        lambda c: c.train("-s", "transforms.eval=[{center_crop: {size: 28}}, normalize]"), "'center_crop'"),
    "tracking uri with unknown scheme": (lambda c: c.train("--tracking-uri", "bogus://x"), "bogus"),
    "corrupt store": (lambda c: c.train("--tracking-uri", c.corrupt_store()), "not a SQLite database"),
    "store is another SQLite database": (lambda c: c.train("--tracking-uri", c.foreign_sqlite()), "not an MLflow store"),
    "store path is a folder": (lambda c: c.train("--tracking-uri", f"sqlite:///{c.tmp}"), "folder"),
    "cifar10 root missing": (lambda c: c.train("-s", "data.name=cifar10", "-s", f"data.root={c.tmp / 'no'}"), "/no' does not exist"),
    "cifar10 label name climbs out": (
        lambda c: c.train("-s", "data.name=cifar10", "-s", f"data.root={cifar_archive(c, evil_labels(b'../x'))}"),
        "'../x'"),
    "folder dataset root missing": (lambda c: c.train("-s", "data.name=folder", "-s", f"data.root={c.tmp / 'f'}"), "/f' does not exist"),
    "txt list path climbs out": (lambda c: txt_dataset(c, "../../etc/passwd 0"), "../../etc/passwd"),
    "txt list names a file that is no image": (lambda c: txt_dataset(c, "/etc/passwd 1"), "/etc/passwd"),
    "txt list bad line": (lambda c: txt_dataset(c, "only-a-path"), "only-a-path"),
    "txt list binary": (lambda c: binary_txt(c), "UTF-8"),
    "output dir under a file": (
        lambda c: train_args(c.tmp, c.store)[:-2] + ["--output-dir", c.write("blocker", "") + "/sub"], "not writable"),
    "output dir is a file, default store": (lambda c: ["train", "--no-progress", "--output-dir", c.write("afile", "")],
                                            "afile' is not writable"),  # and no ./mlflow.db: files compared
    # names are folder names: nothing may land outside the output folder or the store's artifact folder
    "run name climbs out": (lambda c: c.train("-s", f"tracking.run_name=../../{ESCAPED}_runname"),
                            f"'tracking.run_name': '../../{ESCAPED}_runname' is not allowed; valid: name"),
    "absolute run name": (lambda c: c.train("-s", f"tracking.run_name={c.tmp.parent}/{ESCAPED}_abs"),
                          "'tracking.run_name'"),
    "run name '..'": (lambda c: c.train("-s", "tracking.run_name=.."), "'tracking.run_name': '..' is not allowed"),
    "experiment climbs out": (lambda c: c.train("--experiment", f"../../../{ESCAPED}_experiment"),
                              f"'tracking.experiment': '../../../{ESCAPED}_experiment' is not allowed; valid: str"),
    "absolute experiment": (lambda c: c.train("--experiment", f"{c.tmp.parent}/{ESCAPED}_abs"), "'tracking.experiment'"),
    "10,000-character run name": (lambda c: c.train("-s", "tracking.run_name=" + "r" * 10_000),
                                  "(10000 characters) is not allowed; valid: name ([A-Za-z0-9_.-], not starting with "
                                  ". _ -, up to 250 characters)"),
    "10,000-character experiment": (lambda c: c.train("--experiment", "e" * 10_000),
                                    "(10000 characters) is not allowed; valid: str (min length 1, max length 250"),
    # values that would reach torch
    "23-digit seed": (lambda c: c.train("--seed", "1" * 23),
                      "'seed': 11111111111111111111111 is out of range; valid: int (>= 0, <= 4294967295)"),
    "negative seed": (lambda c: c.train("--seed", "-1"), "'seed': -1 is out of range; valid: int (>= 0"),
    "lr 1e300": (lambda c: c.train("--lr", "1e300"), "bad value 1e+300 for 'optimizer.lr' (float in (0, 1e+30]): "
                                                     "Input should be less than or equal to 1e+30"),
    "batch size true": (lambda c: c.train("-s", "batch_size=true"),
                        "'batch_size': true is not a number; valid: int (>= 1, <= 1000000)"),
    "momentum true": (lambda c: c.train("-s", "optimizer.momentum=true"), "'optimizer.momentum' (float >= 0)"),
    "20-digit epochs": (lambda c: c.train("--epochs", "9" * 20),
                        "'epochs': 99999999999999999999 is out of range; valid: int (>= 1, <= 1000000)"),
    # a YAML alias bomb ("billion laughs"): refused before it is expanded (see also test_alias_bomb_...)
    "alias bomb config": (lambda c: c.train("--config", c.write("bomb.yaml", alias_bomb(8))),
                          "bomb.yaml: its aliases (*name) expand to more than 100,000 values"),
    "recursive alias": (lambda c: c.train("--config", c.write("r.yaml", "model: &x\n  name: *x\n")),
                        "r.yaml:1: an alias refers to a node that contains it"),
    "alias bomb override": (lambda c: c.train("-s", "seed=" + alias_bomb(8)), "expand to more than 100,000 values"),
}


def binary_txt(ctx: Ctx) -> list[str]:
    args = txt_dataset(ctx, "a/000.png 0")
    (ctx.tmp / "txt" / "train.txt").write_bytes(b"\xff\xfe\x00garbage\x80\n")
    return args


def sweep(c: Ctx, *extra: str) -> list[str]:
    return ["sweep", *extra, "--tracking-uri", c.store, "--output-dir", str(c.tmp / "runs")]


OTHERS: dict[str, Case] = {
    # sweep
    "sweep: missing file": (lambda c: sweep(c, str(c.tmp / "none.yaml")), "none.yaml"),
    "sweep: -n 0": (lambda c: sweep(c, c.write("s.yaml", SWEEP_OK), "-n", "0"), "num-samples"),
    "sweep: duplicate key": (lambda c: sweep(c, c.write("s.yaml", SWEEP_OK + "name: t\n")),
                             "s.yaml:5: name: duplicate key (first at line 1)"),
    "sweep: binary file": (lambda c: sweep(c, c.write("s.yaml", bytes(range(256)))), "s.yaml"),
    "sweep: malformed yaml": (lambda c: sweep(c, c.write("s.yaml", "name: [x\n")), "line"),
    "sweep: not a mapping": (lambda c: sweep(c, c.write("s.yaml", "- a\n")), "s.yaml"),
    "sweep: unknown top key": (lambda c: sweep(c, c.write("s.yaml", SWEEP_OK + "tunes: {}\n")), "tunes"),
    "sweep: unknown distribution": (
        lambda c: sweep(c, c.write("s.yaml", "name: s\nspace:\n  optimizer.lr: {gaussian: [1, 2]}\n")), "gaussian"),
    "sweep: unknown space key": (
        lambda c: sweep(c, c.write("s.yaml", "name: s\nspace:\n  optimizer.lrr: {choice: [1, 2]}\n")), "lrr"),
    "sweep: unknown base model": (
        lambda c: sweep(c, c.write("s.yaml", SWEEP_OK.replace("epochs: 1", "model: vgg"))), "vgg"),
    "sweep: bad override": (lambda c: sweep(c, c.write("s.yaml", SWEEP_OK), "-s", "epochs"), "dotted.key=value"),
    "sweep: unknown scheme": (lambda c: sweep(c, c.write("s.yaml", SWEEP_OK))[:-4] + ["--tracking-uri", "bogus://x"],
                              "bogus"),
    "sweep: corrupt store": (lambda c: [*sweep(c, c.write("s.yaml", SWEEP_OK))[:2], "--tracking-uri", c.corrupt_store()],
                             "not a SQLite database"),
    "sweep: alias bomb": (lambda c: sweep(c, c.write("s.yaml", alias_bomb(9))), "s.yaml: its aliases (*name) expand"),
    "sweep: experiment climbs out": (
        lambda c: sweep(c, c.write("s.yaml", SWEEP_OK), "--experiment", f"../../{ESCAPED}_sweep_experiment"),
        "'tracking.experiment'"),
    "sweep: run name in base climbs out": (
        lambda c: sweep(c, c.write("s.yaml", SWEEP_OK.replace("epochs: 1", f"tracking: {{run_name: /{ESCAPED}}}"))),
        "tracking.run_name"),
    "sweep: resume with no sweep": (lambda c: sweep(c, c.write("s.yaml", SWEEP_OK), "--resume"), "no sweep 's'"),
    # eval
    "eval: missing file": (lambda c: ["eval", str(c.tmp / "m.pt"), "--tracking-uri", c.store], "m.pt"),
    "eval: unknown run id": (lambda c: ["eval", "0123456789abcdef", "--tracking-uri", c.store], "0123456789abcdef"),
    "eval: non-checkpoint": (lambda c: ["eval", c.write("n.pt", "text"), "--tracking-uri", c.store], "n.pt"),
    "eval: hostile pickle": (lambda c: ["eval", hostile_checkpoint(c), "--tracking-uri", c.store], "evil.pt"),
    "eval: unknown split": (lambda c: ["eval", "x", "--split", "train"], "train"),
    "eval: corrupt store": (lambda c: ["eval", "abcd1234", "--tracking-uri", c.corrupt_store()], "not a SQLite"),
    "eval: unknown scheme": (lambda c: ["eval", "abcd1234", "--tracking-uri", "bogus://x"], "bogus"),
    "eval: no store": (lambda c: ["eval", "abcd1234", "--tracking-uri", f"sqlite:///{c.tmp}/none.db"], "none.db"),
    # runs
    "runs: no store": (lambda c: ["runs", "--tracking-uri", f"sqlite:///{c.tmp}/none.db"], "none.db"),
    "runs: corrupt store": (lambda c: ["runs", "--tracking-uri", c.corrupt_store()], "not a SQLite database"),
    "runs: unknown scheme": (lambda c: ["runs", "--tracking-uri", "bogus://x"], "bogus"),
    "runs: store is another SQLite database": (lambda c: ["runs", "--tracking-uri", c.foreign_sqlite()], "no 'experiments'"),
    "runs: store is a folder": (lambda c: ["runs", "--tracking-uri", f"sqlite:///{c.tmp}"], "folder"),
    "runs: unknown experiment": (lambda c: ["runs", "--tracking-uri", c.store, "-e", "nope"], "nope"),
    "runs: unknown sweep": (lambda c: ["runs", "--tracking-uri", c.store, "--sweep", "nope"], "nope"),
    "runs: limit 0": (lambda c: ["runs", "--tracking-uri", c.store, "--limit", "0"], "limit"),
    # compare
    "compare: unknown runs": (lambda c: ["compare", "abcd1234", "abcd5678", "--tracking-uri", c.store], "abcd1234"),
    "compare: short prefix": (lambda c: ["compare", "ab", "cd", "--tracking-uri", c.store], "ab"),
    "compare: not hex": (lambda c: ["compare", "zzzz1", "abcd1", "--tracking-uri", c.store], "zzzz1"),
    "compare: no store": (lambda c: ["compare", "abcd", "bcde", "--tracking-uri", f"sqlite:///{c.tmp}/n.db"], "n.db"),
    "compare: corrupt store": (lambda c: ["compare", "abcd", "bcde", "--tracking-uri", c.corrupt_store()], "SQLite"),
    # diagnose
    "diagnose: unknown run": (lambda c: ["diagnose", "abcd1234", "--tracking-uri", c.store], "abcd1234"),
    "diagnose: no store": (lambda c: ["diagnose", "abcd1234", "--tracking-uri", f"sqlite:///{c.tmp}/n.db"], "n.db"),
    "diagnose: corrupt store": (lambda c: ["diagnose", "abcd1234", "--tracking-uri", c.corrupt_store()], "SQLite"),
    "diagnose: unknown scheme": (lambda c: ["diagnose", "abcd1234", "--tracking-uri", "bogus://x"], "bogus"),
    # lr-find
    "lr-find: unknown model": (lambda c: ["lr-find", "--model", "vgg", "--tracking-uri", c.store], "vgg"),
    "lr-find: bad override": (lambda c: ["lr-find", "-s", "optimizer", "--tracking-uri", c.store], "dotted.key"),
    "lr-find: too few iters": (lambda c: ["lr-find", "--num-iters", "1", "--tracking-uri", c.store], "num-iters"),
    "lr-find: zero start lr": (lambda c: ["lr-find", "--start-lr", "0", "--tracking-uri", c.store], "start-lr"),
    "lr-find: unknown scheme": (lambda c: ["lr-find", "--tracking-uri", "bogus://x", "--num-iters", "3"], "bogus"),
    # data
    "data cifar10: missing source": (lambda c: ["data", "cifar10", str(c.tmp / "no.tgz"), "--out", str(c.tmp / "o")],
                                     "no.tgz"),
    "data cifar10: label name with ../": (
        lambda c: ["data", "cifar10", cifar_archive(c, evil_labels(b"../../escaped")), "--out", str(c.tmp / "o/d")],
        "'../../escaped'"),
    "data cifar10: absolute label name": (
        lambda c: ["data", "cifar10", cifar_archive(c, evil_labels(b"/tmp/abs-escape")), "--out", str(c.tmp / "o")],
        "'/tmp/abs-escape'"),
    "data cifar10: label name '..'": (
        lambda c: ["data", "cifar10", cifar_archive(c, evil_labels(b"..")), "--out", str(c.tmp / "o")], "'..'"),
    "data cifar10: duplicate label names": (
        lambda c: ["data", "cifar10", cifar_archive(c, [b"cat"] * 10), "--out", str(c.tmp / "o")], "'cat'"),
    "data cifar10: truncated archive": (
        lambda c: ["data", "cifar10", c.write("cut.tar.gz", Path(cifar_archive(c)).read_bytes()[:2000]),
                   "--out", str(c.tmp / "o")], "cut.tar.gz"),
    "data cifar10: hostile pickle batch": (lambda c: ["data", "cifar10", hostile_release(c), "--out", str(c.tmp / "o")],
                                           "posix.system"),
    "data cifar10: bad ratios": (lambda c: ["data", "cifar10", cifar_archive(c), "--out", str(c.tmp / "o"),
                                            "--ratios", "0.5,0.6,0.1"], "0.5, 0.6, 0.1"),
    "data split: missing source": (lambda c: ["data", "split", str(c.tmp / "src"), "--out", str(c.tmp / "o")], "src"),
    "data split: out inside source": (
        lambda c: ["data", "split", str(write_class_tree(c.tmp / "src", {"a": 2})), "--out", str(c.tmp / "src/o")],
        "inside"),
    "data stats: missing dir": (lambda c: ["data", "stats", str(c.tmp / "nod")], "nod"),
    # ui
    "ui: no store": (lambda c: ["ui", "--tracking-uri", f"sqlite:///{c.tmp}/n.db"], "n.db"),
    "ui: corrupt store": (lambda c: ["ui", "--tracking-uri", c.corrupt_store()], "not a SQLite database"),
    "ui: unknown scheme": (lambda c: ["ui", "--tracking-uri", "bogus://x"], "bogus"),
    "ui: port in use": (lambda c: ["ui", "--tracking-uri", c.store, "--port", c.held_port()], "in use"),
    "ui: host unresolvable": (lambda c: ["ui", "--tracking-uri", c.store, "--host", "256.1.1.1"], "256.1.1.1"),
    "ui: host not on this machine": (lambda c: ["ui", "--tracking-uri", c.store, "--host", "192.0.2.1"], "192.0.2.1"),
    "ui: port out of range": (lambda c: ["ui", "--tracking-uri", c.store, "--port", "70000"], "70000"),
    "ui: no tensorboard logdir": (lambda c: ["ui", "--tensorboard", "--logdir", str(c.tmp / "nolog")], "nolog"),
    # catalog
    "catalog: unknown family": (lambda c: ["catalog", "gizmos"], "gizmos"),
}


def hostile_release(ctx: Ctx) -> str:
    release = write_cifar_release(ctx.tmp / "hostile")

    class Exploit:
        def __reduce__(self):
            return (os.system, ("touch pwned",))

    (release / "data_batch_1").write_bytes(pickle.dumps(Exploit(), protocol=2))
    return str(release)


CASES = {f"train: {k}": v for k, v in TRAIN.items()} | OTHERS


def files_under(root: Path) -> dict[str, tuple[int, int]]:
    """Every path below root with its size and modification time: what was created or changed."""
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (0, 0)
            for p in root.rglob("*")}


def run_statuses(store: str) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=store)
    return [r.info.status for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]


def error_line(stderr: str) -> str:
    """The one line: ours ('error: ...') or, for a malformed command line, click's ('Error: ...')."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    if lines and lines[0].startswith("Usage:"):  # click's usage error: Usage, Try, then one Error line
        assert sum(line.startswith("Error:") for line in lines) == 1, stderr
        return lines[-1]
    assert len(lines) == 1 and lines[0].startswith("error:"), stderr
    return lines[0]


def test_at_least_sixty_cases_across_every_subcommand():
    assert len(CASES) >= 60
    commands = {name.split(":")[0].split()[0] for name in CASES}
    assert commands >= {"train", "sweep", "eval", "runs", "compare", "diagnose", "lr-find", "data", "ui", "catalog"}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(case, tmp_path, store):
    make_args, culprit = CASES[case]
    ctx = Ctx(tmp_path, store)
    args = make_args(ctx)
    before, runs_before = files_under(tmp_path), run_statuses(store)
    try:
        result = CliRunner().invoke(main, args)
    finally:
        for sock in ctx.held:
            sock.close()
    assert result.exit_code == 2, result.output + result.stderr
    assert "Traceback" not in result.output + result.stderr
    assert culprit in error_line(result.stderr), result.stderr
    assert files_under(tmp_path) == before
    assert escaped(tmp_path) == []
    assert run_statuses(store) == runs_before == []
    assert not (tmp_path / "pwned").exists()


def escaped(tmp_path: Path) -> list[Path]:
    """What a case wrote outside its folder: paths named evil* in any folder above tmp_path (and at /)."""
    return [path for folder in tmp_path.parents for path in folder.iterdir() if path.name.startswith(ESCAPED)]


def test_resume_of_a_missing_path_creates_no_store(tmp_path):
    """Without --tracking-uri the default store is ./mlflow.db: looking the path up as a run id must not create it."""
    out = subprocess.run([sys.executable, "-m", "launcher", "train", "--resume", "/nonexistent/ckpt.pt"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error: '/nonexistent/ckpt.pt'"), out.stderr
    assert list(tmp_path.iterdir()) == []


def test_installed_script_reports_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, "-m", "launcher", "train", "--model", "nope"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.startswith("error: unknown model 'nope'")
    assert "Traceback" not in out.stderr and not (tmp_path / "mlflow.db").exists()


# VmHWM: this process's peak resident memory (ru_maxrss would carry the forking pytest's peak over exec)
MEASURE_READ = """
import re, sys, time, tracemalloc
from pathlib import Path
from trainlib.errors import ConfigError
from trainlib.yaml_reader import read_yaml
tracemalloc.start()
start = time.perf_counter()
try:
    read_yaml(sys.argv[1])
except ConfigError as exc:
    print(exc)
peak_kib = re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1)
print(time.perf_counter() - start, tracemalloc.get_traced_memory()[1], peak_kib)
"""


@pytest.mark.parametrize("depth", [8, 9])
def test_alias_bomb_is_refused_within_a_second_and_200_mb(depth, tmp_path):
    """The one reader, in a process of its own: the refusal's time, its allocations and the process's peak memory."""
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(alias_bomb(depth))
    assert bomb.stat().st_size < 400  # 9**(depth + 1) values: 387 million at depth 8
    out = subprocess.run([sys.executable, "-c", MEASURE_READ, str(bomb)], capture_output=True, text=True, timeout=60)
    line, figures = out.stdout.strip().splitlines()
    assert line == f"{bomb}: its aliases (*name) expand to more than 100,000 values; refusing to build it " \
                   "(a YAML alias bomb?)", out.stderr
    seconds, allocated, peak_kib = (float(x) for x in figures.split())
    assert seconds < 1 and allocated < 200 * 2**20 and peak_kib < 200 * 1024, figures


class PlantedPickle:
    """What someone with write access to a sweep folder could put there: unpickling it runs a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.slow
def test_sweep_resume_refuses_a_planted_tuner_pkl(tmp_path, store, client, local_ray):
    """The sweep records the sha256 of its Tune state files in its MLflow parent run and keeps copies of them; a
    resume of a folder whose tuner.pkl was replaced is refused before anything unpickles it when no recorded copy is
    left, and with the copies, the planted file is moved aside and the recorded one resumes. (On the session's Ray:
    the check is the driver's, before Ray is joined or started.)"""
    path = tmp_path / "planted.yaml"
    path.write_text("name: planted\nbase: {epochs: 1}\nspace:\n  seed: {grid: [0]}\ntune: {search: grid, num_samples: 1}\n")
    args = [sys.executable, "-m", "launcher", "sweep", str(path), "--tracking-uri", store, "--experiment", "test",
            "--output-dir", str(tmp_path / "runs"), "--address", local_ray, "-s", "batch_size=256",
            "-s", "tracking.log_model=false"]
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    first = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-3000:]
    (sweep_dir,) = (tmp_path / "runs" / "sweeps").iterdir()
    tuner_pkl = sweep_dir / "tune" / "tuner.pkl"
    planted = pickle.dumps(PlantedPickle(tmp_path / "pwned"))
    tuner_pkl.write_bytes(planted)
    copies = sweep_dir / "tune-recorded"
    copies.rename(tmp_path / "copies")

    refused = subprocess.run([*args, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2, refused.stderr
    assert error_line(refused.stderr).startswith(f"error: refusing to resume {sweep_dir}: tune/tuner.pkl is not a file "
                                                 "this sweep wrote (its sha256 is not among those recorded in MLflow "
                                                 "parent run ")
    assert not (tmp_path / "pwned").exists()
    assert "RUNNING" not in run_statuses(store) and escaped(tmp_path) == []

    (tmp_path / "copies").rename(copies)
    resumed = subprocess.run([*args, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    assert (f"tune/tuner.pkl is not a version this sweep recorded: moved to {sweep_dir}/tune-unrecorded/tuner.pkl; "
            "resuming from the last version it recorded") in resumed.stdout
    assert (sweep_dir / "tune-unrecorded" / "tuner.pkl").read_bytes() == planted
    assert not (tmp_path / "pwned").exists()
    assert sorted(run_statuses(store)) == ["FINISHED", "FINISHED"]  # the parent and its trial
