"""The sweep's record of its Tune state (launcher.sweep.state_digest) on a real MLflow store: what a resume
restores after a driver killed between Tune's save and the record, and what it refuses."""
import pickle
from pathlib import Path

import pytest

from launcher.sweep.callbacks import StateDigest
from launcher.sweep.state_digest import COPIES, check_state
from launcher.sweep.tracking import SweepRun
from trainlib.errors import ConfigError


@pytest.fixture
def record(client, store) -> SweepRun:
    experiment_id = client.create_experiment("sweeps")
    return SweepRun(store, experiment_id, client.create_run(experiment_id).info.run_id)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A sweep folder as Tune leaves it: its state at the top of tune/, a trial's params.pkl below."""
    tune = tmp_path / "sweep" / "tune"
    (tune / "trial_0").mkdir(parents=True)
    (tune / "tuner.pkl").write_bytes(b"tuner")
    (tune / "experiment_state.json").write_bytes(b"step 1")
    (tune / "trial_0" / "params.pkl").write_bytes(b"params")
    return tmp_path / "sweep"


def recorder(record: SweepRun, folder: Path) -> StateDigest:
    return StateDigest(record, str(folder / "tune"))


def resume_check(record: SweepRun, folder: Path) -> list[str]:
    return check_state(record, folder, str(folder / "tune"))


def test_a_state_saved_after_the_last_record_is_set_aside_and_the_recorded_one_resumes(record, folder):
    """The race CI met: Tune saved step 3, the driver was killed before it recorded it."""
    digest = recorder(record, folder)
    digest.update([])
    (folder / "tune" / "experiment_state.json").write_bytes(b"step 2")
    digest.update([])
    (folder / "tune" / "experiment_state.json").write_bytes(b"step 3")  # saved, never recorded

    lines = resume_check(record, folder)

    assert lines == [f"tune/experiment_state.json is not a version this sweep recorded: moved to "
                     f"{folder}/tune-unrecorded/experiment_state.json; resuming from the last version it recorded"]
    assert (folder / "tune" / "experiment_state.json").read_bytes() == b"step 2"
    assert (folder / "tune-unrecorded" / "experiment_state.json").read_bytes() == b"step 3"
    assert (folder / "tune" / "tuner.pkl").read_bytes() == b"tuner", "a recorded file is left alone"
    assert resume_check(record, folder) == [], "the state put back is one the sweep recorded"


def test_a_state_as_recorded_resumes_untouched(record, folder):
    recorder(record, folder).update([])
    assert resume_check(record, folder) == []
    assert not (folder / "tune-unrecorded").exists()


def test_the_newest_intact_copy_is_used_and_older_copies_are_dropped(record, folder):
    digest = recorder(record, folder)
    for step in range(1, 6):
        (folder / "tune" / "experiment_state.json").write_bytes(f"step {step}".encode())
        digest.update([])
    assert len(list((folder / "tune-recorded").iterdir())) == 2 + COPIES, "tuner.pkl, params.pkl, the last states"
    (folder / "tune" / "experiment_state.json").write_bytes(b"planted")
    newest = max((folder / "tune-recorded").iterdir(), key=lambda copy: copy.read_bytes() == b"step 5")
    newest.write_bytes(b"step 5, altered")  # its name no longer matches its content

    resume_check(record, folder)

    assert (folder / "tune" / "experiment_state.json").read_bytes() == b"step 4"


def test_a_replaced_file_with_no_recorded_copy_left_is_refused_and_nothing_moves(record, folder):
    recorder(record, folder).update([])
    for copy in (folder / "tune-recorded").iterdir():
        copy.unlink()
    (folder / "tune" / "tuner.pkl").write_bytes(b"planted")

    with pytest.raises(ConfigError, match=r"tune/tuner.pkl is not a file this sweep wrote .* no recorded copy"):
        resume_check(record, folder)
    assert (folder / "tune" / "tuner.pkl").read_bytes() == b"planted"
    assert not (folder / "tune-unrecorded").exists()


def test_a_file_the_sweep_never_recorded_is_moved_aside(record, folder):
    recorder(record, folder).update([])
    (folder / "tune" / "trial_1").mkdir()
    (folder / "tune" / "trial_1" / "params.pkl").write_bytes(b"planted")

    assert resume_check(record, folder) == [f"tune/trial_1/params.pkl is not a version this sweep recorded: moved to "
                                            f"{folder}/tune-unrecorded/trial_1/params.pkl"]
    assert not (folder / "tune" / "trial_1" / "params.pkl").exists()


def test_a_sweep_that_recorded_nothing_is_refused(record, folder):
    with pytest.raises(ConfigError, match="tune/tuner.pkl is not a file this sweep wrote"):
        resume_check(record, folder)


def test_a_recorder_restored_from_a_sweep_saved_before_the_copies_keeps_them_beside_its_state(record, folder):
    """Tune restores the callbacks from tuner.pkl, one pickled by an earlier version too: it holds the same
    attributes (the copies' folder follows from tune/), and a restored one records and keeps copies."""
    restored = pickle.loads(pickle.dumps(recorder(record, folder)))
    assert set(vars(restored)) == {"record", "tune_dir", "accepted", "memo"}
    restored.update([])
    assert len(list((folder / "tune-recorded").iterdir())) == 3
