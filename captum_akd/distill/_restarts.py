"""Stage 2 from several seeds, keeping the explainer whose maps the black box scores best.

With ``ExplainerConfig.restarts = R`` stage 2 runs ``R`` times. Restart ``r``
is the run a call with seed ``seed + r`` would make (data order, augmentation,
class draws; restart 0 trains the explainer as given, each later one a fresh
network of the same architecture initialised from its seed), each keeping
its own best epoch. The restarts are then compared on the black box, by the
coarse held-out insertion minus deletion of :func:`explainer_curve`: on the
demo the seed moved ROAD combined by up to 0.17 with every option fixed, and
only the black box's reading of held-out maps told good draws from bad ones
(the student's own score did not).

A run with ``out`` keeps each restart's progress in
``out/explainer-restarts/seed-<s>/``, an ordinary run directory that resumes
epoch by epoch; the finished checkpoint replaces them and holds the kept
explainer only, with every restart's figures in its report (``"restarts"``).
"""

from __future__ import annotations

from typing import Any

import torch

from captum_akd.distill._stage2 import ExplainerStage
from captum_akd.distill._state import RunDir, load_weights
from captum_akd.distill._trainer import (
    Precision,
    Shared,
    log,
    resumed_status,
    seeded,
    stage_fingerprint,
    train,
)
from captum_akd.distill.config import ExplainerConfig
from captum_akd.models import AttentiveStudent, ExplanationNet

RESTARTS_DIR = "explainer-restarts"

# Kept in each restart's summary, as the final report of that restart gives them.
_SUMMARY = ("best_epoch", "mask_mean", "target_retained", "target_lost")


def train_restarts(shared: Shared, student: AttentiveStudent, explainer: ExplanationNet,
                   config: ExplainerConfig) -> None:
    """Run stage 2 ``config.restarts`` times; ``explainer`` ends with the kept restart's weights.

    The kept restart's history and report become the run's, its report with
    ``restart_seed`` and ``restarts`` (each restart's seed, black-box score
    and held-out figures) added; ``shared.out`` is saved complete.
    """
    ctx, run, out = shared.ctx, shared.run, shared.out
    first = ExplainerStage(shared, student, explainer, config)
    fingerprint = stage_fingerprint(first, shared, Precision(ctx.device, run.amp))
    status = resumed_status(first, shared, fingerprint)
    if status == "complete":
        return
    state = out.state
    if status == "new":
        # Saved before any restart writes into `out`: it says stage 2 is under way, and a
        # directory holding only restarts would not be a checkpoint to resume.
        state.fingerprints[first.name] = fingerprint
        state.history[first.name] = []
        state.reports.pop(first.name, None)
        state.stage, state.epoch, state.complete = first.name, 0, False
        out.save(student, explainer, shared.metadata(), {"best": None})
    best: dict[str, Any] | None = None
    summaries = []
    for index in range(config.restarts):
        seed = run.seed + index
        path = None if out.path is None else out.path / RESTARTS_DIR / f"seed-{seed}"
        restart = shared.reseeded(seed, RunDir(path, run.resume, run.overwrite, ctx))
        network = explainer if index == 0 else _fresh(explainer, seed)
        stage = ExplainerStage(restart, student, network, config)
        history = train(stage, restart)
        report = restart.out.state.reports[stage.name]
        if "black_box_insertion" not in report:
            report = {**report, **stage.curve(("black_box",))}
        score = report["black_box_insertion"] - report["black_box_deletion"]
        summaries.append({"seed": seed, "score": score,
                          **{k: report[k] for k in ("black_box_insertion", "black_box_deletion",
                                                    "black_box_images")},
                          **{k: report[k] for k in _SUMMARY if k in report}})
        if best is None or score > best["score"]:
            best = {"score": score, "seed": seed, "report": report, "history": history,
                    "epochs": restart.out.state.epoch,
                    "state": {k: v.detach().clone() for k, v in network.state_dict().items()}}
        log(f"stage 2 restart {index + 1}/{config.restarts} (seed {seed}): black-box held-out "
            f"insertion - deletion {score:.4f}; best so far seed {best['seed']}", ctx, run.quiet)
    assert best is not None
    load_weights(explainer, best["state"], "explainer")
    state.history[first.name] = best["history"]
    state.reports[first.name] = {**best["report"], "restart_seed": best["seed"],
                                 "restarts": summaries}
    state.stage, state.epoch, state.complete = first.name, best["epochs"], True
    out.save(student, explainer, shared.metadata(), {"best": None})


def _fresh(explainer: ExplanationNet, seed: int) -> ExplanationNet:
    """A restart's own network: the given architecture, initialised from the restart's seed."""
    with seeded(seed, torch.device("cpu")):
        return type(explainer)(**explainer.config["kwargs"])
