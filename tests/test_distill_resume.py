"""Kill a run after epoch k in a subprocess, resume it, and get the same weights."""

import json
import subprocess
import textwrap

import pytest
import torch
from test_distill_support import PYTHON, make_dataset, square_target, subprocess_env, tiny_student

import captum_akd
from captum_akd.checkpoint import read_config
from captum_akd.distill._state import STATE_JSON
from captum_akd.models import cifar_resnet_student

SETTINGS = dict(epochs=2, explainer_epochs=2, batch_size=16, quiet=True, device="cpu", seed=3)
N_TRAIN, N_VAL = 96, 32

RUN = textwrap.dedent(
    """
    import os, signal, sys
    import torch
    torch.set_num_threads(1)
    from test_distill_support import make_dataset, square_target, tiny_student
    import captum_akd
    from captum_akd.distill._state import RunDir

    kill_after = int(sys.argv[2])
    original = RunDir.save
    saves = []

    def save_then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        saves.append(1)
        if len(saves) == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    RunDir.save = save_then_die
    captum_akd.distill(square_target, make_dataset({n_train}), student=tiny_student(),
                       val_data=make_dataset({n_val}, seed=1), out=sys.argv[1], **{settings})
    """
).format(n_train=N_TRAIN, n_val=N_VAL, settings=SETTINGS)


def kill_after(tmp_path, saves, settings=SETTINGS):
    """Run ``settings`` in a subprocess that is killed after its ``saves``-th save."""
    out = tmp_path / "run"
    script = tmp_path / "run_and_die.py"
    script.write_text(RUN.replace(repr(SETTINGS), repr(settings)))
    proc = subprocess.run([PYTHON, str(script), str(out), str(saves)], env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, proc.stderr[-2000:]
    return out


def run(out, **kwargs):
    return captum_akd.distill(square_target, make_dataset(N_TRAIN), student=tiny_student(),
                              val_data=make_dataset(N_VAL, seed=1), out=out,
                              **{**SETTINGS, **kwargs})


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return run(tmp_path_factory.mktemp("full") / "run")


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


# Epochs: 2 of stage 1, then 2 of stage 2; kill after the 1st or the 3rd.
@pytest.mark.parametrize("saves, stage", [(1, "student"), (3, "explainer")])
def test_killed_run_resumes_to_identical_weights(tmp_path, uninterrupted, saves, stage):
    out = kill_after(tmp_path, saves)
    state = json.loads((out / STATE_JSON).read_text())
    assert (state["stage"], state["complete"]) == (stage, False)
    assert state["epoch"] == 1

    resumed = run(out, resume=True)
    assert_same_state(resumed.student, uninterrupted.student)
    assert_same_state(resumed.explainer, uninterrupted.explainer)
    assert resumed.metadata["fidelity"] == uninterrupted.metadata["fidelity"]
    config = read_config(out)
    assert config["metadata"]["complete"] and config["metadata"]["stage"] == "explainer"
    history = json.loads((out / STATE_JSON).read_text())["history"]
    assert [len(history["student"]), len(history["explainer"])] == [2, 2]


@pytest.mark.parametrize("append", [False, True])
def test_a_run_with_perturbation_matching_resumes_to_identical_weights(tmp_path, append):
    matching = {"perturb_share": 0.5, "perturb_append": append}
    perturbed = {**SETTINGS, "explainer_epochs": 1, "student_config": matching}
    out = kill_after(tmp_path, 1, perturbed)
    resumed = run(out, resume=True, explainer_epochs=1, student_config=matching)
    whole = run(tmp_path / "whole", explainer_epochs=1, student_config=matching)
    assert_same_state(resumed.student, whole.student)
    assert resumed.metadata["fidelity"] == whole.metadata["fidelity"]
    assert "perturbed_top1_agreement" in whole.metadata["fidelity"]["student"]


@pytest.mark.parametrize("curve", [
    {"objective": "curve", "budgets": 2, "destroy_substrate": "both"},
    {"objective": "rise", "rise_masks": 4, "rise_grid": 4, "destroy_substrate": "both"},
    {"objective": "curve", "budgets": 2, "rise_weight": 0.5, "rise_masks": 4, "rise_grid": 4},
])
def test_a_run_with_a_whole_curve_objective_resumes_to_identical_weights(tmp_path, curve):
    settings = {**SETTINGS, "explainer_config": curve}
    # Killed after the first of stage 2's two epochs.
    out = kill_after(tmp_path, 3, settings)
    resumed = run(out, resume=True, explainer_config=curve)
    whole = run(tmp_path / "whole", explainer_config=curve)
    assert_same_state(resumed.explainer, whole.explainer)
    assert resumed.metadata["fidelity"] == whole.metadata["fidelity"]
    assert "student_insertion" in whole.metadata["fidelity"]["explainer"]


def test_resume_of_a_finished_run_trains_nothing(tmp_path, uninterrupted):
    out = tmp_path / "run"
    run(out)
    calls = []

    def counting(images):
        calls.append(images.shape[0])
        return square_target(images)

    again = captum_akd.distill(counting, make_dataset(N_TRAIN), student=tiny_student(),
                               val_data=make_dataset(N_VAL, seed=1), out=out, resume=True,
                               **SETTINGS)
    assert_same_state(again.explainer, uninterrupted.explainer)
    # Only the pre-flight probe, made once for both stages, called the black box.
    assert len(calls) == 1


def test_resume_with_another_configuration_fails_before_training(tmp_path):
    out = tmp_path / "run"
    run(out, explainer_epochs=1)
    for change, pattern in [({"epochs": 3}, "epochs"), ({"seed": 4}, "seed"),
                            ({"batch_size": 8}, "batch_size")]:
        with pytest.raises(ValueError, match=f"another configuration.*{pattern}"):
            run(out, resume=True, explainer_epochs=1, **change)
    with pytest.raises(ValueError, match="another configuration.*length"):
        captum_akd.distill(square_target, make_dataset(N_TRAIN + 8), student=tiny_student(),
                           val_data=make_dataset(N_VAL, seed=1), out=out, resume=True,
                           **{**SETTINGS, "explainer_epochs": 1})
    with pytest.raises(ValueError, match="another configuration.*depth"):
        captum_akd.distill(square_target, make_dataset(N_TRAIN),
                           student=cifar_resnet_student(depth=14, num_classes=4),
                           val_data=make_dataset(N_VAL, seed=1), out=out, resume=True,
                           **{**SETTINGS, "explainer_epochs": 1})


def test_existing_out_needs_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    run(out, epochs=1, explainer_epochs=1)
    with pytest.raises(FileExistsError, match="resume=True"):
        run(out, epochs=1, explainer_epochs=1)
    run(out, epochs=1, explainer_epochs=1, overwrite=True, seed=5)
    other = tmp_path / "not-a-checkpoint"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="neither empty nor a captum-akd checkpoint"):
        run(other, epochs=1, explainer_epochs=1, overwrite=True)
    with pytest.raises(ValueError, match="needs `out`"):
        run(None, resume=True)
    assert (other / "notes.txt").read_text() == "mine"


def test_a_run_with_restarts_resumes_to_identical_weights(tmp_path):
    restarts = {"objective": "curve", "budgets": 2, "restarts": 2}
    settings = {**SETTINGS, "explainer_config": restarts}
    # Saves: stage 1's two epochs, stage 2 begun, restart 1's two epochs, then
    # restart 2's first (killed here), its second, and the finished run.
    out = kill_after(tmp_path, 6, settings)
    state = json.loads((out / STATE_JSON).read_text())
    assert (state["stage"], state["epoch"], state["complete"]) == ("explainer", 0, False)
    sub = json.loads((out / "explainer-restarts" / "seed-4" / STATE_JSON).read_text())
    assert (sub["epoch"], sub["complete"]) == (1, False)
    resumed = run(out, resume=True, explainer_config=restarts)
    whole = run(tmp_path / "whole", explainer_config=restarts)
    assert_same_state(resumed.explainer, whole.explainer)
    assert resumed.metadata["fidelity"] == whole.metadata["fidelity"]
    assert [r["seed"] for r in whole.metadata["fidelity"]["explainer"]["restarts"]] == [3, 4]
    assert not (out / "explainer-restarts").exists()
    with pytest.raises(ValueError, match="another configuration.*restarts"):
        run(out, resume=True, explainer_config={**restarts, "restarts": 3})
